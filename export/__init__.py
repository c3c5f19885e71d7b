"""Export stage: checkpoint -> verified ONNX (-> int8 ONNX / TensorRT plan) -> a Triton model directory.

::

    checkpoint ──build_model──> ServingModule (uint8 clip in, normalization inside)
        │  torch.onnx.export (TorchScript exporter, opset 17, ConvLSTM unrolled for T)
        v
    model.onnx ──graph checks (no Loop/Scan/If, static non-batch dims, checker)
        │  parity gate: onnxruntime vs PyTorch (max abs diff, top-1)      parity.py
        ├──> int8 QDQ (Conv only) + drift gate                             quantize.py
        ├──> TensorRT FP16 plan + parity vs onnxruntime (GPU only)         tensorrt.py
        v
    <repository>/<name>/{config.pbtxt, labels.txt, export_report.json, <version>/model.*}
                                   triton_config.py + repository.py (atomic rename)

`stanet export` (export/cli.py) runs the whole chain; every step is a plain function the tests call.
"""

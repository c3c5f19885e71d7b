"""`stanet bench`: PyTorch eager, onnxruntime in process, Triton over gRPC and INT8 through Triton, side by
side in one run on the same model and clips (docs/benchmark.md, "Serving performance")."""

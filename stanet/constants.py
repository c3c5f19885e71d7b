"""The one definition of every name and constant that more than one stage uses.

Training, export, the Triton model repository, the client and the tests all import these; none of them
writes the strings or numbers again.
"""

# Tensor names, identical from the PyTorch module outputs to the ONNX graph, config.pbtxt and the client.
INPUT_CLIP = "clip"  # UINT8 [B, T, H, W, 3] RGB at serving; float [B, T, 3, H, W] inside training
OUTPUT_PROBABILITIES = "probabilities"  # FP32 [B, K]
OUTPUT_SPATIAL_ATTENTION = "spatial_attention"  # FP32 [B, T, h, w], in [0, 1]
OUTPUT_TEMPORAL_ATTENTION = "temporal_attention"  # FP32 [B, T], sums to 1 over T

# ImageNet statistics, on pixel values scaled to [0, 1]; the torchvision backbones' weights expect them.
MEAN_RGB = (0.485, 0.456, 0.406)
STD_RGB = (0.229, 0.224, 0.225)

# Dataset format (see README "Dataset format").
CLASSES_FILE = "classes.txt"
ANNOTATIONS_FILE = "annotations.jsonl"
SPLITS = ("train", "val", "test")
# The class a model trained with `train.background=true` appends after the dataset's classes: frames outside
# every action (idle parts of trimmed clips with an interval, gaps between segments of untrimmed videos).
BACKGROUND_CLASS = "background"

# Checkpoint files written under a run directory.
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
CHECKPOINT_FORMAT_VERSION = 1

# The Triton model repository: the name a model is exported and served under by default, the config file of
# every model folder, and the labels file beside it (classification extension, one class name per line).
MODEL_NAME = "stanet"
CONFIG_FILE = "config.pbtxt"
LABELS_FILE = "labels.txt"

# Files of a Triton model's version folder, as `stanet export` writes them. The python backend's own files
# cannot import this module once copied there: the ONNX file's name reaches them through config.pbtxt.
ONNX_FILE = "model.onnx"  # --target onnxruntime and python
PLAN_FILE = "model.plan"  # --target tensorrt
PYTHON_MODEL_FILE = "model.py"  # --target python: the adapter Triton's python backend loads
BACKEND_FILE = "stanet_backend.py"  # beside it, imported by it as `stanet_backend`
OPENVINO_BACKEND_FILE = "openvino_runtime.py"  # --runtime openvino: beside them, imported by stanet_backend
# OpenVINO's intermediate representation (graph + weights), converted from the verified model.onnx: the
# python backend's --runtime openvino and Triton's own openvino backend (--target openvino, which looks for
# model.xml by default) read it.
OPENVINO_XML_FILE = "model.xml"
OPENVINO_BIN_FILE = "model.bin"

# Latency histogram buckets (seconds) shared by the server and the client: the buckets of Triton's
# nv_inference_first_response_histogram_ms in generated configs (in ms there) and of the load generator's
# stanet_client_request_duration_seconds. They resolve a ~10 ms CPU model and a GPU paper-size model alike.
LATENCY_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
                           1.0, 2.5, 5.0)

# The span of the training clips (what one clip of the model covers of a video), recorded in the checkpoint
# (extra key CLIP_SPAN_KEY: {"frames": int, "seconds": float}) and in config.pbtxt parameters under these
# names, so that a timeline cuts a long video into windows of the span the model was trained on.
CLIP_SPAN_KEY = "clip_span"
CLIP_SPAN_FRAMES_PARAMETER = "clip_span_frames"
CLIP_SPAN_SECONDS_PARAMETER = "clip_span_seconds"

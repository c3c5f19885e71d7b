"""Serving: the embedded Triton server (`stanet serve`) and the gRPC client (`stanet infer`).

Nothing here imports torch: the client needs numpy, PyAV, Pillow and tritonclient; the server launcher needs
only the standard library and tritonclient (for its readiness check).
"""

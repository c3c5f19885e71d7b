"""The Triton python-backend model for `--target python`: `model.py` (the thin adapter Triton loads) and
`stanet_backend.py` (its logic as plain functions). `stanet export` copies both into each version folder, where
they run inside Triton's python stub with only numpy and onnxruntime: they import nothing from this repository."""

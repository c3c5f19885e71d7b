"""Tools run against a server, not part of the client or server library: `python -m serving.tools.soak` (the
soak test behind `make soak`) and `python -m serving.tools.cancel_race` (the reproducer of the embedded Triton's
cancellation crash)."""

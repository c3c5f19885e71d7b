"""Timelines of actions in untrimmed videos, shared by the client, the server-side code and evaluation
(numpy only, no torch): windows (`windows`), per-frame scores (`aggregate`), segments (`segments`) and the
THUMOS14 detection mAP (`map`)."""

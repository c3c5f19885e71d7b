"""stanet: interpretable spatio-temporal attention for video action recognition.

Kept import-light on purpose: nothing here imports torch, so `serving/` can use the shared constants,
sampling and decoding without it.
"""

__version__ = "0.1.0"

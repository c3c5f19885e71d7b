"""One random stream per (seed, clip, purpose): the random maps, orders and tie-breaks of a clip are the same
whichever clips are scored with it and whichever backend (PyTorch or a served graph) runs it."""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, clip_id: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng([seed, clip_id, zlib.crc32(purpose.encode())])

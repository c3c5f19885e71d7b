"""Precomputed backbone features (the paper's recipe: the attention model trained on saved trunk features).

- `cache`: the on-disk format (index.json + sharded .npy files + the backbone's weights), atomic writes,
  validation that names the file and what was expected.
- `extract`: `stanet features extract`, the frozen backbone run once over every clip, resumable.
- `dataset`: a torch Dataset over the shards, giving `stanet train --features` the same samples as
  ClipDataset with "features" in place of "clip".
"""

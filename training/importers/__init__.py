"""Readers of public action datasets and of a plain folder layout, each producing the generic dataset
format (stanet.dataset_format), and the `stanet data import` command that writes it.

One module per source format (ucf101, hmdb51, folders, thumos14, ucf101_24); `source` holds what they
share (the clip they return, the video prober, line-numbered text reading), `splits` the seeded grouped
train/val/test split, `write` the output directory, `cli` the command.
"""

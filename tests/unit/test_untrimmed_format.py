"""Untrimmed records (`segments` instead of `label`): round trip, `record_segments` for both kinds of record,
and every malformed untrimmed record refused with a message naming the file, the line and the field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stanet.constants import ANNOTATIONS_FILE, CLASSES_FILE
from stanet.dataset_format import (DatasetFormatError, Segment, check_frame_count, load_dataset, record_segments,
                                   write_dataset)

CLASSES = ("walk", "hop", "circle")


def _untrimmed(**overrides) -> dict:
    record = {"video": "videos/test/00000.mp4", "split": "test",
              "segments": [{"label": "hop", "interval": [40, 95]}, {"label": "walk", "interval": [10, 30]},
                           {"label": "hop", "interval": [120, 130]}],
              "boxes": {"12": [1, 2, 11, 12]}}
    record.update(overrides)
    return record


def _trimmed(**overrides) -> dict:
    record = {"video": "videos/train/00001_walk.mp4", "label": "walk", "split": "train", "interval": [2, 9]}
    record.update(overrides)
    return record


def _write_raw(root: Path, records: list) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / CLASSES_FILE).write_text("".join(f"{name}\n" for name in CLASSES))
    (root / ANNOTATIONS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def test_untrimmed_round_trip_next_to_trimmed_records(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", CLASSES, [_trimmed(), _untrimmed(), _trimmed(interval=None)])
    dataset = load_dataset(tmp_path / "data")
    trimmed, untrimmed, whole = dataset.records
    assert not trimmed.untrimmed and untrimmed.untrimmed
    assert untrimmed.label is None and untrimmed.label_index is None and untrimmed.interval is None
    assert untrimmed.segments == (Segment("walk", 0, 10, 30), Segment("hop", 1, 40, 95), Segment("hop", 1, 120, 130))
    assert untrimmed.boxes == {12: (1.0, 2.0, 11.0, 12.0)}
    assert record_segments(untrimmed) == [("walk", 10, 30), ("hop", 40, 95), ("hop", 120, 130)]
    assert record_segments(trimmed) == [("walk", 2, 9)]
    assert record_segments(whole, num_frames=16) == [("walk", 0, 15)]
    with pytest.raises(ValueError, match=r"has no interval: .*needs the video's frame count"):
        record_segments(whole)
    # Written back in canonical form: segments sorted by first frame, no label field.
    lines = [json.loads(line) for line in (tmp_path / "data" / ANNOTATIONS_FILE).read_text().splitlines()]
    assert "label" not in lines[1] and [s["interval"] for s in lines[1]["segments"]] == [[10, 30], [40, 95], [120, 130]]
    assert load_dataset(tmp_path / "data") == dataset


def test_segments_of_different_classes_may_overlap(tmp_path: Path) -> None:
    record = _untrimmed(segments=[{"label": "hop", "interval": [0, 50]}, {"label": "walk", "interval": [20, 30]}])
    dataset = load_dataset(_write_raw(tmp_path, [record]))
    assert record_segments(dataset.records[0]) == [("hop", 0, 50), ("walk", 20, 30)]


BAD_UNTRIMMED = [
    (dict(label="walk"), "label", r"found both 'label' and 'segments'"),
    (dict(interval=[1, 2]), "interval", r"found both 'interval' and 'segments'"),
    (dict(segments=[]), "segments", r"found \[\], expected a non-empty list"),
    (dict(segments={"label": "hop"}), "segments", r"expected a non-empty list"),
    (dict(segments=["hop"]), "segments[0]", r"found a JSON str, expected an object"),
    (dict(segments=[{"label": "jump", "interval": [0, 3]}]), "segments[0].label",
     r"found 'jump', expected one of the 3 classes in classes.txt: 'walk', 'hop', 'circle'"),
    (dict(segments=[{"interval": [0, 3]}]), "segments[0].label", r"missing"),
    (dict(segments=[{"label": "hop"}]), "segments[0].interval", r"missing"),
    (dict(segments=[{"label": "hop", "interval": [0, 3], "score": 1}]), "segments[0].score", r"unknown field"),
    (dict(segments=[{"label": "hop", "interval": [5, 3]}]), "segments[0].interval", r"expected 0 <= first <= last"),
    (dict(segments=[{"label": "hop", "interval": [0.5, 3]}]), "segments[0].interval", r"two integer frame indices"),
    (dict(segments=[{"label": "hop", "interval": [0, 30]}, {"label": "walk", "interval": [0, 9]},
                    {"label": "hop", "interval": [30, 40]}]), "segments[2].interval",
     r"\[30, 40\] overlaps segments\[0\] \[0, 30\] of the same class 'hop'"),
    (dict(segments=[{"label": "hop", "interval": [50, 60]}, {"label": "hop", "interval": [0, 100]}]),
     "segments[0].interval", r"\[50, 60\] overlaps segments\[1\] \[0, 100\] of the same class 'hop'"),
    (dict(split="dev"), "split", r"found 'dev'"),
    (dict(extra=1), "extra", r"unknown field\(s\) \['extra'\]"),
]


@pytest.mark.parametrize(("overrides", "field", "pattern"), BAD_UNTRIMMED)
def test_bad_untrimmed_record(tmp_path: Path, overrides: dict, field: str, pattern: str) -> None:
    root = _write_raw(tmp_path, [_trimmed(), _untrimmed(**overrides)])
    expected = rf"annotations\.jsonl, line 2: field '{re.escape(field)}': .*{pattern}"
    with pytest.raises(DatasetFormatError, match=expected) as info:
        load_dataset(root)
    assert info.value.line == 2 and info.value.field == field
    with pytest.raises(DatasetFormatError, match=expected):
        write_dataset(tmp_path / "out", CLASSES, [_trimmed(), _untrimmed(**overrides)])
    assert not (tmp_path / "out").exists()


def test_untrimmed_record_without_video_names_the_field(tmp_path: Path) -> None:
    record = _untrimmed()
    del record["video"]
    with pytest.raises(DatasetFormatError, match=r"line 1: field 'video': missing"):
        load_dataset(_write_raw(tmp_path, [record]))


@pytest.mark.parametrize(("record", "field", "pattern"), [
    (_untrimmed(), "segments[2].interval", r"found \[120, 130\] \('hop'\), past the video's end, expected frames "
                                           r"0\.\.99: the video 00000\.mp4 holds 100 frames"),
    (_trimmed(interval=[2, 100]), "interval", r"found \[2, 100\], past the video's end"),
    (_untrimmed(segments=[{"label": "hop", "interval": [0, 5]}], boxes={"100": [0, 0, 1, 1]}), "boxes",
     r"found a box on frame 100, past the video's end"),
])
def test_interval_past_the_video_end(tmp_path: Path, record: dict, field: str, pattern: str) -> None:
    root = _write_raw(tmp_path, [_trimmed(), record])
    loaded = load_dataset(root).records[1]
    with pytest.raises(DatasetFormatError, match=rf"annotations\.jsonl, line 2: field '{re.escape(field)}': {pattern}"):
        check_frame_count(loaded, 100, root / ANNOTATIONS_FILE)
    check_frame_count(loaded, 200, root / ANNOTATIONS_FILE)  # long enough: no error

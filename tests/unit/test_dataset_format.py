"""The annotated dataset format: round trip, and every malformed input refused with a message that names the
file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stanet.constants import ANNOTATIONS_FILE, CLASSES_FILE
from stanet.dataset_format import AnnotatedDataset, ClipRecord, DatasetFormatError, load_dataset, write_dataset

CLASSES = ("walk", "hop", "circle")
_DROP = object()  # an override that removes the field


def _record(**overrides) -> dict:
    record = {
        "video": "videos/train/00000_walk.mp4",
        "label": "walk",
        "split": "train",
        "interval": [2, 9],
        "boxes": {"0": [1, 2, 11, 12], "3": [4.5, 2.0, 14.5, 12.25]},
    }
    record.update(overrides)
    return {key: value for key, value in record.items() if value is not _DROP}


def _write_raw(root: Path, lines: list[str], classes: str = "walk\nhop\ncircle\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / CLASSES_FILE).write_text(classes)
    (root / ANNOTATIONS_FILE).write_text("".join(line + "\n" for line in lines))
    return root


def _write_records(root: Path, records: list[dict]) -> Path:
    return _write_raw(root, [json.dumps(record) for record in records])


def test_round_trip(tmp_path: Path) -> None:
    records = [
        _record(),
        _record(video="videos/val/00001_hop.mp4", label="hop", split="val", interval=(0, 0), boxes={7: (0, 0, 1, 1)}),
        _record(video="test clip.mp4", label="circle", split="test", interval=_DROP, boxes=_DROP),
    ]
    write_dataset(tmp_path / "data", CLASSES, records)
    dataset = load_dataset(tmp_path / "data")

    assert isinstance(dataset, AnnotatedDataset)
    assert dataset.root == (tmp_path / "data").resolve()
    assert dataset.class_names == CLASSES
    assert dataset.records[0] == ClipRecord(
        video=dataset.root / "videos/train/00000_walk.mp4",
        label="walk",
        label_index=0,
        split="train",
        interval=(2, 9),
        boxes={0: (1.0, 2.0, 11.0, 12.0), 3: (4.5, 2.0, 14.5, 12.25)},
        line=1,
    )
    assert dataset.records[1].interval == (0, 0) and dataset.records[1].boxes == {7: (0.0, 0.0, 1.0, 1.0)}
    assert dataset.records[1].label_index == 1
    assert dataset.records[2].interval is None and dataset.records[2].boxes is None
    assert dataset.records[2].video == dataset.root / "test clip.mp4"
    assert [r.line for r in dataset.split("test")] == [3]
    assert dataset.split("val")[0].label == "hop"
    # No temporary files are left behind.
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [ANNOTATIONS_FILE, CLASSES_FILE]


def test_blank_lines_are_ignored_and_video_existence_is_not_checked(tmp_path: Path) -> None:
    root = _write_raw(tmp_path, ["", json.dumps(_record(video="nowhere.mp4")), "   "], classes="walk\nhop\n\n\n")
    dataset = load_dataset(root)
    assert dataset.class_names == ("walk", "hop")
    assert len(dataset.records) == 1 and dataset.records[0].line == 2
    assert not dataset.records[0].video.exists()


def test_write_overwrites_atomically_and_refuses_bad_records_before_writing(tmp_path: Path) -> None:
    write_dataset(tmp_path, CLASSES, [_record()])
    with pytest.raises(DatasetFormatError, match=r"annotations\.jsonl, line 2: field 'label'"):
        write_dataset(tmp_path, CLASSES, [_record(), _record(label="swim")])
    assert len(load_dataset(tmp_path).records) == 1  # the earlier dataset is intact
    write_dataset(tmp_path, CLASSES[:2], [_record(), _record(label="hop")])
    assert load_dataset(tmp_path).class_names == CLASSES[:2]


def test_unknown_split_name(tmp_path: Path) -> None:
    dataset = load_dataset(_write_records(tmp_path, [_record()]))
    with pytest.raises(DatasetFormatError, match=r"field 'split': unknown split 'dev'"):
        dataset.split("dev")


@pytest.mark.parametrize(
    "missing, pattern",
    [
        ("dir", r"no such dataset directory"),
        (CLASSES_FILE, r"classes\.txt: missing file"),
        (ANNOTATIONS_FILE, r"annotations\.jsonl: missing file"),
    ],
)
def test_missing_directory_or_file(tmp_path: Path, missing: str, pattern: str) -> None:
    root = _write_records(tmp_path / "data", [_record()])
    if missing == "dir":
        root = tmp_path / "absent"
    else:
        (root / missing).unlink()
    with pytest.raises(DatasetFormatError, match=pattern):
        load_dataset(root)


@pytest.mark.parametrize(
    "classes, pattern",
    [
        ("", r"classes\.txt: found no class names"),
        ("walk\n\nhop\n", r"classes\.txt, line 2: found a blank line"),
        ("walk\nhop\nwalk\n", r"classes\.txt, line 3: class 'walk' is listed twice \(first on line 1\)"),
    ],
)
def test_bad_classes_file(tmp_path: Path, classes: str, pattern: str) -> None:
    root = _write_raw(tmp_path, [json.dumps(_record())], classes=classes)
    with pytest.raises(DatasetFormatError, match=pattern):
        load_dataset(root)


def test_write_refuses_bad_class_names(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match=r"classes\.txt, line 2: class 'walk' is listed twice"):
        write_dataset(tmp_path, ["walk", "walk"], [])
    with pytest.raises(DatasetFormatError, match=r"classes\.txt, line 1: found ' walk'"):
        write_dataset(tmp_path, [" walk"], [])
    assert not (tmp_path / CLASSES_FILE).exists()


@pytest.mark.parametrize(
    "line, pattern",
    [
        ("{not json", r"line 2: not valid JSON"),
        ("[1, 2]", r"line 2: found a JSON list, expected an object"),
        ('{"video": "a.mp4", "label": "walk", "split": "train", "split": "val"}', r"line 2: key 'split' appears twice"),
    ],
)
def test_lines_that_are_not_a_json_object(tmp_path: Path, line: str, pattern: str) -> None:
    root = _write_raw(tmp_path, [json.dumps(_record()), line])
    with pytest.raises(DatasetFormatError, match=r"annotations\.jsonl, " + pattern):
        load_dataset(root)


BAD_RECORDS = [
    # (overrides, field, what the message must say)
    ({"video": _DROP}, "video", r"missing"),
    ({"label": _DROP}, "label", r"missing"),
    ({"split": _DROP}, "split", r"missing"),
    ({"video": 3}, "video", r"found 3 \(int\), expected a non-empty string"),
    ({"video": ""}, "video", r"expected a non-empty string"),
    ({"label": None}, "label", r"found None \(null\)"),
    ({"video": "/abs/clip.mp4"}, "video", r"found the absolute path '/abs/clip\.mp4'"),
    ({"video": "C:\\clips\\a.mp4"}, "video", r"absolute path"),
    ({"video": "videos/../../clip.mp4"}, "video", r"escapes the dataset directory"),
    ({"label": "swim"}, "label", r"found 'swim', expected one of the 3 classes in classes\.txt: 'walk', 'hop', 'circ"),
    ({"split": "dev"}, "split", r"found 'dev', expected one of \('train', 'val', 'test'\)"),
    ({"interval": [3]}, "interval", r"found \[3\], expected \[first, last\]"),
    ({"interval": [1.0, 4]}, "interval", r"two integer frame indices"),
    ({"interval": [True, 4]}, "interval", r"two integer frame indices"),
    ({"interval": "1-4"}, "interval", r"expected \[first, last\]"),
    ({"interval": [5, 4]}, "interval", r"found \[5, 4\], expected 0 <= first <= last"),
    ({"interval": [-1, 4]}, "interval", r"expected 0 <= first <= last"),
    ({"boxes": [[1, 2, 3, 4]]}, "boxes", r"found a list, expected an object"),
    ({"boxes": {"-1": [1, 2, 3, 4]}}, "boxes", r"frame key '-1', expected a non-negative integer"),
    ({"boxes": {"one": [1, 2, 3, 4]}}, "boxes", r"frame key 'one'"),
    ({"boxes": {"01": [1, 2, 3, 4], "1": [1, 2, 3, 4]}}, "boxes", r"frame 1 has two boxes"),
    ({"boxes": {"0": [1, 2, 3]}}, "boxes", r"frame 0: found \[1, 2, 3\], expected \[x1, y1, x2, y2\]"),
    ({"boxes": {"0": [1, 2, "3", 4]}}, "boxes", r"four finite numbers"),
    ({"boxes": {"0": [1, 2, float("nan"), 4]}}, "boxes", r"four finite numbers"),
    ({"boxes": {"0": [5, 2, 5, 4]}}, "boxes", r"expected 0 <= x1 < x2 and 0 <= y1 < y2"),
    ({"boxes": {"0": [1, 4, 3, 2]}}, "boxes", r"0 <= y1 < y2"),
    ({"boxes": {"0": [-1, 2, 3, 4]}}, "boxes", r"0 <= x1"),
    ({"frames": 12}, "frames", r"unknown field\(s\) \['frames'\]"),
]


@pytest.mark.parametrize("overrides, field, pattern", BAD_RECORDS)
def test_bad_record_on_load(tmp_path: Path, overrides: dict, field: str, pattern: str) -> None:
    root = _write_records(tmp_path, [_record(), _record(), _record(**overrides)])
    with pytest.raises(DatasetFormatError, match=rf"annotations\.jsonl, line 3: field '{field}': .*{pattern}") as info:
        load_dataset(root)
    assert info.value.line == 3 and info.value.field == field
    assert info.value.path == str(root.resolve() / ANNOTATIONS_FILE)


@pytest.mark.parametrize("overrides, field, pattern", BAD_RECORDS)
def test_bad_record_on_write(tmp_path: Path, overrides: dict, field: str, pattern: str) -> None:
    with pytest.raises(DatasetFormatError, match=rf"annotations\.jsonl, line 2: field '{field}': .*{pattern}"):
        write_dataset(tmp_path, CLASSES, [_record(), _record(**overrides)])
    assert not (tmp_path / ANNOTATIONS_FILE).exists()


def test_many_classes_are_abbreviated(tmp_path: Path) -> None:
    classes = "".join(f"class_{i:02d}\n" for i in range(30))
    root = _write_raw(tmp_path, [json.dumps(_record(label="walk"))], classes=classes)
    with pytest.raises(DatasetFormatError, match=r"one of the 30 classes .*'class_09', \.\.\. \(20 more\)$"):
        load_dataset(root)

"""Dataset importers: tiny UCF101, HMDB51, folder, THUMOS14 and UCF101-24 sources built here (videos encoded
with PyAV, annotation files in the official formats), converted, checked record by record, loaded with
load_dataset and sampled through ClipDataset; bad files refused with the file and line named; unreadable
videos skipped and counted."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from stanet.cli import main as stanet_main
from stanet.dataset_format import DatasetFormatError, load_dataset
from stanet.timeline.windows import ClipSpan
from stanet.video import probe_video, write_video
from training.data import ClipDataset, ClipSpec
from training.importers.cli import ImportConfig, import_dataset
from training.importers.splits import SplitError
from training.importers.thumos14 import seconds_to_frames
from training.importers.write import IMPORT_REPORT_FILE, IMPORTED_VIDEOS_DIR

SPEC = ClipSpec(clip_length=4, height=32, width=32)


def _video(path: Path, frames: int = 8, fps: float = 25, height: int = 32, width: int = 32) -> Path:
    rng = np.random.default_rng(frames * 1000 + height)
    write_video(path, rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8), fps)
    return path


def _corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _import(source: Path, out: Path, fmt: str, **options) -> tuple[dict, object]:
    report = import_dataset(ImportConfig(format=fmt, source=source, out=out, **options), progress=False)
    return report, load_dataset(out)


def test_probe_video_reads_the_real_frame_rate_and_length(tmp_path: Path) -> None:
    ten = probe_video(_video(tmp_path / "ten.avi", frames=13, fps=10, height=48, width=64))
    thirty = probe_video(_video(tmp_path / "thirty.mp4", frames=9, fps=30))
    assert (ten.num_frames, ten.fps, ten.height, ten.width) == (13, 10.0, 48, 64)
    assert (thirty.num_frames, thirty.fps) == (9, 30.0)


# ---------------------------------------------------------------------------------------------------------
# UCF101


UCF_CLASSES = ("ApplyEyeMakeup", "Archery")
UCF_TRAIN_GROUPS = (8, 9, 10, 11)
UCF_TEST_GROUPS = (1, 2)


def _ucf101(root: Path) -> Path:
    """root/UCF-101/<class>/v_<class>_gNN_cMM.avi (2 clips per group) and root/ucfTrainTestlist/; one corrupt
    train video (Archery g11 c02)."""
    videos = root / "UCF-101"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {name}\n" for i, name in enumerate(UCF_CLASSES, 1)))
    train, test = [], []
    for index, name in enumerate(UCF_CLASSES, 1):
        for group in UCF_TRAIN_GROUPS + UCF_TEST_GROUPS:
            for clip in (1, 2):
                relative = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
                if (name, group, clip) == ("Archery", 11, 2):
                    _corrupt(videos / relative)
                else:
                    _video(videos / relative, frames=6 + clip)
                if group in UCF_TRAIN_GROUPS:
                    train.append(f"{relative} {index}\n")
                else:
                    test.append(f"{relative}\r\n")  # the official lists have Windows line ends
    (lists / "trainlist01.txt").write_text("".join(train))
    (lists / "testlist01.txt").write_text("".join(test))
    return root


def test_ucf101_import_links_videos_carves_val_by_group_and_feeds_the_clip_dataset(tmp_path: Path) -> None:
    root = _ucf101(tmp_path / "src")
    report, dataset = _import(root / "UCF-101", tmp_path / "ucf", "ucf101", annotations=(root / "ucfTrainTestlist",),
                              val_fraction=0.25, seed=3)

    assert dataset.class_names == UCF_CLASSES
    # 2 classes x 4 train groups x 2 clips, less the corrupt one; a quarter of each class's groups is val.
    assert report["clips"] == {"train": 11, "val": 4, "test": 8}
    assert report["skipped"] == [{"video": "Archery/v_Archery_g11_c02.avi", "reason": report["skipped"][0]["reason"]}]
    assert "not a decodable video" in report["skipped"][0]["reason"]
    out = tmp_path / "ucf"
    assert (out / IMPORTED_VIDEOS_DIR).is_symlink()
    assert (out / IMPORTED_VIDEOS_DIR).resolve() == (root / "UCF-101").resolve()
    lines = [json.loads(line) for line in (out / "annotations.jsonl").read_text().splitlines()]
    assert lines[0] == {"video": "videos/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "label": "ApplyEyeMakeup",
                        "split": lines[0]["split"]}
    groups = {}
    for record in dataset.records:
        group = (record.label, record.video.name.split("_")[-2])
        groups.setdefault(group, set()).add(record.split)
        assert record.video.is_file()
    assert all(len(splits) == 1 for splits in groups.values()), groups  # no group straddles two splits
    for label in UCF_CLASSES:
        assert {g for (lab, g), s in groups.items() if lab == label and s == {"val"}} != set()
        assert {g for (lab, g), s in groups.items() if lab == label and s == {"test"}} == {"g01", "g02"}

    train = ClipDataset(dataset.split("train"), SPEC, train=True, progress=False)
    sample = train[0]
    assert tuple(sample["clip"].shape) == (4, 32, 32, 3) and int(sample["label"]) == 0
    assert not train.skipped


def test_ucf101_val_split_is_seeded(tmp_path: Path) -> None:
    root = _ucf101(tmp_path / "src")
    val_groups = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1), ("d", 2), ("e", 5)):
        _, dataset = _import(root / "UCF-101", tmp_path / name, "ucf101", annotations=(root,), seed=seed,
                             val_fraction=0.25)
        val_groups.append(sorted({(r.label, r.video.name.split("_")[-2]) for r in dataset.split("val")}))
    assert val_groups[0] == val_groups[1]
    assert len({tuple(groups) for groups in val_groups}) > 1  # other seeds pick other groups


def test_ucf101_copy_writes_the_same_annotations_with_real_files(tmp_path: Path) -> None:
    root = _ucf101(tmp_path / "src")
    _import(root / "UCF-101", tmp_path / "linked", "ucf101", annotations=(root,))
    _, dataset = _import(root / "UCF-101", tmp_path / "copied", "ucf101", annotations=(root,), copy=True)
    copied = tmp_path / "copied"
    assert (copied / "annotations.jsonl").read_text() == (tmp_path / "linked" / "annotations.jsonl").read_text()
    assert not (copied / IMPORTED_VIDEOS_DIR).is_symlink()
    assert all(r.video.is_file() and not r.video.is_symlink() for r in dataset.records)
    assert not (copied / IMPORTED_VIDEOS_DIR / "Archery" / "v_Archery_g11_c02.avi").exists()  # skipped, not copied
    assert len(list((copied / IMPORTED_VIDEOS_DIR).rglob("*.avi"))) == 23


@pytest.mark.parametrize("edit, pattern", [
    (lambda lists: (lists / "testlist01.txt").write_text("Archery/v_Archery_g01_c01.avi\n"
                                                         "Bowling/v_Bowling_g01_c01.avi\n"),
     r"testlist01\.txt, line 2: class 'Bowling' is not in classInd\.txt"),
    (lambda lists: (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 2\n"),
     r"trainlist01\.txt, line 1: found class index '2' for 'ApplyEyeMakeup', expected 1"),
    (lambda lists: (lists / "trainlist01.txt").write_text("\nApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi\n"),
     r"trainlist01\.txt, line 2: found .*expected '<class>/<video> <class index>'"),
    (lambda lists: (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n3 Archery\n"),
     r"classInd\.txt, line 2: found index 3, expected 2"),
    (lambda lists: (lists / "testlist01.txt").unlink(), r"testlist01\.txt: missing split file: split 1 needs"),
    (lambda lists: (lists / "classInd.txt").unlink(), r"missing UCF101 class index .*no file 'classInd\.txt'"),
])
def test_ucf101_bad_split_files_name_the_file_and_line(tmp_path: Path, edit, pattern: str) -> None:
    root = _ucf101(tmp_path / "src")
    edit(root / "ucfTrainTestlist")
    with pytest.raises(DatasetFormatError, match=pattern):
        _import(root / "UCF-101", tmp_path / "out", "ucf101", annotations=(root,))
    assert not (tmp_path / "out").exists()


def test_ucf101_other_split_number_needs_its_lists(tmp_path: Path) -> None:
    root = _ucf101(tmp_path / "src")
    with pytest.raises(DatasetFormatError, match=r"trainlist02\.txt: missing split file: split 2"):
        _import(root / "UCF-101", tmp_path / "out", "ucf101", annotations=(root,), split=2)


# ---------------------------------------------------------------------------------------------------------
# HMDB51


def _hmdb51(root: Path) -> Path:
    """root/videos/<class>/<name>.avi and root/splits/<class>_test_split1.txt: per class 3 source movies with
    2 clips each; flags: movie A train, movie B train, movie C test, one clip unused (0)."""
    for label in ("brush_hair", "cartwheel"):
        lines = []
        for movie, flag in (("MovieA", 1), ("MovieB", 1), ("MovieC", 2)):
            for clip in (0, 1):
                name = f"{movie}_{label}_h_nm_np1_fr_goo_{clip}.avi"
                _video(root / "videos" / label / name, frames=8)
                lines.append(f"{name} {flag} \n")  # the official files end lines with a space
        unused = f"MovieD_{label}_f_cm_np1_ri_bad_0.avi"
        _video(root / "videos" / label / unused)
        lines.append(f"{unused} 0 \n")
        (root / "splits").mkdir(parents=True, exist_ok=True)
        (root / "splits" / f"{label}_test_split1.txt").write_text("".join(lines))
    return root


def test_hmdb51_flags_and_source_movie_groups(tmp_path: Path) -> None:
    root = _hmdb51(tmp_path / "src")
    report, dataset = _import(root / "videos", tmp_path / "hmdb", "hmdb51", annotations=(root / "splits",),
                              val_fraction=0.5)
    assert dataset.class_names == ("brush_hair", "cartwheel")
    assert report["clips"] == {"train": 4, "val": 4, "test": 4}
    assert not any("MovieD" in r.video.name for r in dataset.records)  # flag 0: not in this split
    for label in dataset.class_names:
        val_movies = {r.video.name.split("_")[0] for r in dataset.split("val") if r.label == label}
        train_movies = {r.video.name.split("_")[0] for r in dataset.split("train") if r.label == label}
        assert len(val_movies) == 1 and len(train_movies) == 1 and val_movies.isdisjoint(train_movies)
        assert {r.video.name.split("_")[0] for r in dataset.split("test") if r.label == label} == {"MovieC"}
    assert len(ClipDataset(dataset.split("val"), SPEC, train=False, progress=False)) == 4


def test_hmdb51_bad_flag_and_missing_split(tmp_path: Path) -> None:
    root = _hmdb51(tmp_path / "src")
    path = root / "splits" / "cartwheel_test_split1.txt"
    path.write_text(path.read_text() + "MovieE_cartwheel_h_nm_np1_fr_goo_0.avi 3\n")
    with pytest.raises(DatasetFormatError, match=r"cartwheel_test_split1\.txt, line 8: found .* expected "
                                                 r"'<video file name> <flag>' with flag 0"):
        _import(root / "videos", tmp_path / "out", "hmdb51", annotations=(root / "splits",))
    with pytest.raises(DatasetFormatError,
                       match=r"missing split files: no '<class>_test_split2\.txt'.*found splits \[1\]"):
        _import(root / "videos", tmp_path / "out", "hmdb51", annotations=(root / "splits",), split=2)
    (root / "splits" / "brush_hair_test_split2.txt").write_text("")
    with pytest.raises(DatasetFormatError, match=r"cartwheel_test_split1\.txt: class 'cartwheel' has split 1 but no "
                                                 r"cartwheel_test_split2\.txt"):
        _import(root / "videos", tmp_path / "out", "hmdb51", annotations=(root / "splits",), split=2)


# ---------------------------------------------------------------------------------------------------------
# One folder per class


def test_folders_stratified_seeded_split_keeps_subfolders_together(tmp_path: Path) -> None:
    src = tmp_path / "clips"
    for label in ("pour", "stir"):
        for i in range(8):
            _video(src / label / f"clip{i}.mp4", frames=6)
        for i in range(2):
            _video(src / label / "session1" / f"take{i}.MP4", frames=6)  # a group: one split for both
    (src / "pour" / "notes.txt").write_text("not a video")
    _corrupt(src / "stir" / "broken.mp4")

    report, dataset = _import(src, tmp_path / "own", "folders", val_fraction=0.2, test_fraction=0.2, seed=1)
    assert dataset.class_names == ("pour", "stir")
    # 9 groups per class (8 clips + session1; stir's broken video is gone): round(0.2 * 9) = 2 groups each.
    for label in dataset.class_names:
        per_split = {split: [r for r in dataset.split(split) if r.label == label] for split in ("train", "val", "test")}
        sessions = {s for s, records in per_split.items() for r in records if "session1" in r.video.parts}
        assert len(sessions) == 1
        groups = {s: len({r.video.parts[-2] if "session1" in r.video.parts else r.video.name for r in records})
                  for s, records in per_split.items()}
        assert groups == {"train": 5, "val": 2, "test": 2}
    assert report["notes"] == ["ignored 1 file(s) without a video extension"]
    assert [s["video"] for s in report["skipped"]] == ["stir/broken.mp4"]

    with pytest.raises(SplitError, match=r"class 'pour' has 9 train group\(s\); carving 5 val \+ 4 test would leave"):
        _import(src, tmp_path / "too_much", "folders", val_fraction=0.5, test_fraction=0.45)


# ---------------------------------------------------------------------------------------------------------
# THUMOS14


def _thumos14(root: Path) -> Path:
    """root/videos/{validation,test}/*.mp4 at 10 or 30 fps, root/annotations/<class>_{val,test}.txt."""
    _video(root / "videos/validation/video_validation_0000051.mp4", frames=20, fps=10)  # 2.0 s
    _video(root / "videos/validation/video_validation_0000052.mp4", frames=20, fps=30)  # 0.667 s
    _video(root / "videos/validation/video_validation_0000053.mp4", frames=20, fps=10)
    _video(root / "videos/validation/video_validation_0000054.mp4", frames=20, fps=10)
    _video(root / "videos/test/video_test_0000004.mp4", frames=12, fps=30)
    _corrupt(root / "videos/test/video_test_0000005.mp4")
    notes = root / "annotations"
    notes.mkdir(parents=True)
    (notes / "BaseballPitch_val.txt").write_text(
        "video_validation_0000051 0.35 1.2\n"
        "video_validation_0000051  1.5 2.0\n"   # ends exactly at the video's end; official files use 2 spaces
        "video_validation_0000052 0.1 0.5\n"
        "video_validation_0000099 1.0 2.0\n")   # no such video: skipped and counted
    (notes / "CliffDiving_val.txt").write_text("video_validation_0000052 0.2 0.3\nvideo_validation_0000053 0.0 0.04\n"
                                               "video_validation_0000054 0.5 0.9\n")
    (notes / "BaseballPitch_test.txt").write_text("video_test_0000004 0.0 0.1\nvideo_test_0000005 0.0 0.1\n"
                                                  "video_test_0000004 0.05 0.15\n")  # overlaps the first: merged
    (notes / "CliffDiving_test.txt").write_text("video_test_0000004 0.2 0.3\n")
    (notes / "Ambiguous_val.txt").write_text("video_validation_0000051 1.2 1.5\n")
    return root


def test_thumos14_seconds_become_frames_at_each_videos_real_frame_rate(tmp_path: Path) -> None:
    root = _thumos14(tmp_path / "src")
    report, dataset = _import(root / "videos", tmp_path / "thumos", "thumos14", annotations=(root / "annotations",),
                              val_fraction=0.5, seed=0)
    assert dataset.class_names == ("BaseballPitch", "CliffDiving")
    # Every video is one untrimmed record holding all its instances, at its own frame rate.
    found = {r.video.name: [(s.label, s.first, s.last) for s in r.segments] for r in dataset.records}
    assert all(r.untrimmed for r in dataset.records)
    assert found == {
        "video_validation_0000051.mp4": [("BaseballPitch", 4, 12),   # 10 fps: ceil(3.5)..floor(12.0)
                                         ("BaseballPitch", 15, 19)],  # end at the video's end: last frame
        "video_validation_0000052.mp4": [("BaseballPitch", 3, 15),   # 30 fps (at an assumed 25: 3..12)
                                         ("CliffDiving", 6, 9)],      # two classes in one video
        "video_validation_0000053.mp4": [("CliffDiving", 0, 0)],      # shorter than a frame: the nearest frame
        "video_validation_0000054.mp4": [("CliffDiving", 5, 9)],
        # 30 fps: frames 0..3 lie in [0, 0.1] s; the overlapping 0.05-0.15 s instance of the same class merged.
        "video_test_0000004.mp4": [("BaseballPitch", 0, 4), ("CliffDiving", 6, 9)],
    }
    assert report["notes"] == ["ignored 1 segment(s) labelled Ambiguous",
                               "merged 1 overlapping instance(s) of the same class and video"]
    assert sorted(s["video"] for s in report["skipped"]) == ["test/video_test_0000005.mp4", "video_validation_0000099"]
    splits_of = {r.video.name: r.split for r in dataset.records}
    assert splits_of["video_test_0000004.mp4"] == "test"
    assert sorted(splits_of.values()) == ["test", "train", "train", "val", "val"]

    # Training cuts one action window per instance from a validation video, not one clip from the whole video:
    # video 51 gives two samples, each of 4 frames inside its instance's frames (the window's span is 8 here).
    (record,) = [r for r in dataset.records if r.video.name == "video_validation_0000051.mp4"]
    windows = ClipDataset([record], ClipSpec(clip_length=4, height=32, width=32), train=False, progress=False,
                          span=ClipSpan(frames=8, seconds=0.8))
    assert len(windows) == 2
    for i, (first, last) in enumerate([(4, 12), (15, 19)]):
        sample = windows[i]
        frames = sample["frame_indices"].tolist()
        assert frames == sorted(frames) and first - 8 <= frames[0] and frames[-1] <= min(19, last + 8)
        inside = [first <= f <= last for f in frames]
        assert sample["inside"].tolist() == inside and any(inside)


@pytest.mark.parametrize("line, pattern", [
    ("video_validation_0000051 1.0", r"line 2: found 'video_validation_0000051 1\.0', expected '<video name> "
                                     r"<start seconds> <end seconds>'"),
    ("video_validation_0000051 one two", r"line 2: found .*expected '<video name>"),
    ("video_validation_0000051 1.5 1.0", r"line 2: .*with 0 <= start <= end"),
    ("video_validation_0000051 1.0 2.5", r"line 2: video_validation_0000051 1-2\.5 s: expected an instance inside "
                                         r"the video's 2\.000 s \(20 frames at 10 fps\)"),
    ("video_validation_0000051 2.0 2.05", r"line 2: .*inside the video's 2\.000 s"),
])
def test_thumos14_bad_lines_name_the_file_and_line(tmp_path: Path, line: str, pattern: str) -> None:
    root = _thumos14(tmp_path / "src")
    (root / "annotations" / "CliffDiving_val.txt").write_text(f"video_validation_0000052 0.2 0.3\n{line}\n")
    with pytest.raises(DatasetFormatError, match=r"CliffDiving_val\.txt, " + pattern):
        _import(root / "videos", tmp_path / "out", "thumos14", annotations=(root / "annotations",))


def test_thumos14_missing_annotations(tmp_path: Path) -> None:
    _video(tmp_path / "videos" / "video_validation_0000051.mp4")
    with pytest.raises(DatasetFormatError, match=r"missing annotation files: no '<class>_val\.txt'"):
        _import(tmp_path / "videos", tmp_path / "out", "thumos14")


def test_seconds_to_frames_rounds_at_frame_boundaries() -> None:
    from stanet.video import VideoInfo

    info = VideoInfo(num_frames=300, fps=29.97, height=240, width=320)
    # 67.5 s * 29.97 = 2022.975 -> the first frame at or after it is 2023; 7.5 s ends at frame floor(224.775).
    assert seconds_to_frames(0.0, 7.5, info) == (0, 224)
    assert seconds_to_frames(0.1, 0.1, info) == (3, 3)
    with pytest.raises(ValueError, match=r"inside the video's 10\.010 s"):
        seconds_to_frames(10.02, 10.5, info)


# ---------------------------------------------------------------------------------------------------------
# UCF101-24


def _tube(first: int, last: int, x: float) -> np.ndarray:
    """(n, 5) rows of 1-based frame, x1, y1, x2, y2."""
    frames = np.arange(first, last + 1, dtype=np.float32)
    return np.stack([frames, np.full_like(frames, x), frames, np.full_like(frames, x + 10.5),
                     frames + 20], axis=1)


def _ucf101_24(root: Path) -> dict:
    """root/<class>/<video>.avi at 64x48 and the ground-truth dict of UCF101v2-GT.pkl."""
    videos = {"Basketball/v_Basketball_g08_c01": 10, "Basketball/v_Basketball_g09_c01": 10,
              "Basketball/v_Basketball_g01_c01": 12, "Biking/v_Biking_g08_c02": 10, "Biking/v_Biking_g10_c01": 10}
    for name, frames in videos.items():
        _video(root / f"{name}.avi", frames=frames, height=48, width=64)
    return {
        "labels": ["Basketball", "Biking"],
        "gttubes": {
            "Basketball/v_Basketball_g08_c01": {0: [_tube(2, 6, 3.0)]},
            "Basketball/v_Basketball_g09_c01": {0: [_tube(1, 10, 50.0)]},
            "Basketball/v_Basketball_g01_c01": {0: [_tube(3, 12, 0.0)]},
            "Biking/v_Biking_g08_c02": {1: [_tube(1, 4, 5.0), _tube(3, 9, 30.0)]},  # two riders: two records
            "Biking/v_Biking_g10_c01": {1: [_tube(5, 5, 7.0)]},
            "Biking/v_Biking_g02_c01": {1: [_tube(1, 2, 7.0)]},  # not in either split list: not imported
        },
        "nframes": {name: frames for name, frames in videos.items()},
        "train_videos": [["Basketball/v_Basketball_g08_c01", "Basketball/v_Basketball_g09_c01",
                          "Biking/v_Biking_g08_c02", "Biking/v_Biking_g10_c01"]],
        "test_videos": [["Basketball/v_Basketball_g01_c01"]],
        "resolution": {name: (48, 64) for name in videos},
    }


def _as_json(content: dict) -> dict:
    return {**content, "gttubes": {video: {str(label): [tube.tolist() for tube in tubes] for label, tubes in by.items()}
                                   for video, by in content["gttubes"].items()}}


@pytest.mark.parametrize("suffix", [".pkl", ".json"])
def test_ucf101_24_tubes_become_intervals_and_boxes(tmp_path: Path, suffix: str) -> None:
    content = _ucf101_24(tmp_path / "UCF101")
    ground_truth = tmp_path / f"UCF101v2-GT{suffix}"
    if suffix == ".pkl":
        ground_truth.write_bytes(pickle.dumps(content, protocol=2))
    else:
        ground_truth.write_text(json.dumps(_as_json(content)))
    report, dataset = _import(tmp_path / "UCF101", tmp_path / "ucf24", "ucf101-24", annotations=(ground_truth,),
                              val_fraction=0.5)
    assert dataset.class_names == ("Basketball", "Biking")
    assert report["clips"]["test"] == 1 and report["videos"] == 5
    for label in dataset.class_names:  # one of each class's two train groups (gNN) went to val
        assert len({r.video.name.split("_")[-2] for r in dataset.split("val") if r.label == label}) == 1
        assert len({r.video.name.split("_")[-2] for r in dataset.split("train") if r.label == label}) == 1
    first = next(r for r in dataset.records if r.video.name == "v_Basketball_g08_c01.avi")
    assert first.interval == (1, 5)
    assert first.boxes == {f: (3.0, float(f + 1), 13.5, float(f + 21)) for f in range(1, 6)}
    riders = [r for r in dataset.records if r.video.name == "v_Biking_g08_c02.avi"]
    assert [r.interval for r in riders] == [(0, 3), (2, 8)] and riders[0].split == riders[1].split
    line = (tmp_path / "ucf24" / "annotations.jsonl").read_text().splitlines()[0]
    assert '"boxes": {"1": [3, 2, 13.5, 22]' in line  # whole numbers written as ints

    sample = ClipDataset([first], ClipSpec(clip_length=4, height=24, width=32), train=False, progress=False)[0]
    # 10 frames, 4 segments: centre frames 1, 3, 6, 8; boxes on frames 1..5 scaled by 0.5.
    assert sample["inside"].tolist() == [True, True, False, False]
    assert sample["boxes"][0].tolist() == [1.5, 1.0, 6.75, 11.0]
    assert bool(sample["boxes"][2].isnan().all())


def test_ucf101_24_refuses_pickles_that_run_code(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")

    class Payload:
        def __reduce__(self):
            return (os.remove, (str(victim),))

    content = _ucf101_24(tmp_path / "UCF101")
    content["nframes"] = Payload()
    ground_truth = tmp_path / "UCF101v2-GT.pkl"
    ground_truth.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(DatasetFormatError, match=r"UCF101v2-GT\.pkl: refused to load: the pickle calls posix\.remove, "
                                                 r"expected only numpy arrays and builtin containers"):
        _import(tmp_path / "UCF101", tmp_path / "out", "ucf101-24", annotations=(tmp_path,))
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("change, pattern", [
    (lambda c: c["gttubes"]["Biking/v_Biking_g10_c01"].update({1: [_tube(5, 5, 60.0)]}),
     r"gttubes\['Biking/v_Biking_g10_c01'\]\[1\]\[0\] row 0: found the box \[60, 5, 70\.5, 25\], expected "
     r"0 <= x1 < x2 <= 64 .*inside the 64x48 frame"),
    (lambda c: c["gttubes"]["Biking/v_Biking_g10_c01"].update({1: [_tube(9, 11, 1.0)]}),
     r"\[1\]\[0\] row 2: found frame 11, expected a 1-based frame number in 1\.\.10"),
    (lambda c: c["gttubes"]["Biking/v_Biking_g10_c01"].update({7: [_tube(1, 2, 1.0)]}),
     r"found label index 7, expected 0\.\.1"),
    (lambda c: c["gttubes"]["Biking/v_Biking_g10_c01"].update({1: [np.zeros((2, 4))]}),
     r"\[1\]\[0\]: found shape \(2, 4\), expected \(n, 5\)"),
    (lambda c: c.pop("test_videos"), r"field 'test_videos': missing"),
    (lambda c: c["test_videos"][0].append("Biking/v_Biking_g03_c01"),
     r"field 'gttubes': video 'Biking/v_Biking_g03_c01' of test_videos has no entry"),
    (lambda c: c.update(labels="Basketball"), r"field 'labels': expected a non-empty list of class names"),
])
def test_ucf101_24_bad_ground_truth(tmp_path: Path, change, pattern: str) -> None:
    content = _ucf101_24(tmp_path / "UCF101")
    change(content)
    (tmp_path / "UCF101v2-GT.pkl").write_bytes(pickle.dumps(content))
    with pytest.raises(DatasetFormatError, match=r"UCF101v2-GT\.pkl: .*" + pattern):
        _import(tmp_path / "UCF101", tmp_path / "out", "ucf101-24", annotations=(tmp_path,))


def test_ucf101_24_split_number_and_flat_video_lists(tmp_path: Path) -> None:
    content = _ucf101_24(tmp_path / "UCF101")
    (tmp_path / "UCF101v2-GT.pkl").write_bytes(pickle.dumps(content))
    with pytest.raises(DatasetFormatError, match=r"field 'train_videos': has 1 split\(s\), expected split 2"):
        _import(tmp_path / "UCF101", tmp_path / "out", "ucf101-24", annotations=(tmp_path,), split=2)
    # One flat list per key (no per-split lists) is split 1.
    content.update(train_videos=content["train_videos"][0], test_videos=content["test_videos"][0])
    (tmp_path / "UCF101v2-GT.pkl").write_bytes(pickle.dumps(content))
    report, _ = _import(tmp_path / "UCF101", tmp_path / "out", "ucf101-24", annotations=(tmp_path,), val_fraction=0.0)
    assert report["clips"] == {"train": 5, "val": 0, "test": 1}


# ---------------------------------------------------------------------------------------------------------
# The command


def test_command_imports_reports_skips_and_overwrites_only_imports(tmp_path: Path, capsys) -> None:
    root = _ucf101(tmp_path / "src")
    out = tmp_path / "data"
    argv = ["data", "import", "--format", "ucf101", str(root / "UCF-101"), "--annotations", str(root), "--out",
            str(out), "--quiet"]
    assert stanet_main(argv) == 0
    captured = capsys.readouterr()
    # --val-fraction 0.1 of 4 groups rounds to 0: at least one group (2 clips) per class.
    assert f"imported 23 clips (train 11, val 4, test 8) of 23 videos, 2 classes, into {out}" in captured.out
    assert "skipped 1 unreadable video(s): Archery/v_Archery_g11_c02.avi: not a decodable video" in captured.err
    assert json.loads((out / IMPORT_REPORT_FILE).read_text())["clips"] == {"train": 11, "val": 4, "test": 8}

    assert stanet_main(argv) == 2
    assert "exists and is not empty; pass --overwrite" in capsys.readouterr().err
    assert stanet_main([*argv, "--overwrite"]) == 0
    capsys.readouterr()
    assert len(list((root / "UCF-101").rglob("*.avi"))) == 24  # replacing the link never touched the videos
    assert len(load_dataset(out).records) == 23

    other = tmp_path / "mine"
    (other / "keep.txt").parent.mkdir()
    (other / "keep.txt").write_text("x")
    assert stanet_main([*argv[:-2], str(other), "--overwrite", "--quiet"]) == 2
    assert "is not an imported dataset (no import.json)" in capsys.readouterr().err

    assert stanet_main(["data", "import", "--format", "ucf101", str(root / "UCF-101"), "--out", str(tmp_path / "x"),
                        "--test-fraction", "0.2", "--quiet"]) == 2
    assert "--test-fraction applies to the folder layout only" in capsys.readouterr().err
    assert stanet_main(["data", "import", "--format", "ucf101", str(root / "UCF-101"), "--out",
                        str(root / "UCF-101" / "out"), "--quiet"]) == 2
    assert "lies inside the source" in capsys.readouterr().err

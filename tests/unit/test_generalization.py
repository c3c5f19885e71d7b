"""The generalization suite: every member valid and what the brief asks for, their data commands reproduce
their configs, the pass/fail logic and the table on hand-made metrics.json files, and the runner's
skip/resume decisions (with `stanet` faked: nothing trains here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import puppets, synth
from training.generalization import cli, run
from training.generalization.suite import (RELAXED_TARGETS, STANDARD_TARGETS, SUITE, Member, member_by_name,
                                           select)
from training.generalization.verdict import failures, suite_table
from training.report import main as report_main
from training.synth import SynthConfig
from training.synth.generate import config_from_args


def _metrics(top1=0.95, pointing=0.9, cam=0.5, iou=(0.99, 0.9, 0.7, 0.5), mass=0.8, uniform_mass=0.45, ap=0.9,
             uniform_ap=0.45) -> dict:
    return {
        "classification": {"top1": top1},
        "spatial": {"model": {"pointing_game": pointing, "iou_at": dict(zip(("0.05", "0.1", "0.2", "0.3"), iou)),
                              "peak_offset": {"x": 1.25, "y": -0.5, "distance": 2.0},
                              "mass_on_box": {"mask": 0.6, "cells": 0.05}},
                    "cam_baseline": {"pointing_game": cam, "iou_at": {"0.05": 0.6, "0.1": 0.4, "0.2": 0.2,
                                                                      "0.3": 0.1}}},
        "temporal": {"model": {"mass_inside": mass, "frame_ap": ap},
                     "uniform_baseline": {"mass_inside": uniform_mass, "frame_ap": uniform_ap}},
    }


def _write_run(run_dir: Path, metrics: dict, epochs: int = 3, elapsed_s: float = 600.0) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "history.jsonl").write_text("".join(json.dumps({"epoch": e + 1, "elapsed_s": elapsed_s * (e + 1) / epochs})
                                                   + "\n" for e in range(epochs)))
    return run_dir


def test_members_are_valid_unique_and_cover_the_brief() -> None:
    names = [m.name for m in SUITE]
    assert len(SUITE) >= 6 and len(set(names)) == len(names)
    synth_members = [m for m in SUITE if m.generator == "synth"]
    assert any(m.data.background == "texture" and m.data.pan > 0 and not m.lookalike and m.data.frame_size == 64
               for m in synth_members)  # (a)
    assert any(m.data.background == "texture" and m.data.pan > 0 and m.lookalike and m.data.frame_size == 96
               for m in synth_members)  # (b)
    assert any(m.lookalike and m.train_per_class == 60 for m in synth_members)  # (c)
    assert any(m.data.frame_size == 128 and m.data.actor_scale < 0.1 and m.data.num_frames == 48
               for m in synth_members)  # (d)
    assert any(m.data.background == "flat" for m in synth_members)  # (e)
    assert any(m.generator == "puppets" for m in SUITE)  # (f)
    sizes = [m.data.frame_size for m in SUITE]
    lengths = [m.data.num_frames for m in SUITE]
    per_class = [m.train_per_class for m in SUITE]
    assert (min(sizes), max(sizes)) == (32, 128) and (min(lengths), max(lengths)) == (16, 48)
    assert (min(per_class), max(per_class)) == (60, 240)
    assert all(m.data.test >= 160 and m.data.val >= 2 * m.num_classes for m in SUITE)
    assert len({m.data.seed for m in SUITE}) == len(SUITE)


def test_member_definitions_are_checked() -> None:
    good = SUITE[0].data
    with pytest.raises(ValueError, match=r"member name must be lower-case letters, digits and '_', got 'Bad-Name'"):
        Member("Bad-Name", "", good)
    with pytest.raises(ValueError, match=r"member x: test must be >= 160 clips, got 100"):
        Member("x", "", SynthConfig(test=100))
    with pytest.raises(ValueError, match=r"member x: train must be a multiple of 8 classes, got 12"):
        Member("x", "", SynthConfig(train=12, test=160))


@pytest.mark.parametrize("member", SUITE, ids=lambda m: m.name)
def test_data_command_reproduces_the_members_config(member: Member) -> None:
    argv = member.generate_argv("data/generalization/" + member.name)
    assert argv[:2] == ["data", member.generator]
    module = synth if member.generator == "synth" else puppets
    assert config_from_args(module.parse_args(argv[2:]), type(member.data)) == member.data


def test_targets_are_relaxed_only_for_lookalikes_with_few_clips() -> None:
    relaxed = [m.name for m in SUITE if m.targets == RELAXED_TARGETS]
    assert relaxed == [m.name for m in SUITE if m.lookalike and m.train_per_class <= 60] and relaxed
    assert (RELAXED_TARGETS.top1, RELAXED_TARGETS.pointing) == (0.85, 0.70)
    assert (STANDARD_TARGETS.top1, STANDARD_TARGETS.pointing, STANDARD_TARGETS.iou_at_03,
            STANDARD_TARGETS.mass_inside) == (0.90, 0.80, 0.40, 0.70)


def test_select_keeps_suite_order_and_names_unknown_members() -> None:
    assert select(None) == list(SUITE) and select("") == list(SUITE)
    assert [m.name for m in select(f"{SUITE[2].name}, {SUITE[0].name}")] == [SUITE[0].name, SUITE[2].name]
    with pytest.raises(ValueError, match=r"unknown suite member 'nope'; members: texture_pan_other_64, "):
        select("nope")


def test_failures_name_every_missed_target() -> None:
    assert failures(_metrics(), STANDARD_TARGETS) == []
    assert failures(_metrics(top1=0.89), STANDARD_TARGETS) == ["top-1 < 90"]
    assert failures(_metrics(top1=0.86, pointing=0.72), RELAXED_TARGETS) == []
    assert failures(_metrics(pointing=0.85, cam=0.86), STANDARD_TARGETS) == ["pointing not above CAM"]
    assert failures(_metrics(iou=(1.0, 1.0, 0.5, 0.39)), STANDARD_TARGETS) == ["IoU@0.3 < 40"]
    assert failures(_metrics(mass=0.6, uniform_mass=0.65), STANDARD_TARGETS) == [
        "mass inside < 70", "mass inside not above uniform"]
    assert failures(_metrics(ap=0.45), STANDARD_TARGETS) == ["frame-AP not above uniform"]
    # the inverted mask the suite exists to catch: everything about "where" fails, None counts as a miss
    inverted = _metrics(pointing=0.02, cam=0.5, iou=(0.1, 0.0, 0.0, None))
    assert failures(inverted, STANDARD_TARGETS) == ["pointing < 80", "pointing not above CAM", "IoU@0.3 < 40"]


def test_suite_table_one_recipe_and_side_by_side(tmp_path: Path) -> None:
    a, b = SUITE[0].name, SUITE[2].name  # b has the relaxed targets
    _write_run(tmp_path / "plain" / a, _metrics(), epochs=24, elapsed_s=366.0)
    _write_run(tmp_path / "plain" / b, _metrics(top1=0.86, pointing=0.75))
    _write_run(tmp_path / "other" / a, _metrics(pointing=0.1, cam=0.4))
    table, missing = suite_table([tmp_path / "plain"], [a, b])
    lines = table.splitlines()
    assert lines[0] == ("| member | top-1 | mask pointing | CAM pointing | IoU@0.05 | IoU@0.1 | IoU@0.2 | IoU@0.3 "
                        "| peak offset px | mask mass on box (cells) | mass inside (uniform) | frame-AP (uniform) | epochs "
                        "| train min | pass/fail |")
    assert lines[1] == "|---" * 15 + "|"
    assert lines[2] == (f"| {a} | 95.0 | 90.0 | 50.0 | 99.0 | 90.0 | 70.0 | 50.0 | (+1.2, -0.5) 2.0 | 60.0 (5.0) "
                        f"| 80.0 (45.0) | 90.0 (45.0) | 24 | 6.1 | pass |")
    assert lines[3].endswith("| pass |") and missing == []
    table, missing = suite_table([tmp_path / "plain", tmp_path / "other"], [a, b])
    rows = table.splitlines()[2:]
    assert table.splitlines()[0].startswith("| member | recipe | top-1 |")
    assert [row.split(" | ")[:2] for row in rows] == [[f"| {a}", "plain"], [f"| {a}", "other"], [f"| {b}", "plain"]]
    assert rows[1].endswith("| FAIL: pointing < 80, pointing not above CAM |")
    assert missing == [f"other/{b}"]


def test_the_ablation_table_is_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_run(tmp_path / "full", _metrics(), epochs=24, elapsed_s=366.0)
    assert report_main([str(tmp_path / "full")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "| run | top-1 | pointing | IoU>=0.3 | IoU>=0.05 | CAM pointing | CAM IoU>=0.3 | mass inside (uniform) "
        "| frame-AP (uniform) | epochs | train min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| full | 95.0 | 90.0 | 50.0 | 99.0 | 50.0 | 10.0 | 80.0 (45.0) | 90.0 (45.0) | 24 | 6.1 |",
    ]


class FakeStanet:
    """Stands in for `python -m stanet` subprocesses: records argv and writes what the real command would."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], log: Path | None = None) -> tuple[int, float]:
        self.calls.append(argv)
        if argv[0] == "train":
            out = Path(argv[argv.index("--out") + 1])
            out.mkdir(parents=True, exist_ok=True)
            for name in ("best.pt", "last.pt"):
                (out / name).write_text("")
            (out / "history.jsonl").write_text(json.dumps({"epoch": 1, "elapsed_s": 60.0}) + "\n")
            (out / "run_config.json").write_text(json.dumps({"train": {"max_minutes": 19.0}}))
        elif argv[0] == "evaluate":
            Path(argv[argv.index("--output") + 1]).write_text(json.dumps(_metrics()))
        return 0, 1.0


def test_runner_trains_evaluates_skips_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStanet()
    monkeypatch.setattr(run, "stanet", fake)
    member, recipe_dir, data = member_by_name("flat_32"), tmp_path / "runs" / "mine", tmp_path / "data"
    run.run_member(member, data, recipe_dir, ["--preset", "synthetic"], 19.0)
    assert [c[0] for c in fake.calls] == ["train", "evaluate"]
    assert fake.calls[0][-4:] == ["--preset", "synthetic", "--set", "train.max_minutes=19"]
    assert fake.calls[1][fake.calls[1].index("--split") + 1] == "test"
    assert json.loads((recipe_dir / "logs" / "flat_32.json").read_text())["finished"] is True
    assert run.check_limit(recipe_dir / member.name) is None
    (recipe_dir / member.name / "run_config.json").write_text(json.dumps({"train": {"max_minutes": 60}}))
    assert "trained with train.max_minutes=60 (the suite's rule is <= 19" in run.check_limit(recipe_dir / member.name)

    fake.calls.clear()
    assert run.run_member(member, data, recipe_dir, [], 19.0) == "done before" and fake.calls == []

    (recipe_dir / member.name / "metrics.json").unlink()  # interrupted while evaluating: evaluate only
    run.run_member(member, data, recipe_dir, [], 19.0)
    assert [c[0] for c in fake.calls] == ["evaluate"]

    fake.calls.clear()  # interrupted while training: resume with the run's own configuration
    (recipe_dir / member.name / "metrics.json").unlink()
    (recipe_dir / "logs" / "flat_32.json").write_text(json.dumps({"train_argv": [], "finished": False}))
    run.run_member(member, data, recipe_dir, ["--preset", "synthetic"], 19.0)
    assert fake.calls[0][-1] == "--resume" and "--preset" not in fake.calls[0]

    fake.calls.clear()  # an empty recipe is plain `stanet train`: no --set that would drop its preset
    run.run_member(member_by_name("flat_32"), data, tmp_path / "runs" / "default", [], 19.0)
    assert fake.calls[0] == ["train", "--data", str(data), "--out", str(tmp_path / "runs" / "default" / "flat_32")]


def test_runner_refuses_data_of_another_definition(tmp_path: Path) -> None:
    member = member_by_name("flat_32")
    data_dir = tmp_path / member.name
    data_dir.mkdir()
    (data_dir / "annotations.jsonl").write_text("")
    (data_dir / member.config_file).write_text(json.dumps({**member.data.to_dict(), "seed": 1}))
    with pytest.raises(run.SuiteError, match=r"not generated from the current definition of member flat_32"):
        run.ensure_data(member, tmp_path)


def test_cli_needs_a_name_for_a_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--recipe", "--preset synthetic", "--members", "flat_32"]) == 2
    assert "--recipe needs a --recipe-name of its own" in capsys.readouterr().err
    assert cli.main(["list"]) == 0
    assert "stanet data puppets --out data/generalization/puppets_pan_80" in capsys.readouterr().out

"""`stanet evaluate`: accuracy and how well the attention localizes, on one split of a dataset.

Reports (stable JSON keys, see README "Evaluation output"):
- classification: top-1, top-5, per-class accuracy, confusion matrix;
- spatial: the paper's protocol (mask -> min-max -> frame size -> threshold 200/255 -> largest component's
  box; fraction of frames with IoU >= alpha) and the pointing game, for the model's masks and for the CAM
  baseline (a linear classifier without attention fitted on the same trunk's pooled features);
- temporal: frame-level AP, attention mass inside the ground-truth interval and the paper's hit rate, for
  the model's weights and for uniform weights;
- faithfulness (`--faithfulness`): deletion/insertion areas and the randomization test
  (training/faithfulness/__init__.py; docs/model.md, "Faithfulness").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from stanet.checkpoint import CheckpointError, load_checkpoint
from stanet.constants import ANNOTATIONS_FILE
from stanet.dataset_format import DatasetFormatError, load_dataset
from stanet.model import AttentionRecognizer
from stanet.model.preprocess import normalize_clip
from stanet.model.recognizer import probabilities
from training import metrics
from training.data import ClipDataset, ClipSpec
from training.faithfulness.config import BASELINES, DEFAULT_CLIPS, FaithfulnessConfig
from training.loop import TrainingError, select_device


class EvaluationError(RuntimeError):
    pass


def _batches(dataset: ClipDataset, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)


@torch.no_grad()
def fit_cam_classifier(model: AttentionRecognizer, dataset: ClipDataset, device: torch.device, *,
                       batch_size: int = 32, num_workers: int = 0, iterations: int = 200,
                       progress: bool = True) -> np.ndarray:
    """The CAM baseline's classifier: multinomial logistic regression on GAP over (T, h, w) of the trunk
    features, no attention. Returns the weight (K, C); CAM_t = sum_c W[k, c] X_t[c]."""
    model.eval()
    pooled, labels = [], []
    for batch in tqdm(_batches(dataset, batch_size, num_workers), desc="CAM baseline features", leave=False,
                      disable=not progress):
        features, _ = model.split_prior(model.forward_features(normalize_clip(batch["clip"].to(device))))
        pooled.append(features.mean(dim=(1, 3, 4)).cpu())  # (B, C)
        labels.append(batch["label"])
    x, y = torch.cat(pooled), torch.cat(labels)
    scale = x.std(dim=0, keepdim=True).clamp_min(1e-6)
    head = torch.nn.Linear(x.shape[1], model.config.num_classes)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(x / scale), y) + 1e-3 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return (head.weight.detach() / scale).numpy()  # (K, C), undoing the feature scaling


@torch.no_grad()
def collect(model: AttentionRecognizer, dataset: ClipDataset, device: torch.device, *, batch_size: int,
            num_workers: int, cam_weight: np.ndarray | None, progress: bool) -> dict[str, Any]:
    """Run the model over the dataset; returns per-clip arrays (numpy) for the metrics."""
    model.eval()
    out: dict[str, list] = {k: [] for k in ("probabilities", "labels", "spatial", "temporal", "inside", "boxes",
                                            "cam", "index")}
    for batch in tqdm(_batches(dataset, batch_size, num_workers), desc="evaluating", unit="batch", leave=False,
                      disable=not progress):
        features = model.forward_features(normalize_clip(batch["clip"].to(device)))  # (B, T, C, h, w)
        result = model.forward_head(features)
        out["probabilities"].append(probabilities(result).cpu().numpy())
        out["spatial"].append(result.spatial_attention.float().cpu().numpy())
        out["temporal"].append(result.temporal_attention.float().cpu().numpy())
        for key, name in (("labels", "label"), ("inside", "inside"), ("boxes", "boxes"), ("index", "index")):
            out[key].append(batch[name].numpy())
        if cam_weight is not None:
            feats = model.split_prior(features)[0].float().cpu().numpy()  # (B, T, C, h, w): the trunk's alone
            pooled = feats.mean(axis=(1, 3, 4))  # (B, C)
            predicted = (pooled @ cam_weight.T).argmax(axis=1)
            out["cam"].append(np.stack([metrics.class_activation_maps(f, cam_weight, int(k))
                                        for f, k in zip(feats, predicted)]))
    return {k: np.concatenate(v) if v else None for k, v in out.items()}


def _boxes_per_clip(boxes: np.ndarray, inside: np.ndarray | None = None) -> list[list[tuple[float, ...] | None]]:
    """Per clip, the T boxes (None where absent). With `inside`, a clip that has an interval keeps only the
    boxes of frames inside it: spatial localization is scored where the action happens, as the paper's
    UCF101-24 protocol does (its boxes exist only on the action tube)."""
    out = []
    for i, clip in enumerate(boxes):
        keep = inside[i] if inside is not None and inside[i].any() else np.ones(len(clip), dtype=bool)
        out.append([None if not k or np.isnan(b).any() else tuple(float(v) for v in b) for b, k in zip(clip, keep)])
    return out


def check_classes(data_dir: str | Path, dataset, ckpt) -> None:
    """EvaluationError unless the dataset has the checkpoint's action classes, same names in the same order."""
    if tuple(dataset.class_names) != ckpt.action_class_names:
        raise EvaluationError(f"{data_dir} has classes {list(dataset.class_names)[:6]}..., the checkpoint was "
                              f"trained on {list(ckpt.action_class_names)[:6]}... (same names in the same order "
                              f"needed)")


def evaluate(checkpoint: str | Path, data_dir: str | Path, *, split: str = "test", device: str = "auto",
             batch_size: int = 32, num_workers: int = 0, cam_baseline: bool = True, cam_clips: int = 512,
             figures: str | Path | None = None, num_figures: int = 8, progress: bool = True,
             faithfulness: FaithfulnessConfig | None = None, served: list[str | Path] | None = None,
             served_clips: int = 8) -> dict[str, Any]:
    if served and faithfulness is None:
        raise EvaluationError("served graphs are compared on the faithfulness numbers: add --faithfulness")
    ckpt = load_checkpoint(checkpoint)
    config = ckpt.model_config
    dataset = load_dataset(data_dir)
    check_classes(data_dir, dataset, ckpt)
    records = [record for record in dataset.split(split) if not record.untrimmed]  # untrimmed: --timeline
    if not records:
        raise EvaluationError(f"{data_dir} has no trimmed clips with split {split!r}")
    spec = ClipSpec(config.clip_length, config.height, config.width)
    target = ClipDataset(records, spec, train=False, cache=False, progress=progress, description=f"{split} videos",
                         annotations=dataset.root / ANNOTATIONS_FILE)
    if len(target) == 0:
        raise EvaluationError(f"every {split} video is unreadable ({len(target.skipped)} skipped)")
    dev = select_device(device)
    model = ckpt.build_model().to(dev).eval()

    cam_weight = None
    if cam_baseline:
        fit_records = ([r for r in dataset.split("train") if not r.untrimmed][:cam_clips]
                       or [r for r in dataset.split("val") if not r.untrimmed][:cam_clips])
        fit_set = ClipDataset(fit_records, spec, train=False, cache=False, progress=progress,
                              description="CAM fit videos")
        cam_weight = fit_cam_classifier(model, fit_set, dev, batch_size=batch_size, num_workers=num_workers,
                                        progress=progress)
    res = collect(model, target, dev, batch_size=batch_size, num_workers=num_workers, cam_weight=cam_weight,
                  progress=progress)

    labels = res["labels"]
    classification = metrics.classification_metrics(res["probabilities"], labels, ckpt.class_names)
    correct = list(res["probabilities"].argmax(axis=1) == labels)
    boxes = _boxes_per_clip(res["boxes"], res["inside"])
    frame_hw = (config.height, config.width)
    temporal = list(res["temporal"])
    inside = list(res["inside"])
    uniform = [np.full_like(w, 1.0 / w.shape[0]) for w in temporal]
    report: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "data": str(data_dir),
        "split": split,
        "num_clips": int(len(labels)),
        "skipped_videos": len(target.skipped),
        "model_config": config.to_dict(),
        "class_names": list(ckpt.class_names),
        "classification": classification,
        "spatial": {"model": metrics.spatial_localization(list(res["spatial"]), boxes, frame_hw)},
        "temporal": {"model": metrics.temporal_localization(temporal, inside, correct),
                     "uniform_baseline": metrics.temporal_localization(uniform, inside, correct)},
    }
    if res["cam"] is not None:
        report["spatial"]["cam_baseline"] = metrics.spatial_localization(list(res["cam"]), boxes, frame_hw)
    if figures is not None:
        report["figures"] = write_figures(figures, target, res, ckpt.class_names, num_figures)
    if faithfulness is not None:
        from training.faithfulness.section import faithfulness_section  # noqa: PLC0415 - captum when asked

        report["faithfulness"] = faithfulness_section(
            model, target, faithfulness, cam_weight=cam_weight, served=served, served_clips=served_clips,
            figures=figures, num_figures=num_figures, class_names=ckpt.class_names, progress=progress)
    return report


def write_figures(out_dir: str | Path, dataset: ClipDataset, res: dict[str, Any], class_names, count: int) -> list[str]:
    """One figure for each of the first `count` clips, spread over the classes."""
    from training.figures import save_clip_figure  # noqa: PLC0415 - matplotlib only when asked

    out_dir = Path(out_dir)
    chosen, seen_classes = [], set()
    for i, label in enumerate(res["labels"]):  # first one clip per class, then fill up in order
        if label not in seen_classes:
            chosen.append(i)
            seen_classes.add(label)
    chosen += [i for i in range(len(res["labels"])) if i not in chosen]
    written = []
    for i in chosen[:count]:
        sample = dataset[int(res["index"][i])]
        predicted = int(res["probabilities"][i].argmax())
        truth = int(res["labels"][i])
        title = (f"clip {i}: true {class_names[truth]}, predicted {class_names[predicted]} "
                 f"({res['probabilities'][i][predicted]:.2f})")
        path = save_clip_figure(out_dir / f"clip_{i:04d}_{class_names[truth]}.png", sample["clip"].numpy(),
                                res["spatial"][i], res["temporal"][i], boxes=_boxes_per_clip(res["boxes"][i:i + 1])[0],
                                inside=res["inside"][i], title=title)
        written.append(str(path))
    return written


def format_report(report: dict[str, Any]) -> str:
    """A short human-readable table of the headline numbers."""
    c, s, t = report["classification"], report["spatial"], report["temporal"]

    def pct(value) -> str:
        return "   n/a" if value is None else f"{100 * value:6.1f}"

    lines = [f"{report['split']} split: {report['num_clips']} clips"
             + (f" ({report['skipped_videos']} unreadable videos skipped)" if report["skipped_videos"] else ""),
             f"  top-1 {pct(c['top1'])}%   top-5 {pct(c['top5'])}%", "",
             "  spatial (frames with a box)    IoU>=.05  IoU>=.1  IoU>=.2  IoU>=.3  pointing"]
    for name, values in s.items():
        iou = values["iou_at"]
        lines.append(f"    {name:<28}{pct(iou['0.05'])}   {pct(iou['0.1'])}  {pct(iou['0.2'])}  "
                     f"{pct(iou['0.3'])}  {pct(values['pointing_game'])}")
    lines += ["", "  temporal                       frame-AP  mass-in  (uniform mass)  paper hit@0.3"]
    for name, values in t.items():
        lines.append(f"    {name:<28}{pct(values['frame_ap'])}   {pct(values['mass_inside'])}   "
                     f"{pct(values['interval_fraction'])}          {pct(values['paper_hit_rate']['0.3'])}")
    if "faithfulness" in report:
        from training.faithfulness.section import format_faithfulness  # noqa: PLC0415

        lines += format_faithfulness(report["faithfulness"])
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from stanet.timeline.arguments import add_timeline_arguments  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="stanet evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run")
    parser.add_argument("--data", required=True, help="dataset directory in the generic format")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--json", action="store_true", help="print the full report as JSON instead of a table")
    parser.add_argument("--output", help="also write the JSON report to this file")
    parser.add_argument("--figures", help="write attention figures for a few clips into this directory")
    parser.add_argument("--num-figures", type=int, default=8)
    parser.add_argument("--no-cam-baseline", action="store_true", help="skip fitting the CAM baseline")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--faithfulness", action="store_true",
                        help="also measure deletion/insertion curves and the randomization test")
    parser.add_argument("--faithfulness-clips", default=str(DEFAULT_CLIPS), metavar="N|all",
                        help=f"clips of the split scored, a seeded subsample (default {DEFAULT_CLIPS}; "
                             "all: every clip)")
    parser.add_argument("--faithfulness-steps", type=int, default=FaithfulnessConfig.steps,
                        help="steps of every curve (>= 2; a clip of fewer frames: one frame per temporal step)")
    parser.add_argument("--faithfulness-baseline", default=FaithfulnessConfig.baseline,
                        help=f"what removed pixels become: {' or '.join(BASELINES)}")
    parser.add_argument("--faithfulness-seed", type=int, default=FaithfulnessConfig.seed)
    parser.add_argument("--served", action="append", metavar="PATH",
                        help="exported graph (.onnx, model folder or repository) whose outputs recompute the "
                             "model's curves, compared with PyTorch's (repeatable; needs --faithfulness)")
    parser.add_argument("--served-clips", type=int, default=8, help="clips recomputed through each served graph")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    timeline = parser.add_argument_group("timeline: detection mAP on the split's untrimmed records (docs/timeline.md)")
    timeline.add_argument("--timeline", action="store_true",
                          help="add the THUMOS14 mAP of the timeline and its two baselines (JSON key 'timeline')")
    add_timeline_arguments(timeline)
    args = parser.parse_args(argv)
    return args


def faithfulness_config(args: argparse.Namespace) -> FaithfulnessConfig | None:
    """The settings the --faithfulness-* options give (ValueError naming a bad one), None without --faithfulness."""
    if not args.faithfulness:
        return None
    clips = args.faithfulness_clips
    if clips != "all":
        try:
            clips = int(clips)
        except ValueError:
            raise ValueError(f"--faithfulness-clips must be a positive number of clips or 'all', "
                             f"got {clips!r}") from None
        if clips <= 0:
            raise ValueError(f"--faithfulness-clips must be a positive number of clips or 'all', got {clips}")
    return FaithfulnessConfig(steps=args.faithfulness_steps, baseline=args.faithfulness_baseline,
                              clips=None if clips == "all" else clips, seed=args.faithfulness_seed)


def _evaluate_clips(args: argparse.Namespace) -> dict[str, Any]:
    """`evaluate` on the trimmed clips of the split, with the command line's options."""
    return evaluate(args.checkpoint, args.data, split=args.split, device=args.device, batch_size=args.batch_size,
                    num_workers=args.num_workers, cam_baseline=not args.no_cam_baseline, figures=args.figures,
                    num_figures=args.num_figures, progress=not args.quiet,
                    faithfulness=faithfulness_config(args), served=args.served, served_clips=args.served_clips)


def _evaluate_with_timeline(args: argparse.Namespace) -> dict[str, Any]:
    """The trimmed clips' report (when the split has any) plus the untrimmed records' "timeline" section."""
    from stanet.timeline.arguments import timeline_options  # noqa: PLC0415
    from training.timeline_eval import evaluate_timeline  # noqa: PLC0415

    options = timeline_options(args)  # a bad setting is named before the model runs

    dataset = load_dataset(args.data)
    ckpt = load_checkpoint(args.checkpoint)
    check_classes(args.data, dataset, ckpt)
    if any(not record.untrimmed for record in dataset.split(args.split)):
        report = _evaluate_clips(args)
    else:
        report = {"checkpoint": str(args.checkpoint), "data": str(args.data), "split": args.split,
                  "class_names": list(ckpt.class_names)}
    report["timeline"] = evaluate_timeline(ckpt, dataset, args.split, select_device(args.device),
                                           batch_size=args.batch_size, options=options, figures=args.figures,
                                           num_figures=args.num_figures, progress=not args.quiet)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from training.timeline_eval import TimelineEvaluationError, format_timeline  # noqa: PLC0415

    try:
        if args.served_clips <= 0:
            raise ValueError(f"--served-clips must be a positive number of clips, got {args.served_clips}")
        if args.timeline:
            report = _evaluate_with_timeline(args)
        else:
            report = _evaluate_clips(args)
    except (EvaluationError, CheckpointError, DatasetFormatError, TrainingError, TimelineEvaluationError,
            ValueError) as exc:
        print(f"stanet evaluate: error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n")
    if args.json:
        print(text)
    else:
        print("\n".join(([format_report(report)] if "classification" in report else [])
                        + ([format_timeline(report["timeline"])] if "timeline" in report else [])))
    if args.figures and not args.json:
        count = len(report.get("figures", [])) + len(report.get("timeline", {}).get("figures", []))
        print(f"\nfigures: {count} written to {args.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

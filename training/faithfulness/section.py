"""The `faithfulness` section of `stanet evaluate`'s report: picks the clips (a seeded subsample), measures,
optionally recomputes the model's curves through served graphs, and draws the figures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from stanet.model import AttentionRecognizer
from training.data import ClipDataset
from training.faithfulness.config import FaithfulnessConfig
from training.faithfulness.measure import choose_clips, measure_faithfulness
from training.faithfulness.predict import TorchPredictor

FIGURE_CLIPS = 4  # at most this many faithfulness figures, whatever --num-figures says


def faithfulness_section(model: AttentionRecognizer, dataset: ClipDataset, config: FaithfulnessConfig, *,
                         cam_weight: np.ndarray | None = None, served: list[str | Path] | None = None,
                         served_clips: int = 8, figures: str | Path | None = None, num_figures: int = 4,
                         class_names: tuple[str, ...] = (), progress: bool = True) -> dict[str, Any]:
    if served_clips <= 0:
        raise ValueError(f"served_clips must be a positive number of clips, got {served_clips}")
    start, cpu_start = time.perf_counter(), time.process_time()
    chosen = choose_clips(len(dataset), config)
    clips = np.stack([dataset[int(i)]["clip"].numpy() for i in chosen])  # (N, T, H, W, 3) uint8
    with tqdm(total=len(chosen), desc="faithfulness", unit="clip", leave=False, disable=not progress) as bar:
        section, raw = measure_faithfulness(model, clips, chosen, config, cam_weight=cam_weight, progress=bar.update)
    section = {"settings": {**config.to_dict(), "clips_scored": int(len(chosen)), "clips_in_split": len(dataset),
                            "clip_indices": [int(i) for i in chosen]}, **section}
    if served:
        from training.faithfulness.served import served_faithfulness  # noqa: PLC0415 - onnxruntime when asked

        n = min(served_clips, len(chosen))
        section["served"] = served_faithfulness(TorchPredictor(model, config.batch_size), list(served), clips[:n],
                                                chosen[:n], config)
    if figures is not None:
        from training.faithfulness.figures import save_faithfulness_figure  # noqa: PLC0415 - matplotlib

        written = []
        for i in range(min(FIGURE_CLIPS, num_figures, len(chosen))):
            k = int(raw["classes"][i])
            name = class_names[k] if k < len(class_names) else str(k)
            written.append(str(save_faithfulness_figure(Path(figures) / f"faithfulness_clip_{int(chosen[i]):04d}.png",
                                                        clips[i], i, raw, f"clip {int(chosen[i])}: predicted {name}")))
        section["figures"] = written
    section["seconds"] = round(time.perf_counter() - start, 1)
    section["cpu_seconds"] = round(time.process_time() - cpu_start, 1)  # every thread
    return section


def format_faithfulness(section: dict[str, Any]) -> list[str]:
    """The table lines of the faithfulness section."""
    settings = section["settings"]

    def num(value) -> str:
        return "   n/a" if value is None else f"{value:6.3f}"

    scored, total = settings["clips_scored"], settings["clips_in_split"]
    sample = (f"all {total} clips" if scored == total else
              f"{scored} of {total} clips (seeded subsample, seed {settings['seed']})")
    lines = ["", f"  faithfulness on {sample}, baseline {settings['baseline']}, {settings['steps']} steps, "
                 f"{section['seconds']:.0f} s ({section['cpu_seconds']:.0f} CPU s)",
             "    deletion / insertion AUC (p of the predicted class; deletion lower is better, insertion higher)"]
    for part in ("spatial", "temporal"):
        values = section[part]
        for name in values["deletion_auc"]:
            lines.append(f"    {part + ' ' + name:<28}{num(values['deletion_auc'][name])}   "
                         f"{num(values['insertion_auc'][name])}")
    r = section["randomization"]
    lines.append("    randomization (Spearman with the trained model, cumulative stages): mask / temporal")
    for stage, s, t in zip(r["stages"], r["spatial_spearman"], r["temporal_spearman"]):
        lines.append(f"    {stage:<28}{num(s)}   {num(t)}")
    if "served" in section:
        for graph in section["served"]["graphs"]:
            lines.append(f"    served {graph['precision']} {graph['path']}: max |AUC diff| {graph['max_abs_diff']:.4f} "
                         f"(tolerance {graph['tolerance']}) {'ok' if graph['passed'] else 'FAILED'}")
    failed = [name for name, target in section["targets"].items() if target["passed"] is False]
    lines.append(f"    targets: {sum(t['passed'] is True for t in section['targets'].values())} met"
                 + (f", missed: {', '.join(failed)}" if failed else ""))
    return lines

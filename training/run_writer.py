"""What a training run leaves in its directory. Rank 0 alone writes (under torchrun the other ranks' writer
does nothing):

    OUT/run_config.json   the resolved configuration, at the start
    OUT/last.pt           at every epoch's end, every `checkpoint_every_steps` steps and on a stop request
    OUT/best.pt           when an epoch's model is the best so far
    OUT/history.jsonl     one record per epoch
    OUT/tensorboard/      the records' scalars
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stanet.checkpoint import save_checkpoint
from stanet.constants import BEST_CHECKPOINT, CLIP_SPAN_KEY, LAST_CHECKPOINT
from training.config import RunConfig
from training.run_state import RunState


class RunWriter:
    def __init__(self, out_dir: Path, run_config: RunConfig, class_names: list[str], *, enabled: bool,
                 clip_span: dict[str, float] | None = None):
        self.out_dir = out_dir
        self.last_path, self.best_path = out_dir / LAST_CHECKPOINT, out_dir / BEST_CHECKPOINT
        self.enabled = enabled
        self._run_config = run_config
        self._class_names = class_names
        self._clip_span = clip_span
        self._tensorboard = None
        if enabled:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "run_config.json").write_text(json.dumps(run_config.to_dict(), indent=2) + "\n")
            from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - heavy import, only when training

            self._tensorboard = SummaryWriter(str(out_dir / "tensorboard"))

    def _save(self, path: Path, state: RunState) -> None:
        if not self.enabled:
            return
        save_checkpoint(path, state.model, self._class_names, run_config=self._run_config.to_dict(),
                        background=self._run_config.train.background, **{CLIP_SPAN_KEY: self._clip_span},
                        progress=dict(state.progress), optimizer=state.optimizer.state_dict(),
                        scheduler=state.scheduler.state_dict(), history=state.history)

    def save_last(self, state: RunState) -> None:
        self._save(self.last_path, state)

    def save_best(self, state: RunState) -> None:
        self._save(self.best_path, state)

    def end_epoch(self, record: dict[str, Any], state: RunState, improved: bool) -> None:
        """The epoch's scalars, last.pt, best.pt if `improved`, and its line of history.jsonl."""
        if self._tensorboard is not None:
            self._log_scalars(record)
        self.save_last(state)
        if improved:
            self.save_best(state)
        if self.enabled:
            with open(self.out_dir / "history.jsonl", "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()

    def _log_scalars(self, record: dict[str, Any]) -> None:
        epoch = record["epoch"]
        for name, value in record["train"].items():
            if name not in ("clips", "next_step", "stopped"):
                self._tensorboard.add_scalar(f"train/{name}", value, epoch)
        for name in ("loss", "ce", "accuracy"):
            self._tensorboard.add_scalar(f"val/{name}", record["val"][name], epoch)
        self._tensorboard.add_scalar("lr", record["lr"], epoch)
        self._tensorboard.flush()

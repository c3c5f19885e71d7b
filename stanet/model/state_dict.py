"""What stands between a state dict and a model: the keys each lacks and the tensors of another shape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StateDictMismatch:
    missing: list[str]  # in the model, not in the state dict (sorted)
    unexpected: list[str]  # in the state dict, not in the model (sorted)
    mismatched: list[str]  # in both, of different shapes (the model's order)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mismatched)

    def describe(self, own: Mapping[str, torch.Tensor], incoming: Mapping[str, torch.Tensor], source: str) -> str:
        """What differs, with a few keys each: "2 missing (e.g. [...]); 1 of the wrong shape (e.g. k: SOURCE
        (3, 3), model (4, 3))", for an error message that lets the user tell which model the file was for."""
        details = [f"{len(keys)} {what} (e.g. {keys[:3]})"
                   for what, keys in (("missing", self.missing), ("unexpected", self.unexpected)) if keys]
        if self.mismatched:
            k = self.mismatched[0]
            details.append(f"{len(self.mismatched)} of the wrong shape (e.g. {k}: {source} "
                           f"{tuple(incoming[k].shape)}, model {tuple(own[k].shape)})")
        return "; ".join(details)


def compare_state_dicts(own: Mapping[str, torch.Tensor], incoming: Mapping[str, torch.Tensor]) -> StateDictMismatch:
    """`own` is the model's state dict, `incoming` the one about to be loaded into it."""
    return StateDictMismatch(
        missing=sorted(set(own) - set(incoming)),
        unexpected=sorted(set(incoming) - set(own)),
        mismatched=[k for k in own if k in incoming and tuple(incoming[k].shape) != tuple(own[k].shape)],
    )

"""The `stanet` command: a thin dispatcher. Each subcommand's module is imported only when it runs, so
commands on the serving side never import torch."""

from __future__ import annotations

import importlib
import sys

# command words -> (module with main(argv), one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("data", "synth"): ("training.synth", "generate the synthetic actions benchmark"),
    ("data", "puppets"): ("training.puppets", "generate the puppets benchmark (a second generator, its own look)"),
    ("data", "import"): ("training.importers.cli", "convert UCF101, HMDB51, THUMOS14, UCF101-24 or class folders"),
    ("data", "check"): ("training.dataset_check", "validate a dataset directory, videos and frame counts included"),
    ("features", "extract"): ("training.features.extract", "run the frozen trunk once and cache its features"),
    ("train",): ("training.train", "train the attention recognizer"),
    ("evaluate",): ("training.evaluate", "accuracy and attention localization on a split"),
    ("export",): ("export.cli", "export a checkpoint as a verified Triton model"),
    ("serve",): ("serving.serve_cli", "run the embedded CPU Triton server over a model repository"),
    ("infer",): ("serving.infer_cli", "labels and attention maps for videos from a running server"),
    ("load",): ("serving.load_cli", "closed-loop gRPC load with client latency metrics for Prometheus"),
    ("bench", "loader"): ("bench.loader", "decoded clips/s per DataLoader worker count vs training clips/s"),
    ("bench",): ("bench.cli", "PyTorch, onnxruntime, Triton and INT8 side by side in one run"),
}


def usage() -> str:
    lines = ["usage: stanet COMMAND [ARGS...]", "", "commands:"]
    for words, (_, text) in COMMANDS.items():
        lines.append(f"  {' '.join(words):<16} {text}")
    lines.append("")
    lines.append("`stanet COMMAND --help` describes a command's arguments.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for words, (module, _) in COMMANDS.items():
        if tuple(argv[: len(words)]) == words:
            return int(importlib.import_module(module).main(argv[len(words):]) or 0)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    print(usage(), file=sys.stderr)
    if argv:
        print(f"\nstanet: unknown command {' '.join(argv[:2])!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

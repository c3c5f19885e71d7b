"""`stanet bench`: one checkpoint, four ways, back to back in one run on the same clips: (a) PyTorch eager in
process, (b) onnxruntime in process, (c) the embedded Triton over gRPC, (d) INT8 through Triton; with the
model's FLOPs per clip and this machine's fp32 ceiling measured in the same run. Writes report.json and
latency_vs_throughput.png to --output and prints the table, the ratios and the targets.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path


TARGETS = (  # (name, description): evaluated in targets()
    ("triton_vs_ort_throughput", "(c) throughput >= 0.9 x (b) at the best concurrency / batch"),
    ("triton_latency_overhead", "(c) median latency at concurrency 1 <= (b) batch 1 + 2 ms"),
    ("triton_vs_torch", "(c) throughput >= 1.8 x (a)"),
    ("int8_vs_torch", "(d) throughput >= 3.5 x (a), within the INT8 gate"),
    ("ceiling", "(c) achieved GFLOP/s >= 80% of the fp32 ceiling (ResNet-18 model)"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stanet bench", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="dataset: INT8 calibration and the clips sent")
    parser.add_argument("--output", type=Path, required=True, help="folder for the repository, report and plot")
    parser.add_argument("--seconds", type=float, default=8.0, help="per measured point (default: 8)")
    parser.add_argument("--batches", default="1,4,8", help="in-process batch sizes (default: 1,4,8)")
    parser.add_argument("--concurrency", default="1,2,4,8", help="Triton concurrency sweep (default: 1,2,4,8)")
    parser.add_argument("--threads", type=int, default=0, help="in-process threads (default: every core)")
    parser.add_argument("--label", default="model", help="name of this model in the report")
    return parser.parse_args(argv)


def _best(points: list[dict]) -> dict:
    return max(points, key=lambda p: p["clips_per_s"]) if points else {"clips_per_s": 0.0}


def targets(report: dict) -> list[dict]:
    """Each target with its measured ratio and pass/fail (ratios from this run only)."""
    a, b = report["torch_eager"], report["onnxruntime"]
    c, d = report["triton_fp32"], report["triton_int8"]
    b1 = next(p for p in b if p["batch"] == 1)
    c1 = next(p for p in c if p["concurrency"] == 1)
    values = {
        "triton_vs_ort_throughput": (_best(c)["clips_per_s"] / _best(b)["clips_per_s"], 0.9),
        "triton_latency_overhead": (c1["p50_ms"] - b1["p50_ms"], 2.0),
        "triton_vs_torch": (_best(c)["clips_per_s"] / _best(a)["clips_per_s"], 1.8),
        "int8_vs_torch": (_best(d)["clips_per_s"] / _best(a)["clips_per_s"], 3.5),
        "ceiling": (report["achieved_gflops"]["triton_fp32"] / report["fp32_ceiling_gflops"], 0.8),
    }
    out = []
    for name, text in TARGETS:
        value, bound = values[name]
        passed = value <= bound if name == "triton_latency_overhead" else value >= bound
        if name == "int8_vs_torch":
            passed = passed and report["int8_gate"].get("passed", False)
        out.append({"target": name, "description": text, "value": round(value, 3), "bound": bound, "passed": passed})
    return out


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in (("torch_eager", "(a) PyTorch eager"), ("onnxruntime", "(b) onnxruntime"),
                       ("triton_fp32", "(c) Triton fp32"), ("triton_int8", "(d) Triton int8")):
        points = report[key]
        if not points:
            continue
        x = [p["clips_per_s"] for p in points]
        for axis, stat in zip(axes, ("p50_ms", "p99_ms")):
            axis.plot(x, [p[stat] for p in points], marker="o", label=label)
    for axis, stat in zip(axes, ("p50", "p99")):
        axis.set_xlabel("throughput (clips/s)")
        axis.set_ylabel(f"{stat} latency (ms)")
        axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(f"{report['label']}: latency against throughput (one run, {report['machine']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import os
    import platform

    import torch

    from bench.flops import flops_per_clip
    from bench.runners import fp32_ceiling_gflops, onnxruntime_session, timed_loop, torch_eager
    from bench.served import load_point
    from export.clips import dataset_clips
    from export.errors import GateError
    from export.onnx_graph import serving_module
    from export.pipeline import ExportRequest, export_model
    from export.python_backend.stanet_backend import available_cores
    from serving.procfs import memory_mb
    from serving.server import ServerOptions, TritonServer
    from stanet.checkpoint import load_checkpoint
    from stanet.constants import INPUT_CLIP

    threads = args.threads or available_cores()
    batches = [int(b) for b in args.batches.split(",")]
    sweep = [int(c) for c in args.concurrency.split(",")]
    repository = args.output / "model_repository"
    if repository.exists():
        raise SystemExit(f"stanet bench: error: {repository} exists; choose a new --output")
    args.output.mkdir(parents=True, exist_ok=True)
    quiet = lambda message: None  # noqa: E731
    export_model(ExportRequest(checkpoint=args.checkpoint, repository=repository, target="python"), log=quiet)
    try:
        int8 = export_model(ExportRequest(checkpoint=args.checkpoint, repository=repository, target="python",
                                          name="stanet_int8", precision="int8", calibration=args.data), log=quiet)
    except GateError as exc:  # not served: (d) is reported as failed, not measured
        print(f"stanet bench: {exc}; (d) is not measured", flush=True)
        int8 = {"int8": {"passed": False, "error": str(exc)}}
    checkpoint = load_checkpoint(args.checkpoint)
    module, _ = serving_module(checkpoint.build_model())
    clips = dataset_clips(args.data, ("test", "val"), checkpoint.model_config, checkpoint.class_names, limit=32).clips
    flops = flops_per_clip(module, torch.from_numpy(clips[:1]))
    print(f"stanet bench: {args.label}: {flops / 1e9:.3f} GFLOP per clip; {threads} threads", flush=True)
    report = {"label": args.label, "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "threads": threads, "gflop_per_clip": flops / 1e9, "int8_gate": int8.get("int8") or {}}
    report["fp32_ceiling_gflops"] = fp32_ceiling_gflops(threads)
    eager = torch_eager(module, threads)
    report["torch_eager"] = [{**timed_loop(eager, clips, b, args.seconds).to_dict(), "batch": b} for b in batches]
    session = onnxruntime_session(str(repository / "stanet" / "1" / "model.onnx"), threads, INPUT_CLIP)
    report["onnxruntime"] = [{**timed_loop(session, clips, b, args.seconds).to_dict(), "batch": b} for b in batches]
    del session, eager
    options = ServerOptions(repository=repository, grpc_port=18701, metrics_port=18702, exit_timeout_s=10)
    with TritonServer(options) as server:
        served = [("triton_fp32", "stanet")] + ([("triton_int8", "stanet_int8")] if int8["int8"]["passed"] else [])
        report["triton_int8"] = []
        for key, model in served:
            report[key] = [load_point(server, model, clips, concurrency=c, batch=1, seconds=args.seconds)
                           for c in sweep]
            rate = 0.8 * _best(report[key])["clips_per_s"]  # open loop at 80% of the closed-loop best
            report[f"{key}_open_loop"] = load_point(server, model, clips, rate=rate, seconds=args.seconds)
            print(f"stanet bench: {key} done", flush=True)
        report["server_peak_rss_mb"] = memory_mb([server.pid, *server.stub_pids()], "VmHWM")
    report["client_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["achieved_gflops"] = {key: _best(report[key])["clips_per_s"] * flops / 1e9
                                 for key in ("torch_eager", "onnxruntime", "triton_fp32", "triton_int8")
                                 if report[key]}
    report["targets"] = targets(report)
    (args.output / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, args.output / "latency_vs_throughput.png")
    print(render(report))
    return 0


def render(report: dict) -> str:
    lines = [f"{report['label']}: {report['gflop_per_clip']:.3f} GFLOP/clip, fp32 ceiling "
             f"{report['fp32_ceiling_gflops']:.0f} GFLOP/s ({report['threads']} threads)",
             f"{'variant':<14} {'point':<8} {'clips/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"]
    for key in ("torch_eager", "onnxruntime", "triton_fp32", "triton_int8"):
        for p in report[key]:
            point = f"b{p['batch']}" if "concurrency" not in p else f"c{p['concurrency']}"
            lines.append(f"{key:<14} {point:<8} {p['clips_per_s']:>8.1f} {p['p50_ms']:>8.2f} {p['p90_ms']:>8.2f} "
                         f"{p['p99_ms']:>8.2f}")
    for key in ("triton_fp32_open_loop", "triton_int8_open_loop"):
        if key in report:
            p = report[key]
            lines.append(f"{key}: {p['rate']:.1f} requests/s offered, {p['clips_per_s']:.1f} clips/s answered, "
                         f"p50 {p['p50_ms']:.2f} ms, p99 {p['p99_ms']:.2f} ms")
    best_a = _best(report["torch_eager"])["clips_per_s"]
    best_b = _best(report["onnxruntime"])["clips_per_s"]
    for key in ("onnxruntime", "triton_fp32", "triton_int8"):
        if not report[key]:
            lines.append(f"{key}: not measured ({report['int8_gate'].get('error', '')})")
            continue
        best = _best(report[key])["clips_per_s"]
        lines.append(f"{key}: {best / best_a:.2f}x (a), {best / best_b:.2f}x (b), "
                     f"{report['achieved_gflops'][key]:.1f} GFLOP/s")
    for t in report["targets"]:
        lines.append(f"[{'PASS' if t['passed'] else 'FAIL'}] {t['description']}: {t['value']} (bound {t['bound']})")
    lines.append(f"server peak RSS {report['server_peak_rss_mb']:.0f} MB, client peak RSS "
                 f"{report['client_peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

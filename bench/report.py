"""The benchmark report: the targets as ratios from one run, the printed table, the plot."""

from __future__ import annotations

from pathlib import Path


TARGETS = (  # (name, description): evaluated in targets()
    ("triton_vs_ort_throughput", "(c) throughput >= 0.9 x (b) at the best concurrency / batch"),
    ("triton_latency_overhead", "(c) median latency at concurrency 1 <= (b) batch 1 + 2 ms"),
    ("triton_vs_torch", "(c) throughput >= 1.8 x (a)"),
    ("int8_vs_torch", "(d) throughput >= 3.5 x (a), within the INT8 gate"),
    ("ceiling", "(c) achieved GFLOP/s >= 80% of the fp32 ceiling (ResNet-18 model)"),
)


def best(points: list[dict]) -> dict:
    return max(points, key=lambda p: p["clips_per_s"]) if points else {"clips_per_s": 0.0}


def targets(report: dict) -> list[dict]:
    """Each target with its measured ratio and pass/fail (ratios from this run only)."""
    a, b = report["torch_eager"], report["onnxruntime"]
    c, d = report["triton_fp32"], report["triton_int8"]
    b1 = next(p for p in b if p["batch"] == 1)
    c1 = next(p for p in c if p["concurrency"] == 1)
    values = {
        "triton_vs_ort_throughput": (best(c)["clips_per_s"] / best(b)["clips_per_s"], 0.9),
        "triton_latency_overhead": (c1["p50_ms"] - b1["p50_ms"], 2.0),
        "triton_vs_torch": (best(c)["clips_per_s"] / best(a)["clips_per_s"], 1.8),
        "int8_vs_torch": (best(d)["clips_per_s"] / best(a)["clips_per_s"], 3.5),
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


VARIANTS = (("torch_eager", "(a) PyTorch eager"), ("onnxruntime", "(b) onnxruntime"),
            ("triton_fp32", "(c) Triton fp32"), ("triton_int8", "(d) Triton int8"))


def plot(report: dict, path: Path) -> None:
    series = [(label, report[key]) for key, label in VARIANTS if report[key]]
    plot_series(series, f"{report['label']}: latency against throughput (one run, {report['machine']})", path)


def plot_series(series: list[tuple[str, list[dict]]], title: str, path: Path) -> None:
    """p50 and p99 latency against throughput, one line per (label, points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, points in series:
        x = [p["clips_per_s"] for p in points]
        for axis, stat in zip(axes, ("p50_ms", "p99_ms")):
            axis.plot(x, [p[stat] for p in points], marker="o", label=label)
    for axis, stat in zip(axes, ("p50", "p99")):
        axis.set_xlabel("throughput (clips/s)")
        axis.set_ylabel(f"{stat} latency (ms)")
        axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def render(report: dict) -> str:
    lines = [f"{report['label']}: {report['gflop_per_clip']:.3f} GFLOP/clip, fp32 ceiling "
             f"{report['fp32_ceiling_gflops']:.0f} GFLOP/s ({report['threads']} threads; "
             + ", ".join(f"{k} {v:.0f}" for k, v in report.get("fp32_kernels_gflops", {}).items()) + ")",
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
    best_a = best(report["torch_eager"])["clips_per_s"]
    best_b = best(report["onnxruntime"])["clips_per_s"]
    for key in ("onnxruntime", "triton_fp32", "triton_int8"):
        if not report[key]:
            lines.append(f"{key}: not measured ({report['int8_gate'].get('error', '')})")
            continue
        top = best(report[key])["clips_per_s"]
        lines.append(f"{key}: {top / best_a:.2f}x (a), {top / best_b:.2f}x (b), "
                     f"{report['achieved_gflops'][key]:.1f} GFLOP/s")
    for t in report["targets"]:
        lines.append(f"[{'PASS' if t['passed'] else 'FAIL'}] {t['description']}: {t['value']} (bound {t['bound']})")
    lines.append(f"server peak RSS {report['server_peak_rss_mb']:.0f} MB, client peak RSS "
                 f"{report['client_peak_rss_mb']:.0f} MB")
    return "\n".join(lines)

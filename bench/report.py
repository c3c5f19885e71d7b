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
# With the OpenVINO variants (issue 18's targets; served bf16 = the python backend's OpenVINO bf16 model).
OPENVINO_TARGETS = (
    ("ov_bf16_vs_ort", "served OpenVINO bf16 throughput >= 1.8 x (b) onnxruntime fp32 in process"),
    ("ov_bf16_vs_torch", "served OpenVINO bf16 throughput >= 4 x (a) PyTorch eager fp32"),
    ("ov_bf16_vs_torch_bf16", "served OpenVINO bf16 throughput >= 1.5 x (a') PyTorch bf16 autocast"),
    ("ov_int8_vs_ort", "served OpenVINO int8 throughput >= 3 x (b), within its gate"),
    ("ov_served_vs_in_process", "served OpenVINO bf16 throughput >= 0.9 x OpenVINO bf16 in process"),
    ("ov_latency_overhead", "served OpenVINO bf16 p50 at concurrency 1 <= in process batch 1 + 2 ms"),
    ("ov_bf16_ceiling", "served OpenVINO bf16 achieved GFLOP/s >= 70% of OpenVINO's bf16 ceiling"),
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
    listed = TARGETS
    if "openvino_models" in report and report["openvino_models"]:
        values.update(_openvino_values(report))
        listed = TARGETS + OPENVINO_TARGETS
    out = []
    for name, text in listed:
        value, bound = values[name]
        passed = value <= bound if name.endswith("latency_overhead") else value >= bound
        if name == "int8_vs_torch":
            passed = passed and report["int8_gate"].get("passed", False)
        if name == "ov_int8_vs_ort":
            passed = passed and bool(report["openvino_models"].get("int8"))
        out.append({"target": name, "description": text, "value": round(value, 3), "bound": bound, "passed": passed})
    return out


def _openvino_values(report: dict) -> dict[str, tuple[float, float]]:
    served, in_process = report.get("triton_ov_bf16") or [], report.get("openvino_bf16") or []
    top = best(served)["clips_per_s"]
    b = best(report["onnxruntime"])["clips_per_s"]
    c1 = next((p for p in served if p.get("concurrency") == 1), None)
    b1 = next((p for p in in_process if p["batch"] == 1), None)
    ceiling = report.get("openvino_bf16_ceiling_gflops") or float("inf")
    return {
        "ov_bf16_vs_ort": (top / b, 1.8),
        "ov_bf16_vs_torch": (top / best(report["torch_eager"])["clips_per_s"], 4.0),
        "ov_bf16_vs_torch_bf16": (top / max(best(report.get("torch_bf16") or [])["clips_per_s"], 1e-9), 1.5),
        "ov_int8_vs_ort": (best(report.get("triton_ov_int8") or [])["clips_per_s"] / b, 3.0),
        "ov_served_vs_in_process": (top / max(best(in_process)["clips_per_s"], 1e-9), 0.9),
        "ov_latency_overhead": ((c1["p50_ms"] - b1["p50_ms"]) if c1 and b1 else float("inf"), 2.0),
        "ov_bf16_ceiling": (top * report["gflop_per_clip"] / ceiling, 0.7),
    }


VARIANTS = (("torch_eager", "(a) PyTorch eager"), ("torch_bf16", "(a') PyTorch bf16 autocast"),
            ("onnxruntime", "(b) onnxruntime"), ("openvino_fp32", "(b') OpenVINO fp32"),
            ("openvino_bf16", "(b') OpenVINO bf16"), ("openvino_int8", "(b') OpenVINO int8"),
            ("triton_fp32", "(c) Triton fp32"), ("triton_int8", "(d) Triton int8"),
            ("triton_ov_fp32", "(c') Triton OpenVINO fp32"), ("triton_ov_bf16", "(c') Triton OpenVINO bf16"),
            ("triton_ov_int8", "(c') Triton OpenVINO int8"))


def plot(report: dict, path: Path) -> None:
    series = [(label, report[key]) for key, label in VARIANTS if report.get(key)]
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


def render_stub_split(point: dict) -> str:
    """One served point's execution split (bench/served.py stub_split), in ms per execution."""
    split = point["stub_ms"]
    phases = ", ".join(f"{name} {split[name]:.3f}" for name in split if name not in ("execution", "hop"))
    cpu = (f"; CPU cores: server {point['server_cpu_cores']:.2f}, client {point['client_cpu_cores']:.2f}"
           if point.get("server_cpu_cores") is not None and point.get("client_cpu_cores") is not None else "")
    return (f"per execution at c{point['concurrency']} (batch {point['average_batch']:.2f}): Triton "
            f"{split['execution']:.3f} ms = stub {phases} + hop {split['hop']:.3f}{cpu}")


def render(report: dict) -> str:
    lines = [f"{report['label']}: {report['gflop_per_clip']:.3f} GFLOP/clip, fp32 ceiling "
             f"{report['fp32_ceiling_gflops']:.0f} GFLOP/s ({report['threads']} threads; "
             + ", ".join(f"{k} {v:.0f}" for k, v in report.get("fp32_kernels_gflops", {}).items()) + ")",
             f"{'variant':<16} {'point':<8} {'clips/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"]
    if "openvino_bf16_ceiling_gflops" in report:
        lines.insert(1, "OpenVINO ceilings: " + ", ".join(
            f"{precision} {report[f'openvino_{precision}_ceiling_gflops']:.0f} GFLOP/s" for precision in ("fp32", "bf16")))
    for key, _ in VARIANTS:
        for p in report.get(key) or []:
            point = f"b{p['batch']}" if "concurrency" not in p else f"c{p['concurrency']}"
            lines.append(f"{key:<16} {point:<8} {p['clips_per_s']:>8.1f} {p['p50_ms']:>8.2f} {p['p90_ms']:>8.2f} "
                         f"{p['p99_ms']:>8.2f}")
    for key in ("triton_fp32_open_loop", "triton_int8_open_loop"):
        if key in report:
            p = report[key]
            lines.append(f"{key}: {p['rate']:.1f} requests/s offered, {p['clips_per_s']:.1f} clips/s answered, "
                         f"p50 {p['p50_ms']:.2f} ms, p99 {p['p99_ms']:.2f} ms")
    best_a = best(report["torch_eager"])["clips_per_s"]
    best_b = best(report["onnxruntime"])["clips_per_s"]
    for key, _ in VARIANTS[1:]:
        if key not in report:
            continue
        if not report[key]:
            why = (report["int8_gate"].get("error", "") if key == "triton_int8" else
                   report.get("openvino_refused", {}).get(key.rsplit("_", 1)[-1], ""))
            lines.append(f"{key}: not measured ({why[:200]})")
            continue
        top = best(report[key])["clips_per_s"]
        lines.append(f"{key}: {top / best_a:.2f}x (a), {top / best_b:.2f}x (b), "
                     f"{report['achieved_gflops'][key]:.1f} GFLOP/s")
        if best(report[key]).get("stub_ms"):
            lines.append("  " + render_stub_split(best(report[key])))
    for t in report["targets"]:
        lines.append(f"[{'PASS' if t['passed'] else 'FAIL'}] {t['description']}: {t['value']} (bound {t['bound']})")
    lines.append(f"server peak RSS {report['server_peak_rss_mb']:.0f} MB, client peak RSS "
                 f"{report['client_peak_rss_mb']:.0f} MB")
    if report.get("server_rss_mb"):
        lines.append("server RSS per model (its stubs, after loading): " + ", ".join(
            f"{model} {mb:.0f} MB" if mb is not None else f"{model} ?" for model, mb in report["server_rss_mb"].items()))
    return "\n".join(lines)

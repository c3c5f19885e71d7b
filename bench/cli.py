"""`stanet bench`: one checkpoint, four ways, back to back in one run on the same clips: (a) PyTorch eager in
process, (b) onnxruntime in process, (c) the embedded Triton over gRPC, (d) INT8 through Triton; with the
model's FLOPs per clip and this machine's fp32 ceiling measured in the same run. OpenVINO beside them (unless
--no-openvino): (a') PyTorch eager under bf16 autocast, (b') OpenVINO in process at fp32 / bf16 / int8, and the
same three served by the embedded Triton's python backend, with OpenVINO's fp32 and bf16 ceilings. Then the relay
of `stanet serve` against direct calls to the same Triton (bench/relay_cost.py; `--relay-only` measures just
that). Writes report.json and latency_vs_throughput.png to --output and prints the table, the ratios and the
targets.

With --url it measures models already served by any Triton instead (a GPU server with the TensorRT plan and
onnxruntime + TensorRT models, say): a batch x concurrency sweep per model, no in-process contenders.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

from serving.server import DEFAULT_METRICS_PORT
from stanet.constants import MODEL_NAME

# Ports of the embedded server the benchmark starts (not the defaults, so a running `stanet serve` is left alone).
BENCH_GRPC_PORT = 18701
BENCH_METRICS_PORT = 18702


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stanet bench", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="the model (required without --url)")
    parser.add_argument("--data", type=Path, required=True, help="dataset: INT8 calibration and the clips sent")
    parser.add_argument("--output", type=Path, required=True, help="folder for the repository, report and plot")
    parser.add_argument("--seconds", type=float, default=8.0, help="per measured point (default: 8)")
    parser.add_argument("--batches", default="1,4,8",
                        help="in-process batch sizes; with --url, clips per request (default: 1,4,8)")
    parser.add_argument("--concurrency", default="1,2,4,8", help="requests in flight, swept (default: 1,2,4,8)")
    parser.add_argument("--threads", type=int, default=0, help="in-process threads (default: every core)")
    parser.add_argument("--instances", type=int, default=0, help="Triton model instances (default: the export's)")
    parser.add_argument("--intra-op-threads", type=int, default=0,
                        help="onnxruntime threads per Triton instance (default: every core, shared by the instances)")
    parser.add_argument("--label", default="model", help="name of this model in the report")
    parser.add_argument("--relay-only", action="store_true",
                        help="only the relay-vs-direct comparison (concurrency 1 and --relay-concurrency)")
    parser.add_argument("--relay-concurrency", type=int, default=4, help="the loaded relay point (default: 4)")
    parser.add_argument("--relay-rounds", type=int, default=2, help="alternating relay/direct rounds (default: 2)")
    parser.add_argument("--no-openvino", action="store_true",
                        help="leave out the bf16 / OpenVINO variants (a'), (b') and their served models")
    parser.add_argument("--url", help="measure a running Triton at HOST:PORT (gRPC) instead of starting one")
    parser.add_argument("--metrics-url", help=f"with --url: its metrics page (default: http://HOST:{DEFAULT_METRICS_PORT}/metrics)")
    parser.add_argument("--models", default=MODEL_NAME, help=f"with --url: served model names (default: {MODEL_NAME})")
    args = parser.parse_args(argv)
    if not args.url and args.checkpoint is None:
        parser.error("--checkpoint is required (or --url to measure a running server)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.url:
        from bench.remote import run_remote

        return run_remote(args)
    import os
    import platform

    import torch

    from bench.flops import flops_per_clip
    from bench.openvino_variants import export_openvino, measure_openvino_in_process
    from bench.relay_cost import relay_vs_direct, render as render_relay
    from bench.report import VARIANTS, best, plot, render, targets
    from bench.served import model_rss_mb
    from bench.runners import fp32_ceiling_gflops, onnxruntime_session, timed_loop, torch_eager
    from bench.served import Endpoint, load_point
    from export.clips import dataset_clips
    from export.errors import GateError
    from export.onnx_graph import serving_module
    from export.pipeline import ExportRequest, export_model
    from serving.procfs import memory_mb
    from serving.python_backend.stanet_backend import available_cores
    from serving.server import ServerOptions, TritonServer
    from stanet.checkpoint import load_checkpoint
    from stanet.constants import INPUT_CLIP, ONNX_FILE

    threads = args.threads or available_cores()
    batches = [int(b) for b in args.batches.split(",")]
    sweep = [int(c) for c in args.concurrency.split(",")]
    repository = args.output / "model_repository"
    if repository.exists():
        raise SystemExit(f"stanet bench: error: {repository} exists; choose a new --output")
    args.output.mkdir(parents=True, exist_ok=True)
    quiet = lambda message: None  # noqa: E731
    serving = {"instances": args.instances, "intra_op_threads": args.intra_op_threads}
    export_model(ExportRequest(checkpoint=args.checkpoint, repository=repository, target="python", **serving),
                 log=quiet)
    checkpoint = load_checkpoint(args.checkpoint)
    clips = dataset_clips(args.data, ("test", "val"), checkpoint.model_config, checkpoint.class_names, limit=32).clips
    relay = lambda: relay_vs_direct(  # noqa: E731
        repository, clips, seconds=args.seconds, loaded=args.relay_concurrency, rounds=args.relay_rounds)
    if args.relay_only:
        result = {"label": args.label, "relay_vs_direct": relay()}
        (args.output / "report.json").write_text(json.dumps(result, indent=1) + "\n")
        print(render_relay(result["relay_vs_direct"]))
        return 0
    try:
        int8 = export_model(ExportRequest(checkpoint=args.checkpoint, repository=repository, target="python",
                                          name="stanet_int8", precision="int8", calibration=args.data, **serving),
                            log=quiet)
    except GateError as exc:  # not served: (d) is reported as failed, not measured
        print(f"stanet bench: {exc}; (d) is not measured", flush=True)
        int8 = {"int8": {"passed": False, "error": str(exc)}}
    openvino_models = {} if args.no_openvino else export_openvino(args, repository, serving, quiet)
    module, _ = serving_module(checkpoint.build_model())
    flops = flops_per_clip(module, torch.from_numpy(clips[:1]))
    print(f"stanet bench: {args.label}: {flops / 1e9:.3f} GFLOP per clip; {threads} threads", flush=True)
    report = {"openvino_models": openvino_models, "label": args.label, "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "threads": threads, "gflop_per_clip": flops / 1e9, "int8_gate": int8.get("int8") or {},
              "serving": {"instances": args.instances or "default", "intra_op_threads": args.intra_op_threads or
                          "every core"}}
    ceiling = fp32_ceiling_gflops(threads)
    report["fp32_ceiling_gflops"], report["fp32_kernels_gflops"] = ceiling.pop("ceiling"), ceiling
    eager = torch_eager(module, threads)
    report["torch_eager"] = [{**timed_loop(eager, clips, b, args.seconds).to_dict(), "batch": b} for b in batches]
    session = onnxruntime_session(repository / MODEL_NAME / "1" / ONNX_FILE, threads, INPUT_CLIP)
    report["onnxruntime"] = [{**timed_loop(session, clips, b, args.seconds).to_dict(), "batch": b} for b in batches]
    del session, eager
    if not args.no_openvino:
        measure_openvino_in_process(report, module, repository, openvino_models, clips, batches, threads,
                                    args.seconds)
    options = ServerOptions(repository=repository, grpc_port=BENCH_GRPC_PORT, metrics_port=BENCH_METRICS_PORT,
                            exit_timeout_s=10)
    with TritonServer(options) as server:
        endpoint = Endpoint.of(server)
        served = [("triton_fp32", MODEL_NAME)] + ([("triton_int8", "stanet_int8")] if int8["int8"]["passed"] else [])
        served += [(f"triton_ov_{precision}", name) for precision, name in openvino_models.items() if name]
        for key, _ in VARIANTS:
            report.setdefault(key, [])
        report["server_rss_mb"] = {model: model_rss_mb(server, model) for _, model in served}
        for key, model in served:
            report[key] = [load_point(endpoint, model, clips, concurrency=c, batch=1, seconds=args.seconds)
                           for c in sweep]
            rate = 0.8 * best(report[key])["clips_per_s"]  # open loop at 80% of the closed-loop best
            report[f"{key}_open_loop"] = load_point(endpoint, model, clips, rate=rate, seconds=args.seconds)
            print(f"stanet bench: {key} done", flush=True)
        report["server_peak_rss_mb"] = memory_mb([server.pid, *server.stub_pids()], "VmHWM")
    report["relay_vs_direct"] = relay()
    report["client_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["achieved_gflops"] = {key: best(report[key])["clips_per_s"] * flops / 1e9
                                 for key, _ in VARIANTS if report.get(key)}
    report["targets"] = targets(report)
    (args.output / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, args.output / "latency_vs_throughput.png")
    print(render(report))
    print(render_relay(report["relay_vs_direct"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

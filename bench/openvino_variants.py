"""The OpenVINO side of `stanet bench`: its three served models exported next to the onnxruntime ones (each
behind its own gate; a refused one is reported, not measured), and the in-process contenders (a') and (b')
measured with this machine's OpenVINO ceilings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.runners import timed_loop
from export.errors import ExportError
from export.pipeline import ExportRequest, export_model
from stanet.constants import MODEL_NAME, OPENVINO_XML_FILE

PRECISIONS = ("fp32", "bf16", "int8")


def model_name(precision: str) -> str:
    return f"{MODEL_NAME}_ov_{precision}"


def export_openvino(args, repository: Path, serving: dict, log) -> dict[str, str | None]:
    """precision -> served model name, or None where the export refused (its reason printed, and kept in
    REFUSALS for the report's `openvino_refused`)."""
    models: dict[str, str | None] = {}
    for precision in PRECISIONS:
        extra = {"calibration": args.data} if precision == "int8" else {}
        try:
            export_model(ExportRequest(checkpoint=args.checkpoint, repository=repository, target="python",
                                       runtime="openvino", name=model_name(precision), precision=precision,
                                       data=args.data, **extra, **serving), log=log)
            models[precision] = model_name(precision)
        except ExportError as exc:  # a failed gate (GateError) or a CPU without bf16: not served
            print(f"stanet bench: OpenVINO {precision} is not measured: {exc}", flush=True)
            models[precision] = None
            REFUSALS[precision] = str(exc)
    return models


REFUSALS: dict[str, str] = {}


def measure_openvino_in_process(report: dict, module, repository: Path, models: dict[str, str | None],
                                clips: np.ndarray, batches: list[int], threads: int, seconds: float) -> None:
    """(a') torch_bf16 and (b') openvino_<precision> into `report`, with the OpenVINO ceilings."""
    from bench.openvino_runners import openvino_ceiling_gflops, openvino_in_process, torch_bf16_autocast

    report["openvino_refused"] = dict(REFUSALS)
    for precision in ("fp32", "bf16"):
        kernels = openvino_ceiling_gflops(threads, precision)
        report[f"openvino_{precision}_ceiling_gflops"] = kernels.pop("ceiling")
        report[f"openvino_{precision}_kernels_gflops"] = kernels
    autocast = torch_bf16_autocast(module, threads)
    report["torch_bf16"] = [{**timed_loop(autocast, clips, b, seconds).to_dict(), "batch": b} for b in batches]
    del autocast
    for precision in PRECISIONS:
        name = models.get(precision)
        report[f"openvino_{precision}"] = []
        if name is None:
            continue
        infer = openvino_in_process(repository / name / "1" / OPENVINO_XML_FILE, threads, precision)
        report[f"openvino_{precision}"] = [{**timed_loop(infer, clips, b, seconds).to_dict(), "batch": b}
                                           for b in batches]
        del infer

"""The OpenVINO choices without a model: which precision an export picks for a CPU, the refusal of bf16 on a
CPU without it, the python backend's OpenVINO parameters, and the static check of a `--target openvino`
config against the openvino backend's documented parameters."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from exported import TINY

from export.errors import ExportError
from export.openvino_backend import DOCUMENTED_PARAMETERS, backend_parameters, config_problems
from export.openvino_ir import bf16_support, cpu_flags
from export.openvino_stage import choose_precision
from export.signature import serving_signature
from export.triton_config import ServingOptions, check_options, render_config
from serving.python_backend.openvino_runtime import compile_properties, served_pinning
from serving.python_backend.stanet_backend import available_cores, settings_from_config
from stanet.timeline.windows import ClipSpan

# /proc/cpuinfo flags of an AVX-512 CPU without bf16 (Skylake-SP / Cascade Lake)
NO_BF16 = {"sse4_2", "avx2", "avx512f", "avx512bw", "avx512_vnni"}
WITH_BF16 = NO_BF16 | {"avx512_bf16"}
OPENVINO_CAPABILITIES = ["BF16", "FP32", "INT8"]
SIGNATURE = serving_signature(TINY, (8, 8))  # the tiny model's 8x8 feature maps at 32 px


def _options(target="python", runtime="openvino", precision="fp32", **fields) -> ServingOptions:
    return ServingOptions("stanet", target, "cpu", 8, precision, runtime=runtime if target == "python" else
                          "onnxruntime", **fields)


def test_bf16_support_follows_the_cpu_flags_and_openvino():
    assert bf16_support(WITH_BF16, OPENVINO_CAPABILITIES).available
    assert bf16_support(NO_BF16 | {"amx_bf16"}, OPENVINO_CAPABILITIES).available
    missing = bf16_support(NO_BF16, OPENVINO_CAPABILITIES)
    assert not missing.available and "AVX512_BF16" in missing.reason and "AMX_BF16" in missing.reason
    not_listed = bf16_support(WITH_BF16, ["FP32", "INT8"])
    assert not not_listed.available and "OPTIMIZATION_CAPABILITIES" in not_listed.reason


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "absent") is None


def test_the_default_precision_follows_the_machine():
    data = Path("data")
    has, lacks = bf16_support(WITH_BF16, OPENVINO_CAPABILITIES), bf16_support(NO_BF16, OPENVINO_CAPABILITIES)
    chosen = choose_precision(_options(), None, data, support=has)
    assert (chosen.precision, chosen.automatic) == ("bf16", True) and "AVX512_BF16" in chosen.reason
    without_data = choose_precision(_options(), None, None, support=has)
    assert without_data.precision == "fp32" and "--data" in without_data.reason
    old_cpu = choose_precision(_options(), None, data, support=lacks)
    assert (old_cpu.precision, old_cpu.automatic) == ("fp32", False) and "AVX512_BF16" in old_cpu.reason
    assert choose_precision(_options(), "int8", data, support=has).precision == "int8"


def test_bf16_on_a_cpu_without_it_is_refused_naming_the_instructions_and_offering_fp32():
    with pytest.raises(ExportError, match=r"AVX512_BF16 or AMX_BF16.*--precision fp32"):
        choose_precision(_options(precision="bf16"), "bf16", Path("data"),
                         support=bf16_support(NO_BF16, OPENVINO_CAPABILITIES))
    with pytest.raises(ExportError, match="--data"):
        choose_precision(_options(precision="bf16"), "bf16", None,
                         support=bf16_support(WITH_BF16, OPENVINO_CAPABILITIES))


def test_bf16_needs_openvino_and_runtime_needs_the_python_target():
    with pytest.raises(ExportError, match="needs OpenVINO"):
        check_options(_options(runtime="onnxruntime", precision="bf16"))
    with pytest.raises(ExportError, match="--runtime openvino applies to --target python only"):
        check_options(ServingOptions("stanet", "onnxruntime", "cpu", 8, "fp32", runtime="openvino"))
    for precision in ("fp32", "bf16", "int8"):
        check_options(_options(precision=precision))
        check_options(_options(target="openvino", precision=precision))
    with pytest.raises(ExportError, match="not supported"):
        check_options(_options(target="openvino", precision="fp16"))


def _backend_config(options: ServingOptions) -> dict:
    """config.pbtxt as Triton hands it to `initialize` (JSON, parsed), and the dtypes of its tensors."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    text = render_config(SIGNATURE, options)
    return json_format.MessageToDict(text_format.Parse(text, model_config_pb2.ModelConfig()),
                                     preserving_proto_field_name=True)


DTYPES = {"clip": np.uint8, "probabilities": np.float32, "spatial_attention": np.float32,
          "temporal_attention": np.float32}


def test_openvino_pins_its_threads_only_for_a_lone_instance_that_fits_the_cores():
    """Each stub process's OpenVINO pins from the first core of its mask: two pinned instances would share it."""
    cores = available_cores()
    two = settings_from_config(_backend_config(_options(instances=2, intra_op_threads=1)), DTYPES)
    assert two.instances == 2 and not served_pinning(two)
    alone = settings_from_config(_backend_config(_options(instances=1, intra_op_threads=cores)), DTYPES)
    assert alone.instances == 1 and served_pinning(alone)
    crowded = settings_from_config(_backend_config(_options(instances=1, intra_op_threads=cores + 1)), DTYPES)
    assert not served_pinning(crowded)  # more threads than cores: nothing is pinned


def test_the_python_backend_reads_its_openvino_parameters_once():
    settings = settings_from_config(_backend_config(_options(precision="bf16")), DTYPES)
    assert (settings.runtime, settings.openvino_precision, settings.openvino_streams,
            settings.openvino_performance_hint) == ("openvino", "bf16", 1, "LATENCY")
    assert settings_from_config(_backend_config(_options(precision="int8")), DTYPES).openvino_precision == "fp32"
    assert settings_from_config(_backend_config(_options(runtime="onnxruntime")), DTYPES).runtime == "onnxruntime"
    properties = compile_properties(2, 1, "LATENCY", "fp32", pinning=False)
    assert properties["INFERENCE_PRECISION_HINT"] == "f32" and properties["INFERENCE_NUM_THREADS"] == 2
    config = _backend_config(_options())
    for key, value, message in (("runtime", "tensorflow", "'runtime' must be one of"),
                                ("openvino_performance_hint", "FAST", "LATENCY or THROUGHPUT"),
                                ("openvino_precision", "fp16", "'openvino_precision' must be one of"),
                                ("openvino_num_streams", "many", "must be an integer")):
        broken = {**config, "parameters": {**config["parameters"], key: {"string_value": value}}}
        with pytest.raises(ValueError, match=message):
            settings_from_config(broken, DTYPES)


def test_target_openvino_config_uses_only_the_backends_documented_parameters():
    for precision in ("fp32", "bf16", "int8"):
        text = render_config(SIGNATURE, _options(target="openvino", precision=precision,
                                                               intra_op_threads=4))
        assert 'backend: "openvino"' in text and config_problems(text) == []
        assert ('HINT_BF16' in text) == (precision == "bf16") and '"INFERENCE_NUM_THREADS"' in text
    assert {key for key, _ in backend_parameters("bf16", 2)} <= set(DOCUMENTED_PARAMETERS)
    text = render_config(SIGNATURE, _options(target="openvino"))
    unknown = text.replace('key: "NUM_STREAMS"', 'key: "CPU_THROUGHPUT_STREAMS"')  # the 2021 README's name
    assert "'CPU_THROUGHPUT_STREAMS' is not one the openvino backend documents" in config_problems(unknown)[0]
    bad_value = text.replace('string_value: "LATENCY"', 'string_value: "FASTEST"')
    assert "'PERFORMANCE_HINT' = 'FASTEST' is not a documented value" in config_problems(bad_value)[0]
    python = render_config(SIGNATURE, _options())
    assert "expected 'openvino'" in config_problems(python)[0]
    # stanet's clip-span metadata for clients rides along; the backend ignores it
    spanned = render_config(SIGNATURE, _options(target="openvino"), ClipSpan(24, 0.96))
    assert "clip_span_frames" in spanned and config_problems(spanned) == []


def test_an_ir_this_openvino_cannot_read_is_named_at_load(tmp_path):
    import openvino as ov

    from serving.python_backend.openvino_runtime import compile_model

    xml = tmp_path / "model.xml"
    xml.write_text('<?xml version="1.0"?>\n<net name="x" version="99"><layers></layers></net>\n')
    with pytest.raises(RuntimeError, match=rf"OpenVINO {re.escape(ov.__version__)} cannot read model\.xml: .*export "
                                           rf"it again"):
        compile_model(xml, compile_properties(1, 1, "LATENCY", "fp32", pinning=False))

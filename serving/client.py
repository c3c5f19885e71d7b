"""The gRPC client: videos in, labels plus attention maps out (numpy, PyAV and tritonclient; no torch).

A video is decoded with PyAV and sampled to the served clip length exactly as evaluation samples it
(`stanet.sampling.sample_frame_indices` and `resize_frames`, what `sample_clip` does; only the sampled frames
are decoded and kept, `stanet.video.sample_video`), sent as UINT8 [B, T, H, W, 3], and answered in one
ModelInfer call: top-k labels through Triton's classification extension on the probabilities output, and
the raw spatial and temporal attention tensors. Every call has a deadline; UNAVAILABLE (server starting,
restarting or shedding load) is retried a bounded number of times with exponential backoff.

The clip shape comes from the served model's config, so the same client works against any export and
against a GPU Triton in production.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from serving.errors import InferenceError, ServerUnavailableError, ServingError, status_code
from serving.results import ClipPrediction, LabelScore, VideoPrediction, parse_classification
from stanet.constants import (CLIP_SPAN_FRAMES_PARAMETER, CLIP_SPAN_SECONDS_PARAMETER, INPUT_CLIP, MODEL_NAME,
                              OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION)
from stanet.sampling import resize_frames, sample_frame_indices
from stanet.timeline.windows import ClipSpan, TimelineError
from stanet.video import sample_video

DEFAULT_URL = "127.0.0.1:8001"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 0.25
T = TypeVar("T")


@dataclass(frozen=True)
class PreparedVideo:
    clip: np.ndarray  # (T, H, W, 3) uint8 at the model's size: what is sent
    frame_indices: np.ndarray  # (T,) which frames of the video were taken (the last repeats if it is short)
    frames: np.ndarray  # (T, H', W', 3) the same frames at the video's size (for overlays)
    num_frames: int  # frames decoded from the video


@dataclass(frozen=True)
class ServedModel:
    """The served model's signature, read from its config on the server."""

    name: str
    clip_length: int
    height: int
    width: int
    max_batch_size: int
    num_classes: int
    attention_hw: tuple[int, int]
    clip_span: ClipSpan | None = None  # the training clips' span (config.pbtxt parameters), None if not recorded
    labels: tuple[str, ...] = ()  # labels.txt, in label-index order (read for timelines)


def parse_args_with_tls(parser, argv):
    """Add --tls-ca / --tls-cert / --tls-key to a CLI that calls the server and parse `argv`; `args.tls` holds
    the StanetClient keyword arguments they make (empty: plaintext)."""
    group = parser.add_argument_group("TLS (PEM files; any of them turns TLS on)")
    group.add_argument("--tls-ca", help="CA that signed the server's certificate (default: the system's roots)")
    group.add_argument("--tls-cert", help="client certificate, for a server requiring mutual TLS")
    group.add_argument("--tls-key", help="the client certificate's private key")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    args.tls = ({"ssl": True, "root_certificates": args.tls_ca, "private_key": args.tls_key,
                 "certificate_chain": args.tls_cert} if args.tls_ca or args.tls_cert else {})
    return args


def served_clip_span(config: dict[str, Any]) -> ClipSpan | None:
    """The training clips' span from a model config (JSON form), None when the export did not record one."""
    parameters = config.get("parameters", {})
    try:
        frames = parameters[CLIP_SPAN_FRAMES_PARAMETER]["string_value"]
        seconds = parameters[CLIP_SPAN_SECONDS_PARAMETER]["string_value"]
        return ClipSpan(frames=int(frames), seconds=float(seconds))
    except (KeyError, TypeError, ValueError, TimelineError):
        return None


def _signature(config: dict[str, Any], url: str) -> ServedModel:
    name = config.get("name", "?")
    inputs = {spec["name"]: spec for spec in config.get("input", [])}
    outputs = {spec["name"]: spec for spec in config.get("output", [])}
    expected_outputs = (OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION)
    clip = inputs.get(INPUT_CLIP)
    if (clip is None or clip.get("data_type") != "TYPE_UINT8" or len(clip.get("dims", [])) != 4
            or any(name_ not in outputs for name_ in expected_outputs)):
        raise ServingError(f"model {name!r} at {url} is not a stanet model: expected input {INPUT_CLIP!r} UINT8 "
                           f"[T, H, W, 3] and outputs {list(expected_outputs)}, found inputs "
                           f"{sorted(inputs)} and outputs {sorted(outputs)}")
    t, h, w, _ = (int(d) for d in clip["dims"])
    spatial = [int(d) for d in outputs[OUTPUT_SPATIAL_ATTENTION]["dims"]]
    return ServedModel(name=name, clip_length=t, height=h, width=w,
                       max_batch_size=max(int(config.get("max_batch_size", 0)), 1),
                       num_classes=int(outputs[OUTPUT_PROBABILITIES]["dims"][0]), attention_hw=(spatial[1], spatial[2]),
                       clip_span=served_clip_span(config))


class StanetClient:
    """One gRPC connection to a Triton serving a stanet model. Not shared between threads: make one per
    thread (they are cheap)."""

    def __init__(self, url: str = DEFAULT_URL, model: str = MODEL_NAME, version: str = "", *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                 backoff_s: float = DEFAULT_BACKOFF_S, headers: dict[str, str] | None = None,
                 ssl: bool = False, root_certificates: str | None = None, private_key: str | None = None,
                 certificate_chain: str | None = None):
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.url, self.model_name, self.version = url, model, version
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.headers = headers
        self._connection = dict(ssl=ssl, root_certificates=root_certificates, private_key=private_key,
                                certificate_chain=certificate_chain)
        # TLS: root_certificates verifies the server; private_key + certificate_chain are this client's
        # certificate under mutual TLS (PEM file paths).
        self._client = grpcclient.InferenceServerClient(url, ssl=ssl, root_certificates=root_certificates,
                                                        private_key=private_key, certificate_chain=certificate_chain)
        self._model: ServedModel | None = None
        self._labels: tuple[str, ...] | None = None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "StanetClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, what: str, fn: Callable[..., T], *args, **kwargs) -> T:
        """fn(*args, headers=..., client_timeout=..., **kwargs), retried on UNAVAILABLE; errors mapped to
        ServerUnavailableError (after the retries) or InferenceError (the server's answer)."""
        for attempt in range(self.retries + 1):
            try:
                return fn(*args, headers=self.headers, client_timeout=self.timeout_s, **kwargs)
            except InferenceServerException as exc:
                status, message = status_code(exc), exc.message() or str(exc)
                if status == "UNAVAILABLE":
                    if attempt < self.retries:
                        time.sleep(self.backoff_s * 2 ** attempt)
                        continue
                    raise ServerUnavailableError(self.url, f"{what}: {message} (after {self.retries + 1} "
                                                           f"attempts)") from None
                if status == "DEADLINE_EXCEEDED":
                    raise InferenceError(status, f"{what}: no answer from {self.url} within {self.timeout_s:g} s "
                                                 f"(the deadline of every call; raise it with timeout_s / "
                                                 f"--timeout)") from None
                raise InferenceError(status, f"{what}: {message}") from None
        raise AssertionError("unreachable")

    def is_ready(self) -> bool:
        """Server and model ready (one attempt, no retry)."""
        try:
            return bool(self._client.is_server_ready(headers=self.headers, client_timeout=self.timeout_s)
                        and self._client.is_model_ready(self.model_name, self.version, headers=self.headers,
                                                        client_timeout=self.timeout_s))
        except InferenceServerException:
            return False

    def wait_until_ready(self, timeout_s: float = 0.0) -> None:
        """Return once server and model are ready; ServerUnavailableError naming the URL after `timeout_s`
        (0: one check)."""
        deadline = time.monotonic() + timeout_s
        while not self.is_ready():
            if time.monotonic() >= deadline:
                waited = f" within {timeout_s:g} s" if timeout_s > 0 else ""
                raise ServerUnavailableError(self.url, f"the server or model {self.model_name!r} is not ready"
                                                       f"{waited} (is `stanet serve` running there?)")
            time.sleep(0.25)

    def model(self) -> ServedModel:
        """The served model's signature (clip shape, batch limit, classes), fetched once."""
        if self._model is None:
            try:
                response = self._call("model config", self._client.get_model_config, self.model_name,
                                      self.version, as_json=True)
            except InferenceError as exc:
                if exc.status == "NOT_FOUND":
                    raise ServingError(f"model {self.model_name!r} (version {self.version or 'latest'}) is not "
                                       f"served at {self.url}: {exc.message}") from None
                raise
            self._model = _signature(response["config"], self.url)
        return self._model

    def infer_clips(self, clips: np.ndarray, top_k: int = 5) -> list[ClipPrediction]:
        """Predictions for uint8 clips (B, T, H, W, 3), sent in requests of at most max_batch_size clips."""
        model = self.model()
        expected = (model.clip_length, model.height, model.width, 3)
        clips = np.asarray(clips)
        if clips.ndim != 5 or clips.shape[1:] != expected or clips.dtype != np.uint8:
            raise ValueError(f"clips must be uint8 (B, {', '.join(map(str, expected))}) for model "
                             f"{model.name!r}, got {clips.dtype} {tuple(clips.shape)}")
        if not 1 <= top_k <= model.num_classes:
            raise ValueError(f"top_k must be between 1 and the model's {model.num_classes} classes, got {top_k}")
        predictions: list[ClipPrediction] = []
        for start in range(0, len(clips), model.max_batch_size):
            predictions += self._infer_batch(np.ascontiguousarray(clips[start:start + model.max_batch_size]), top_k)
        return predictions

    def _infer_batch(self, batch: np.ndarray, top_k: int) -> list[ClipPrediction]:
        clip = grpcclient.InferInput(INPUT_CLIP, list(batch.shape), "UINT8")
        clip.set_data_from_numpy(batch)
        outputs = [grpcclient.InferRequestedOutput(OUTPUT_PROBABILITIES, class_count=top_k),
                   grpcclient.InferRequestedOutput(OUTPUT_SPATIAL_ATTENTION),
                   grpcclient.InferRequestedOutput(OUTPUT_TEMPORAL_ATTENTION)]
        response = self._call(f"inference on {len(batch)} clip(s)", self._client.infer, self.model_name, [clip],
                              model_version=self.version, outputs=outputs)
        labels = response.as_numpy(OUTPUT_PROBABILITIES).reshape(len(batch), top_k)  # BYTES [B, k]
        spatial = response.as_numpy(OUTPUT_SPATIAL_ATTENTION)  # (B, T, h, w)
        temporal = response.as_numpy(OUTPUT_TEMPORAL_ATTENTION)  # (B, T)
        return [ClipPrediction(top_k=tuple(parse_classification(entry) for entry in labels[i]),
                               spatial_attention=spatial[i], temporal_attention=temporal[i])
                for i in range(len(batch))]

    def clone(self) -> "StanetClient":
        """Another connection with the same settings (and the served model already known): one per thread."""
        other = StanetClient(self.url, self.model_name, self.version, timeout_s=self.timeout_s, retries=self.retries,
                             backoff_s=self.backoff_s, headers=self.headers, **self._connection)
        other._model, other._labels = self._model, self._labels
        return other

    def labels(self) -> tuple[str, ...]:
        """The served model's class names in label-index order (from the classification extension of one
        all-zero clip), fetched once."""
        if self._labels is None:
            model = self.model()
            zero = np.zeros((1, model.clip_length, model.height, model.width, 3), np.uint8)
            self._labels = self.infer_probabilities(zero)[3]
        return self._labels

    def infer_probabilities(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
        """Every class's probability for uint8 clips (B, T, H, W, 3) of at most max_batch_size: (probabilities
        (B, K) in label-index order, temporal (B, T), spatial (B, T, h, w), the K labels in that order)."""
        model = self.model()
        K = model.num_classes
        clip = grpcclient.InferInput(INPUT_CLIP, list(clips.shape), "UINT8")
        clip.set_data_from_numpy(np.ascontiguousarray(clips))
        outputs = [grpcclient.InferRequestedOutput(OUTPUT_PROBABILITIES, class_count=K),
                   grpcclient.InferRequestedOutput(OUTPUT_SPATIAL_ATTENTION),
                   grpcclient.InferRequestedOutput(OUTPUT_TEMPORAL_ATTENTION)]
        response = self._call(f"inference on {len(clips)} window(s)", self._client.infer, self.model_name, [clip],
                              model_version=self.version, outputs=outputs)
        entries = response.as_numpy(OUTPUT_PROBABILITIES).reshape(len(clips), K)  # BYTES [B, K], best first
        probabilities = np.zeros((len(clips), K), dtype=np.float32)
        labels = [""] * K
        for i, row in enumerate(entries):
            for entry in row:
                parsed = parse_classification(entry)
                probabilities[i, parsed.index] = parsed.score
                labels[parsed.index] = parsed.label
        return (probabilities, response.as_numpy(OUTPUT_TEMPORAL_ATTENTION),
                response.as_numpy(OUTPUT_SPATIAL_ATTENTION), tuple(labels))

    def infer_timeline(self, path: str | Path, options=None, *, concurrency: int = 4, keep_timeline: bool = False,
                       on_window=None, on_plan=None):
        """The timeline of one (long) video: a serving.timeline.VideoTimeline with its typed segments; a decode
        failure or a bad stride is in its `error` (see serving.timeline.infer_timeline for the arguments)."""
        from serving.timeline import infer_timeline  # noqa: PLC0415 - serving.timeline imports this module

        return infer_timeline(self, path, options, concurrency=concurrency, keep_timeline=keep_timeline,
                              on_window=on_window, on_plan=on_plan)

    def prepare_video(self, path: str | Path) -> PreparedVideo:
        """Decode and sample a video as the served model expects. Raises stanet.video.VideoDecodeError."""
        model = self.model()
        # Streamed: only the T sampled frames are kept, whatever the length of the file.
        video = sample_video(path, lambda num_frames: sample_frame_indices(num_frames, model.clip_length))
        clip = resize_frames(video.frames, model.height, model.width)
        return PreparedVideo(clip=clip, frame_indices=video.indices, frames=video.frames,
                             num_frames=video.num_frames)

    def infer_video(self, path: str | Path, top_k: int = 5, *, keep_frames: bool = False) -> VideoPrediction:
        """The answer for one video file; a decode failure is raised (VideoDecodeError), a server error too
        (InferenceError / ServerUnavailableError)."""
        video = self.prepare_video(path)
        (prediction,) = self.infer_clips(video.clip[None], top_k)  # (1, T, H, W, 3)
        return VideoPrediction(video=str(path), prediction=prediction, frame_indices=video.frame_indices,
                               num_frames=video.num_frames, frame_hw=video.frames.shape[1:3],
                               frames=video.frames if keep_frames else None)


__all__ = ["DEFAULT_URL", "ClipPrediction", "LabelScore", "PreparedVideo", "ServedModel",
           "StanetClient", "VideoPrediction"]

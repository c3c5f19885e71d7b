"""Errors the serving side reports to users: each message names what was wrong and what was expected."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tritonclient.utils import InferenceServerException


def status_code(exc: "InferenceServerException") -> str:
    """The gRPC status name of a tritonclient error ("DEADLINE_EXCEEDED", not "StatusCode.DEADLINE_EXCEEDED")."""
    return (exc.status() or "UNKNOWN").removeprefix("StatusCode.")


class ServingError(RuntimeError):
    """A problem that stops `stanet serve` or `stanet infer` before or outside a single request."""


class ServerUnavailableError(ServingError):
    """The server at `url` could not be reached, or is not ready, within the retry budget."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"Triton at {url} is not available: {reason}")


class InferenceError(ServingError):
    """The server answered a request with an error (status is the gRPC code name, e.g. INVALID_ARGUMENT)."""

    def __init__(self, status: str, message: str):
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}")

"""Stand-in for `worker.agent.feedback`: the `FeedbackPublisher` handed to handlers as
`context.feedback` (spec §6.4).

Frames are validated here, where the handler can see the error, because the scheduler
closes the whole connection on an invalid feedback frame (out-of-range progress,
non-numeric metrics, unknown chunk channel or keys).
"""

import math
import sys
from enum import Enum
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

from shared.models.ws.feedback import CHANNEL_NAMES

CHUNK_KEYS = ("channel", "index", "mime_type", "text", "data_base64", "metadata")


def _plain(value: Any) -> Any:
    """Enum members become their value (FeedbackChannel.llm -> "llm")."""
    return value.value if isinstance(value, Enum) else value


def _chunk(raw: Any, position: int) -> Dict[str, Any]:
    if hasattr(raw, "model_dump"):  # a pydantic model, as the real worker accepts
        raw = raw.model_dump(exclude_none=True)
    if not isinstance(raw, Mapping):
        raise TypeError(f"feedback chunk {position} must be a dict, got {type(raw).__name__}")
    chunk = {k: _plain(v) for k, v in raw.items() if v is not None}
    unknown = sorted(set(chunk) - set(CHUNK_KEYS))
    if unknown:
        raise ValueError(
            f"feedback chunk {position} has unknown keys {unknown}; allowed: {list(CHUNK_KEYS)}"
        )
    channel = chunk.get("channel") or "log"
    if channel not in CHANNEL_NAMES:
        raise ValueError(
            f"feedback chunk {position} has unknown channel {channel!r}; "
            f"use one of {sorted(CHANNEL_NAMES)}"
        )
    chunk["channel"] = channel
    index = chunk.get("index")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise ValueError(f"feedback chunk {position} index must be an integer >= 0")
    for key in ("mime_type", "text", "data_base64"):
        if key in chunk and not isinstance(chunk[key], str):
            raise TypeError(f"feedback chunk {position} {key} must be a string")
    if "metadata" in chunk and not isinstance(chunk["metadata"], Mapping):
        raise TypeError(f"feedback chunk {position} metadata must be a dict")
    return chunk


def build_frame(
    stage: Optional[str] = None,
    progress: Optional[float] = None,
    message: Optional[str] = None,
    chunks: Optional[Iterable[Any]] = None,
    metrics: Optional[Mapping[str, Any]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """One feedback frame as the worker sends it, without run and task ids."""
    frame: Dict[str, Any] = {}
    if stage is not None:
        frame["stage"] = str(_plain(stage))
    if progress is not None:
        if isinstance(progress, bool) or not isinstance(progress, (int, float)):
            raise TypeError("feedback progress must be a number between 0 and 1")
        progress = float(progress)
        if not (0.0 <= progress <= 1.0):
            raise ValueError(f"feedback progress must be between 0 and 1, got {progress}")
        frame["progress"] = progress
    if message is not None:
        frame["message"] = str(message)
    if chunks:
        frame["chunks"] = [_chunk(c, i) for i, c in enumerate(chunks)]
    if metrics:
        clean = {}
        for key, value in dict(metrics).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"feedback metric {key!r} must be a number")
            if not math.isfinite(value):
                raise ValueError(f"feedback metric {key!r} must be finite")
            clean[str(key)] = float(value)
        frame["metrics"] = clean
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError("feedback metadata must be a dict")
        frame["metadata"] = dict(metadata)
    return frame


class FeedbackPublisher:
    """Publishes `feedback` frames for one task. `emit` writes a frame to the worker; it is
    thread-safe, so synchronous handlers (which run on their own thread) may publish too."""

    def __init__(self, run_id: str, task_id: str, emit: Callable[[Dict[str, Any]], None]):
        self.run_id = run_id
        self.task_id = task_id
        self._emit = emit

    async def send(
        self,
        stage: Optional[str] = None,
        progress: Optional[float] = None,
        message: Optional[str] = None,
        chunks: Optional[Iterable[Any]] = None,
        metrics: Optional[Mapping[str, Any]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self._emit(build_frame(stage, progress, message, chunks, metrics, metadata))

    def send_nowait(
        self,
        stage: Optional[str] = None,
        progress: Optional[float] = None,
        message: Optional[str] = None,
        chunks: Optional[Iterable[Any]] = None,
        metrics: Optional[Mapping[str, Any]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        # Fire-and-forget, as in the Python worker: a bad frame is logged, never raised.
        try:
            self._emit(build_frame(stage, progress, message, chunks, metrics, metadata))
        except Exception as exc:  # noqa: BLE001 - reported, not propagated, by design
            print(f"feedback.send_nowait dropped a frame: {exc}", file=sys.stderr)

    async def emit_text(
        self,
        text: str,
        channel: Any = "log",
        stage: Optional[str] = None,
        progress: Optional[float] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        await self.send(
            stage=stage,
            progress=progress,
            chunks=[{"channel": channel, "text": str(text)}],
            metadata=metadata,
        )

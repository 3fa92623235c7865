"""Batched frames (protocol 1.1, opt-in): the events due to one connection in
one write, as JSON arrays of envelopes instead of one frame each.

A connection that opted in (`?batch=1`, or `"batch": true` in `auth_request`)
queues the shared `EncodedEvent`s themselves; when it flushes, `frames_for`
turns each run of consecutive events into array frames of at most
`max_batch_bytes` of JSON, in delivery order, and passes every other queued
frame (replies, control messages: always one envelope each) through where it
stood. The array is glued from the events' already-encoded JSON
(`[` + `,`.join + `]`), never re-serialised.

A run of one event is sent as the plain envelope, not a one-element array:
the bytes every client already gets for it, shared with non-batch
recipients, and the common single-event load costs nothing extra.

Many recipients usually share the same queue (they subscribed to the same
events), so a `BatchMemo` kept for one flush of every connection builds each
distinct queue's frames (arrays, their gzip) once. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from autosdlc_ws.core.envelope import EncodedEvent, gzip_bytes
from autosdlc_ws.core.frames import OP_BINARY, OP_TEXT, build_frame

#: What a connection queues: a ready frame, or an event framed at flush.
Queued = bytes | EncodedEvent

#: `[` and `]` around the envelopes, and a comma between two.
_ARRAY_OVERHEAD = 2


class BatchMemo:
    """The frames built for each distinct queue during one flush of every connection.

    Recipients of the same events queue the same objects, so the identities of
    what is queued (a C-speed `map(id, ...)`) find the frames another recipient
    already got; only a miss walks the queue in Python. The memo keeps the
    queued objects it was keyed by, so no identity is reused while it lives."""

    __slots__ = ("_gzip_frames", "_plain_frames", "built", "reused")

    def __init__(self) -> None:
        self._plain_frames: dict[tuple[int, ...], tuple[tuple[Queued, ...], list[bytes]]] = {}
        self._gzip_frames: dict[tuple[int, ...], tuple[tuple[Queued, ...], list[bytes]]] = {}
        self.built = 0
        self.reused = 0

    def frames(self, queued: Sequence[Queued], gzip: bool, gzip_threshold: int,
               max_batch_bytes: int) -> list[bytes]:
        """`frames_for(queued, ...)`, built once per distinct queue (do not modify the list)."""
        built = self._gzip_frames if gzip else self._plain_frames
        key = tuple(map(id, queued))
        hit = built.get(key)
        if hit is not None:
            self.reused += 1
            return hit[1]
        frames = frames_for(queued, gzip=gzip, gzip_threshold=gzip_threshold, max_batch_bytes=max_batch_bytes)
        built[key] = (tuple(queued), frames)
        self.built += 1
        return frames


def array_frame(run: Sequence[EncodedEvent], *, gzip: bool, gzip_threshold: int) -> bytes:
    """One frame holding `run` as a JSON array: text, or for a gzip client whose
    array exceeds the threshold, binary gzip of the array with each envelope
    marked `metadata.compressed: true` (as a single gzip frame is)."""
    body = b"[" + b",".join([event.json for event in run]) + b"]"
    if gzip and len(body) > gzip_threshold:
        compressed = b"[" + b",".join([event.compressed_json for event in run]) + b"]"
        return build_frame(OP_BINARY, gzip_bytes(compressed))
    return build_frame(OP_TEXT, body)


def split_runs(events: Sequence[EncodedEvent], max_batch_bytes: int) -> list[tuple[EncodedEvent, ...]]:
    """Consecutive events cut into runs whose array JSON fits `max_batch_bytes`
    (an event too big to share a frame is a run of its own), order kept."""
    runs: list[tuple[EncodedEvent, ...]] = []
    start = 0
    size = _ARRAY_OVERHEAD - 1
    for i, event in enumerate(events):
        grown = size + len(event.json) + 1
        if grown > max_batch_bytes and i > start:
            runs.append(tuple(events[start:i]))
            start = i
            grown = _ARRAY_OVERHEAD + len(event.json)
        size = grown
    if start < len(events):
        runs.append(tuple(events[start:]))
    return runs


def frames_for(queued: Sequence[Queued], *, gzip: bool, gzip_threshold: int, max_batch_bytes: int) -> list[bytes]:
    """The frames to write for a batch connection's queue, in order."""
    frames: list[bytes] = []
    events: list[EncodedEvent] = []
    for item in queued:
        if isinstance(item, EncodedEvent):
            events.append(item)
            continue
        if events:
            _add_runs(frames, events, gzip, gzip_threshold, max_batch_bytes)
            events = []
        frames.append(item)
    if events:
        _add_runs(frames, events, gzip, gzip_threshold, max_batch_bytes)
    return frames


def _add_runs(frames: list[bytes], events: list[EncodedEvent], gzip: bool, gzip_threshold: int,
              max_batch_bytes: int) -> None:
    if len(events) == 1:
        frames.append(events[0].frame_for(gzip))
        return
    for run in split_runs(events, max_batch_bytes):
        if len(run) == 1:
            frames.append(run[0].frame_for(gzip))
        else:
            frames.append(array_frame(run, gzip=gzip, gzip_threshold=gzip_threshold))

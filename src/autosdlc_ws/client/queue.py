"""Bounded containers: the outgoing queue and the duplicate-id filter."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass

from autosdlc_ws.client.errors import QueueFull


@dataclass(slots=True)
class QueuedFrame:
    """One frame waiting to be written; `request_id` ties it to a pending request."""

    text: str
    request_id: str | None = None
    counted: bool = True  # counts against the Outbox bound (requeued frames do not)


class Outbox:
    """FIFO of frames written once the connection is (re-)authenticated.

    `append` refuses past `maxsize` with `QueueFull`; frames of requests that
    were in flight when the connection dropped go back to the front
    (`requeue_front`) and do not count against the bound (they were accepted
    before).
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError("outbox size must be >= 0")
        self.maxsize = maxsize
        self._items: deque[QueuedFrame] = deque()
        self._counted = 0

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[QueuedFrame]:
        return iter(self._items)

    def append(self, item: QueuedFrame) -> None:
        if self._counted >= self.maxsize:
            raise QueueFull(f"outgoing queue is full ({self.maxsize} messages waiting for the connection)")
        item.counted = True
        self._items.append(item)
        self._counted += 1

    def append_unbounded(self, item: QueuedFrame) -> None:
        """Queue an internal frame (protocol upkeep) outside the bound."""
        item.counted = False
        self._items.append(item)

    def requeue_front(self, items: list[QueuedFrame]) -> None:
        """Put `items` (in their order) before everything queued, outside the bound."""
        for item in items:
            item.counted = False
        self._items.extendleft(reversed(items))

    def popleft(self) -> QueuedFrame:
        item = self._items.popleft()
        if item.counted:
            self._counted -= 1
        return item

    def appendleft(self, item: QueuedFrame) -> None:
        """Undo a `popleft` whose write failed."""
        self._items.appendleft(item)
        if item.counted:
            self._counted += 1

    def remove_request(self, request_id: str) -> bool:
        for item in self._items:
            if item.request_id == request_id:
                self._items.remove(item)
                if item.counted:
                    self._counted -= 1
                return True
        return False

    def clear(self) -> int:
        n = len(self._items)
        self._items.clear()
        self._counted = 0
        return n


class SeenIds:
    """The last `maxsize` event ids, for dropping duplicates (a bounded LRU)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str) -> bool:
        """Record `event_id`; False when it was already there (a duplicate)."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.maxsize:
            self._ids.popitem(last=False)
        return True

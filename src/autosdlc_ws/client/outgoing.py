"""The client's outgoing side: requests waiting for their answer, and the bounded queue of
frames waiting for a connection. No I/O: it decides what to write and when."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from autosdlc_ws.client.actions import REQUEST_TIMER, Action, CancelTimer, SendFrame
from autosdlc_ws.client.queue import Outbox, QueuedFrame
from autosdlc_ws.client.requests import PendingRequest, RequestKind
from autosdlc_ws.client.subscriptions import Subscription


class OutgoingFrames:
    """Pending requests by id, and the `Outbox` that holds frames while not connected."""

    def __init__(self, outbox_size: int) -> None:
        self._pending: dict[str, PendingRequest] = {}
        self.outbox = Outbox(outbox_size)

    def __iter__(self) -> Iterator[PendingRequest]:
        return iter(list(self._pending.values()))

    def get(self, request_id: str) -> PendingRequest | None:
        return self._pending.get(request_id)

    def send_or_queue(self, item: QueuedFrame, *, open_now: bool, bounded: bool) -> list[Action]:
        """Write `item` now when the connection is open, else queue it (bounded: `QueueFull`)."""
        if open_now:
            self._mark_sent(item)
            return [SendFrame(item.text, item)]
        if bounded:
            self.outbox.append(item)
        else:
            self.outbox.append_unbounded(item)
        return []

    def request(self, pending: PendingRequest, *, open_now: bool, bounded: bool) -> list[Action]:
        """Track `pending` and send or queue its frame (not tracked if the queue refuses it)."""
        self._pending[pending.id] = pending
        try:
            return self.send_or_queue(QueuedFrame(pending.text, pending.id), open_now=open_now, bounded=bounded)
        except Exception:
            del self._pending[pending.id]
            raise

    def forget(self, request_id: str) -> PendingRequest | None:
        """Stop tracking a request (answered, failed, abandoned); its queued frame goes too."""
        pending = self._pending.pop(request_id, None)
        if pending is not None:
            self.outbox.remove_request(request_id)
        return pending

    def flush(self) -> list[Action]:
        """Everything queued, in order, for the socket that just opened."""
        actions: list[Action] = []
        while self.outbox:
            item = self.outbox.popleft()
            if item.request_id is not None and item.request_id not in self._pending:
                continue  # its request was cancelled or timed out
            self._mark_sent(item)
            actions.append(SendFrame(item.text, item))
        return actions

    def requeue(self, request_id: str) -> None:
        """Queue a tracked request's frame again (outside the bound)."""
        pending = self._pending.get(request_id)
        if pending is not None:
            self.outbox.append_unbounded(QueuedFrame(pending.text, request_id))

    def writes_failed(self, items: Sequence[QueuedFrame]) -> None:
        """Frames the driver could not write: back to the queue's front, in order."""
        for item in reversed(items):
            if item.request_id is not None:
                pending = self._pending.get(item.request_id)
                if pending is None or not pending.sent:
                    continue  # answered, given up, or already requeued by `connection_gone`
                pending.sent = False
            self.outbox.appendleft(item)

    def connection_gone(self) -> list[Action]:
        """Requests the lost socket carried go back to the queue's front; a token refresh
        and orphan removals in flight are dropped (the next connection does without them)."""
        actions: list[Action] = []
        requeue: list[QueuedFrame] = []
        for rid, pending in list(self._pending.items()):
            if pending.kind is RequestKind.AUTH:
                self.forget(rid)
                actions.append(CancelTimer(REQUEST_TIMER + rid))
            elif pending.sent and pending.kind is RequestKind.ORPHAN:
                del self._pending[rid]
            elif pending.sent:
                pending.sent = False
                requeue.append(QueuedFrame(pending.text, rid))
        self.outbox.requeue_front(requeue)
        return actions

    def restart_restores(self, resubscribes: list[PendingRequest]) -> None:
        """A lost session: drop earlier restores and put `resubscribes` first in the queue."""
        for pending in list(self._pending.values()):
            if pending.kind in (RequestKind.RESUBSCRIBE, RequestKind.ORPHAN):
                self.forget(pending.id)
        for pending in resubscribes:
            self._pending[pending.id] = pending
        self.outbox.requeue_front([QueuedFrame(p.text, p.id) for p in resubscribes])

    def drop_unsent_restores(self, sub: Subscription) -> None:
        """`sub` was unsubscribed: a re-subscribe of it not sent yet has nothing to undo."""
        for pending in list(self._pending.values()):
            if pending.kind is RequestKind.RESUBSCRIBE and pending.sub is sub and not pending.sent:
                self.forget(pending.id)

    def clear(self) -> tuple[list[PendingRequest], int]:
        """Stop everything: the requests still pending, and how many queued frames were dropped."""
        pendings = list(self._pending.values())
        self._pending.clear()
        return pendings, self.outbox.clear()

    def _mark_sent(self, item: QueuedFrame) -> None:
        if item.request_id is not None:
            pending = self._pending.get(item.request_id)
            if pending is not None:
                pending.sent = True

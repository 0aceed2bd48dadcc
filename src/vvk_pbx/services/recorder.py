"""Writes call-log records in the background, in order per call, never in front of a ringing phone.

Only the newest state of a call matters, so a call's pending record is
replaced by a newer one before it is written (coalescing). A failed write
(a locked or unreachable database) is retried with backoff; nothing is
dropped while the process lives.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from vvk_pbx.domain.calls import CallRecord, Leg

log = logging.getLogger(__name__)


class CallStore(Protocol):
    """The port the recorder writes through (``vvk_pbx.storage.calllog.CallLog``)."""

    async def save_call(self, record: CallRecord) -> None: ...
    async def save_leg(self, leg: Leg) -> None: ...


class Recorder:
    """Background, coalescing, per-call ordered writer of the call log."""

    def __init__(self, store: CallStore, retry_s: float = 0.5, max_retry_s: float = 10.0) -> None:
        self.store = store
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._calls: dict[str, CallRecord] = {}
        self._legs: dict[str, dict[str, Leg]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def save(self, record: CallRecord) -> None:
        self._calls[record.id] = record
        self._kick(record.id)

    def save_leg(self, leg: Leg) -> None:
        self._legs.setdefault(leg.call_id, {})[leg.id] = leg
        self._kick(leg.call_id)

    def _kick(self, call_id: str) -> None:
        if call_id not in self._workers:
            self._workers[call_id] = asyncio.create_task(self._work(call_id))

    async def _work(self, call_id: str) -> None:
        delay = self.retry_s
        try:
            while call_id in self._calls or self._legs.get(call_id):
                record = self._calls.pop(call_id, None)
                legs = self._legs.pop(call_id, {})
                try:
                    # The call row first: legs refer to it.
                    if record is not None:
                        await self.store.save_call(record)
                    for leg in legs.values():
                        await self.store.save_leg(leg)
                    delay = self.retry_s
                except Exception as exc:
                    log.warning(
                        "call log write for %s failed, retrying in %.1f s: %s", call_id, delay, exc
                    )
                    if record is not None:
                        self._calls.setdefault(call_id, record)  # unless a newer one came
                    pending = self._legs.setdefault(call_id, {})
                    for leg_id, leg in legs.items():
                        pending.setdefault(leg_id, leg)
                    await asyncio.sleep(delay)
                    delay = min(self.max_retry_s, delay * 2)
        finally:
            del self._workers[call_id]

    async def flush(self) -> None:
        """Wait until every record given so far is written."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    @property
    def pending(self) -> int:
        return len(self._calls) + sum(len(legs) for legs in self._legs.values())

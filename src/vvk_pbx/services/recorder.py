"""Writes call-log records in the background, never in front of a ringing phone.

Only the newest state of a call (or leg) matters, so a pending record is
replaced by a newer one before it is written (coalescing). One writer waits
``linger_s`` (20 ms) after the first change, takes everything pending and
writes it in one transaction, then repeats (group commit): the transactions
stay few under load, where one per change cost more CPU than the call itself
(docs/benchmarks.md). A crash loses at most the changes of that window and
the batch in flight.
A failed write (a locked or unreachable database) is retried with backoff;
nothing is dropped while the process lives, and a newer state is never
overwritten by an older one. A batch the database refuses for its data
(``RecordRefusedError``: a value too long, a constraint) is written row by row, so
one bad row never blocks the others; a row refused on its own is set aside
with an error in the log that holds the whole row (O1: nothing lost silently).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from vvk_pbx.domain.calls import CallRecord, Leg
from vvk_pbx.storage.calllog import RecordRefusedError

log = logging.getLogger(__name__)


class CallStore(Protocol):
    """The port the recorder writes through (``vvk_pbx.storage.calllog.CallLog``)."""

    async def save_batch(self, records: Sequence[CallRecord], legs: Sequence[Leg]) -> None: ...


class Recorder:
    """Background, coalescing, group-committing writer of the call log."""

    def __init__(
        self,
        store: CallStore,
        retry_s: float = 0.5,
        max_retry_s: float = 10.0,
        linger_s: float = 0.02,
    ) -> None:
        self.store = store
        self.linger_s = linger_s
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._calls: dict[str, CallRecord] = {}
        self._legs: dict[str, Leg] = {}
        self._worker: asyncio.Task[None] | None = None
        self.set_aside = 0  # rows the database refused, logged as errors
        # Told each batch's write time in s (the metrics); it must not raise.
        self.on_written: Callable[[float], None] = lambda seconds: None

    def save(self, record: CallRecord) -> None:
        self._calls[record.id] = record
        self._kick()

    def save_leg(self, leg: Leg) -> None:
        self._legs[leg.id] = leg
        self._kick()

    def _kick(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work())

    async def _work(self) -> None:
        delay = self.retry_s
        try:
            while self._calls or self._legs:
                await asyncio.sleep(self.linger_s)  # let a burst of changes join one batch
                records, self._calls = self._calls, {}
                legs, self._legs = self._legs, {}
                try:
                    started = time.perf_counter()
                    try:
                        await self.store.save_batch(list(records.values()), list(legs.values()))
                        self.on_written(time.perf_counter() - started)
                    except RecordRefusedError:
                        await self._row_by_row(records, legs)
                    delay = self.retry_s
                except Exception as exc:
                    log.warning(
                        "call log write of %d call(s), %d leg(s) failed, retrying in %.1f s: %s",
                        len(records),
                        len(legs),
                        delay,
                        exc,
                    )
                    # Put back what no newer state has replaced meanwhile.
                    self._calls = {**records, **self._calls}
                    self._legs = {**legs, **self._legs}
                    await asyncio.sleep(delay)
                    delay = min(self.max_retry_s, delay * 2)
        finally:
            self._worker = None

    async def _row_by_row(self, records: dict[str, CallRecord], legs: dict[str, Leg]) -> None:
        """Write each row alone (calls first: legs refer to them), setting aside those the
        database refuses; rows written are taken out of ``records``/``legs``, so a failure
        of another kind puts back only what is left."""
        for call_id, record in list(records.items()):
            await self._one(call_id, record, self.store.save_batch([record], []))
            del records[call_id]
        for leg_id, leg in list(legs.items()):
            await self._one(leg_id, leg, self.store.save_batch([], [leg]))
            del legs[leg_id]

    async def _one(self, key: str, row: CallRecord | Leg, write: Awaitable[None]) -> None:
        try:
            await write
        except RecordRefusedError as exc:
            self.set_aside += 1
            log.error("call log refused %s, set aside: %s; the row: %r", key, exc, row)

    async def flush(self) -> None:
        """Wait until every record given so far is written. A caller that gives up
        waiting (``asyncio.wait_for``) leaves the writer writing."""
        while self._worker is not None:
            await asyncio.wait({self._worker})

    @property
    def pending(self) -> int:
        return len(self._calls) + len(self._legs)

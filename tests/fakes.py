"""Fakes that implement the ports, for component tests: stores in memory, a clock and
timers the test moves by hand. The stores pass the same contract tests as the real
ones (``tests/component/test_store_contracts.py``)."""

from __future__ import annotations

import heapq
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from vvk_pbx.domain.access import Role, Session, Token
from vvk_pbx.domain.calls import CallRecord, Leg
from vvk_pbx.domain.pins import PinRecord
from vvk_pbx.domain.referral import Referral, Source, in_force
from vvk_pbx.domain.voicemail import Message, Status
from vvk_pbx.storage.access import TokenExistsError
from vvk_pbx.storage.audit import Export
from vvk_pbx.storage.calllog import UTC_TEXT, CallQuery, StorageError


@dataclass
class MemoryStore:
    """The recorder's port in memory; ``fail_next`` batches fail as a locked database does."""

    calls: dict[str, CallRecord] = field(default_factory=dict)
    legs: dict[str, Leg] = field(default_factory=dict)
    fail_next: int = 0

    async def save_batch(self, records: Sequence[CallRecord], legs: Sequence[Leg]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise StorageError("database is locked")
        self.calls.update((r.id, r) for r in records)
        self.legs.update((leg.id, leg) for leg in legs)

    async def get_call(self, call_id: str) -> CallRecord | None:
        return self.calls.get(call_id)

    async def open_calls(self) -> list[CallRecord]:
        return sorted(
            (r for r in self.calls.values() if r.ended_at is None), key=lambda r: r.arrived_at
        )

    async def list_calls(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[CallRecord]:
        found = [
            r
            for r in self.calls.values()
            if (since is None or r.arrived_at >= since) and (until is None or r.arrived_at < until)
        ]
        return sorted(found, key=lambda r: (r.arrived_at, r.id))

    async def stream_calls(
        self, where: CallQuery, batch: int = 2000
    ) -> AsyncIterator[list[CallRecord]]:
        found = sorted(
            (r for r in self.calls.values() if where.matches(r)), key=lambda r: (r.arrived_at, r.id)
        )
        for start in range(0, len(found), batch):
            yield found[start : start + batch]

    async def stream_rows(
        self, where: CallQuery, columns: Sequence[str], batch: int = 2000
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        async for page in self.stream_calls(where, batch):
            yield [plain_row(r, columns) for r in page]

    async def count_calls(self, where: CallQuery) -> int:
        return sum(1 for r in self.calls.values() if where.matches(r))

    async def legs_by_call(self, call_ids: list[str]) -> dict[str, list[Leg]]:
        found: dict[str, list[Leg]] = {}
        for leg in sorted(self.legs.values(), key=lambda leg: (leg.created_at, leg.id)):
            if leg.call_id in call_ids:
                found.setdefault(leg.call_id, []).append(leg)
        return found


def plain_row(record: CallRecord, columns: Sequence[str]) -> tuple[Any, ...]:
    """A record's ``columns`` as ``CallLog.stream_rows`` gives them (``UTC_TEXT``, the
    trace's JSON, 0/1)."""
    return tuple(_plain(getattr(record, name)) for name in columns)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(UTC_TEXT)
    if isinstance(value, tuple):  # the trace
        return json.dumps(list(value))
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, StrEnum):  # the outcome
        return value.value
    return value


@dataclass
class MemoryReferrals:
    """The referral store's port in memory (``storage.referrals.ReferralStore``)."""

    referrals: list[Referral] = field(default_factory=list)
    fail: int = 0  # how many calls fail next, as a locked database does

    def _maybe_fail(self) -> None:
        if self.fail:
            self.fail -= 1
            raise StorageError("database is locked")

    async def set(
        self,
        extension: str,
        reason: int,
        start: datetime,
        end: datetime,
        set_by: str,
        source: Source,
        note: str | None = None,
    ) -> Referral:
        self._maybe_fail()
        if end <= start:
            raise ValueError(f"the return time {end.isoformat()} is not after {start.isoformat()}")
        current = in_force(self.referrals, extension, start)
        if current is not None and current.start <= start:
            self.referrals[self.referrals.index(current)] = current.cleared(start)
        referral = Referral(str(uuid.uuid4()), extension, reason, start, end, set_by, source, note)
        self.referrals.append(referral)
        return referral

    async def clear(self, extension: str, at: datetime, by: str | None = None) -> Referral | None:
        self._maybe_fail()
        current = in_force(self.referrals, extension, at)
        if current is None:
            return None
        self.referrals[self.referrals.index(current)] = cleared = current.cleared(at, by)
        return cleared

    async def in_force(self, extension: str, now: datetime) -> Referral | None:
        self._maybe_fail()
        return in_force(self.referrals, extension, now)

    async def all_in_force(self, now: datetime) -> dict[str, Referral]:
        self._maybe_fail()
        found = {in_force(self.referrals, r.extension, now) for r in self.referrals}
        return {r.extension: r for r in found if r is not None}

    async def history(self, extension: str) -> list[Referral]:
        return sorted(
            (r for r in self.referrals if r.extension == extension), key=lambda r: (r.start, r.id)
        )


@dataclass
class MemoryMessages:
    """The ledger's port in memory (``storage.voicemail.MessageStore``)."""

    messages: list[Message] = field(default_factory=list)
    fail: int = 0  # how many calls fail next, as a locked database does

    def _maybe_fail(self) -> None:
        if self.fail:
            self.fail -= 1
            raise StorageError("database is locked")

    async def add(self, message: Message) -> None:
        self._maybe_fail()
        if any(m.id == message.id for m in self.messages):
            raise StorageError(f"callback ledger: storing {message.id} failed: it exists")
        self.messages.append(message)

    async def get(self, message_id: str) -> Message | None:
        self._maybe_fail()
        return next((m for m in self.messages if m.id == message_id), None)

    async def known(self, message_ids: list[str]) -> set[str]:
        self._maybe_fail()
        return {m.id for m in self.messages} & set(message_ids)

    async def ledger(self, extensions: list[str] | None = None) -> list[Message]:
        self._maybe_fail()
        found = [m for m in self.messages if extensions is None or m.extension in extensions]
        return sorted(found, key=lambda m: (m.left_at, m.id))

    async def mark(
        self, message_id: str, status: Status, at: datetime | None = None, by: str | None = None
    ) -> Message | None:
        self._maybe_fail()
        for i, m in enumerate(self.messages):
            if m.id != message_id:
                continue
            if m.status is Status.CALLED_BACK:
                return m  # called back is final, as in the database (V2)
            if status is Status.CALLED_BACK:
                m = replace(m, called_back_at=at, called_back_by=by)
            self.messages[i] = replace(m, status=status)
            return self.messages[i]
        return None


@dataclass
class MemoryPins:
    records: dict[str, PinRecord] = field(default_factory=dict)

    async def get(self, extension: str) -> PinRecord | None:
        return self.records.get(extension)

    async def put(self, record: PinRecord) -> None:
        self.records[record.extension] = record


@dataclass
class MemoryAudit:
    """The export audit log in memory (``storage.audit.AuditLog``)."""

    exports: list[Export] = field(default_factory=list)

    async def record(self, export: Export) -> None:
        self.exports.append(export)


@dataclass
class MemoryAccess:
    """Tokens and sessions in memory (``storage.access.AccessStore``)."""

    tokens_: list[Token] = field(default_factory=list)
    sessions: dict[str, Session] = field(default_factory=dict)

    async def add_token(self, name: str, role: Role, token_hash: str, at: datetime) -> Token:
        if any(t.name == name for t in self.tokens_):
            raise TokenExistsError(f"a token named {name!r} exists already")
        token = Token(str(uuid.uuid4()), name, role, token_hash, at)
        self.tokens_.append(token)
        return token

    async def token(self, token_hash: str) -> Token | None:
        return next((t for t in self.tokens_ if t.token_hash == token_hash), None)

    async def tokens(self) -> list[Token]:
        return sorted(self.tokens_, key=lambda t: t.created_at)

    async def revoke(self, name: str, at: datetime) -> bool:
        for i, t in enumerate(self.tokens_):
            if t.name == name and t.revoked_at is None:
                self.tokens_[i] = replace(t, revoked_at=at)
                return True
        return False

    async def add_session(self, session: Session) -> None:
        self.sessions[session.token_hash] = session

    async def session(self, token_hash: str) -> Session | None:
        return self.sessions.get(token_hash)

    async def end_session(self, token_hash: str) -> None:
        self.sessions.pop(token_hash, None)

    async def end_expired(self, now: datetime) -> int:
        old = [h for h, s in self.sessions.items() if s.expires_at <= now]
        for h in old:
            del self.sessions[h]
        return len(old)


class FakeClock:
    """The controller's clock, moved only by the test. ``real()`` is ``now()`` minus
    ``shift`` (a ``--clock`` shift; none by default)."""

    def __init__(self, now: datetime, shift: timedelta = timedelta(0)) -> None:
        self._now = now.astimezone(UTC)
        self.shift = shift

    def now(self) -> datetime:
        return self._now

    def real(self) -> datetime:
        return self._now - self.shift

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class FakeTimers:
    """Timers on a ``FakeClock``: nothing fires until ``advance``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._due: list[tuple[datetime, int, tuple[str, str]]] = []
        self._fire: dict[tuple[str, str], tuple[int, Callable[[], None]]] = {}
        self._seq = itertools.count()

    def start(self, key: tuple[str, str], delay_s: float, fire: Callable[[], None]) -> None:
        n = next(self._seq)
        self._fire[key] = (n, fire)
        heapq.heappush(self._due, (self.clock.now() + timedelta(seconds=delay_s), n, key))

    def cancel(self, key: tuple[str, str]) -> None:
        self._fire.pop(key, None)

    def cancel_owner(self, owner: str) -> None:
        for key in [k for k in self._fire if k[0] == owner]:
            del self._fire[key]

    def running(self) -> set[tuple[str, str]]:
        return set(self._fire)

    def advance(self, seconds: float) -> None:
        """Move the clock and fire, in order, every timer due by then."""
        end = self.clock.now() + timedelta(seconds=seconds)
        while self._due and self._due[0][0] <= end:
            due, n, key = heapq.heappop(self._due)
            current = self._fire.get(key)
            if current is None or current[0] != n:
                continue  # cancelled or restarted
            del self._fire[key]
            self.clock.advance((due - self.clock.now()).total_seconds())
            current[1]()
        self.clock.advance((end - self.clock.now()).total_seconds())

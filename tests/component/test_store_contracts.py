"""The stores' contract: referrals, the callback ledger, PINs, tokens and sessions, and the
call log as the recorder and the API use it (R1–R4, V1, V2, S1, A1), the same in memory
(the component tests' fakes), in SQLite and in PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.component.conftest import Stores
from tests.conftest import STHLM
from tests.fakes import plain_row
from vvk_pbx.domain.access import Role, Session
from vvk_pbx.domain.calls import CallRecord, Leg, Outcome
from vvk_pbx.domain.pins import PinRecord
from vvk_pbx.domain.referral import Source
from vvk_pbx.domain.routing import Action, Route, Step
from vvk_pbx.domain.voicemail import Message, Status
from vvk_pbx.storage.access import TokenExistsError
from vvk_pbx.storage.audit import AuditLog, Export
from vvk_pbx.storage.calllog import UTC_TEXT, CallQuery

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=STHLM)
ROUTE = Route(Action.OPERATOR_QUEUE, None, (Step("H1-H4", "Öppet"),), external=True)


@pytest.fixture
def store(stores: Stores) -> Any:
    return stores.referrals


async def test_a_new_referral_replaces_the_one_in_force_and_history_is_kept(
    store: Any,
) -> None:
    lunch = await store.set("1101", 1, T0, T0 + timedelta(hours=1), "1101", Source.PHONE)
    assert await store.in_force("1101", T0 + timedelta(minutes=5)) == lunch
    later = T0 + timedelta(minutes=10)
    meeting = await store.set(
        "1101", 2, later, T0 + timedelta(hours=4), "1101", Source.PHONE, note="Budget"
    )
    assert await store.in_force("1101", later) == meeting
    history = await store.history("1101")
    assert [r.reason for r in history] == [1, 2]
    assert history[0].cleared_at == later, "the lunch referral ended when the meeting began"
    assert history[1].note == "Budget"


async def test_a_future_referral_waits_and_each_ends_by_itself(store: Any) -> None:
    holiday_start = T0 + timedelta(days=21)
    await store.set("1101", 2, T0, T0 + timedelta(hours=2), "1101", Source.PHONE)
    holiday = await store.set(
        "1101", 4, holiday_start, holiday_start + timedelta(days=14), "op", Source.API
    )
    assert (await store.in_force("1101", T0 + timedelta(hours=1))).reason == 2  # type: ignore[union-attr]
    assert await store.in_force("1101", T0 + timedelta(hours=3)) is None
    assert await store.in_force("1101", holiday_start + timedelta(days=1)) == holiday
    assert await store.all_in_force(holiday_start + timedelta(days=1)) == {"1101": holiday}


async def test_clearing_opens_the_phone(store: Any) -> None:
    await store.set("1101", 2, T0, T0 + timedelta(hours=2), "1101", Source.PHONE)
    back = T0 + timedelta(minutes=30)
    cleared = await store.clear("1101", back)
    assert cleared is not None and cleared.cleared_at == back
    assert await store.in_force("1101", back) is None
    assert await store.clear("1101", back) is None  # nothing to clear


async def test_a_return_before_the_start_is_refused(store: Any) -> None:
    with pytest.raises(ValueError, match="is not after"):
        await store.set("1101", 2, T0, T0, "1101", Source.CLI)
    assert await store.history("1101") == []


@pytest.fixture
def ledger(stores: Stores) -> Any:
    return stores.messages


def message(mid: str, extension: str = "1101") -> Message:
    return Message(
        id=mid,
        extension=extension,
        caller="0701234567",
        call_id=mid,
        left_at=T0,
        duration_s=7.0,
        recording=f"vm-{extension}-{mid}",
        deadline_at=T0 + timedelta(days=2),
    )


async def test_the_ledger_keeps_deleted_messages_and_the_first_callback(
    ledger: Any,
) -> None:
    await ledger.add(message("m1"))
    await ledger.add(message("m2"))
    await ledger.add(message("m3", "1201"))
    await ledger.mark("m1", Status.DELETED, T0 + timedelta(hours=1))
    first = T0 + timedelta(days=3)
    called = await ledger.mark("m2", Status.CALLED_BACK, first)
    assert called is not None and called.late, "called back after the deadline"
    again = await ledger.mark("m2", Status.CALLED_BACK, first + timedelta(days=1))
    assert again is not None and again.called_back_at == first, "the first time stands"
    await ledger.mark("m2", Status.DELETED, first + timedelta(days=2))
    found = {m.id: m for m in await ledger.ledger(["1101"])}
    assert set(found) == {"m1", "m2"}
    assert found["m1"].status is Status.DELETED
    assert found["m1"].overdue(T0 + timedelta(days=2)), "deleting is no answer to the caller"
    assert found["m2"].status is Status.CALLED_BACK
    assert not found["m2"].overdue(T0 + timedelta(days=5))
    assert await ledger.mark("nope", Status.CALLED_BACK, first) is None


async def test_the_ledger_finds_messages_by_id_and_refuses_one_twice(ledger: Any) -> None:
    await ledger.add(message("m1"))
    assert (await ledger.get("m1")) == message("m1")
    assert await ledger.get("nope") is None
    assert await ledger.known(["m1", "m2"]) == {"m1"}
    with pytest.raises(Exception, match="m1"):
        await ledger.add(message("m1"))  # a message is in the ledger once


async def test_pins_are_kept_and_replaced(stores: Stores) -> None:
    pins = stores.pins
    assert await pins.get("1101") is None
    first = PinRecord.create("1101", "4711")
    await pins.put(first)
    assert await pins.get("1101") == first
    locked = first.after_attempt(False, T0)
    await pins.put(locked)
    assert await pins.get("1101") == locked


async def test_who_cleared_a_referral_and_who_called_back_are_kept(stores: Stores) -> None:
    await stores.referrals.set("1101", 2, T0, T0 + timedelta(hours=2), "1101", Source.PHONE)
    cleared = await stores.referrals.clear("1101", T0 + timedelta(minutes=5), by="1001")
    assert cleared is not None and cleared.cleared_by == "1001"
    [kept] = await stores.referrals.history("1101")
    assert (kept.set_by, kept.cleared_by) == ("1101", "1001")
    await stores.messages.add(message("m1"))
    marked = await stores.messages.mark("m1", Status.CALLED_BACK, T0, by="token:intranet")
    assert marked is not None and marked.called_back_by == "token:intranet"
    assert (await stores.messages.get("m1")) == marked


async def test_tokens_are_kept_by_digest_named_once_and_revoked(stores: Stores) -> None:
    access = stores.access
    token = await access.add_token("intranet", Role.REPORTS, "ab" * 32, T0)
    assert await access.token("ab" * 32) == token
    assert await access.token("cd" * 32) is None
    with pytest.raises(TokenExistsError, match="intranet"):
        await access.add_token("intranet", Role.ADMIN, "cd" * 32, T0)
    await access.add_token("console", Role.OPERATOR, "ef" * 32, T0 + timedelta(minutes=1))
    assert [t.name for t in await access.tokens()] == ["intranet", "console"]
    assert await access.revoke("intranet", T0 + timedelta(hours=1))
    assert not await access.revoke("intranet", T0 + timedelta(hours=2)), "revoked once"
    assert not await access.revoke("nope", T0)
    found = await access.token("ab" * 32)
    assert found is not None and found.revoked_at == T0 + timedelta(hours=1)


async def test_sessions_end_when_asked_and_when_old(stores: Stores) -> None:
    access = stores.access
    one = Session("11" * 32, "1101", "csrf1", T0, T0 + timedelta(hours=10))
    two = Session("22" * 32, "1001", "csrf2", T0, T0 + timedelta(hours=1))
    await access.add_session(one)
    await access.add_session(two)
    assert await access.session("11" * 32) == one
    assert await access.end_expired(T0 + timedelta(hours=2)) == 1
    assert await access.session("22" * 32) is None
    await access.end_session("11" * 32)
    assert await access.session("11" * 32) is None


async def test_the_call_log_keeps_a_batch_and_lists_calls_by_arrival(stores: Stores) -> None:
    log = stores.calls
    first = CallRecord.arrive("c1", "0701", "012319100", T0, ROUTE)
    later = CallRecord.arrive("c2", "0702", "012319100", T0 + timedelta(hours=1), ROUTE)
    legs = [
        Leg("c1:op2", "c1", "PJSIP/1002", "operator", T0 + timedelta(seconds=1)),
        Leg("c1:op1", "c1", "PJSIP/1001", "operator", T0),
    ]
    await log.save_batch([later, first], legs)
    assert await log.get_call("c1") == first
    assert [c.id for c in await log.open_calls()] == ["c1", "c2"]
    assert [c.id for c in await log.list_calls()] == ["c1", "c2"]
    assert [c.id for c in await log.list_calls(T0 + timedelta(minutes=1))] == ["c2"]
    assert [c.id for c in await log.list_calls(None, T0 + timedelta(hours=1))] == ["c1"]
    found = await log.legs_by_call(["c1", "c2"])
    assert [leg.id for leg in found["c1"]] == ["c1:op1", "c1:op2"], "in creation order"
    assert "c2" not in found


async def test_a_message_an_operator_took_keeps_its_name_note_and_taker(ledger: Any) -> None:
    taken = replace(
        message("t1"),
        recording="",
        duration_s=0.0,
        caller_name="Karin Öberg <b>",
        note="Ringer om bygglov; ring efter 13",
        taken_by="1001",
    )
    await ledger.add(taken)
    assert await ledger.get("t1") == taken
    assert not taken.recorded and message("m1").recorded


async def test_an_export_query_selects_the_same_calls_page_by_page(stores: Stores) -> None:
    def call(cid: str, minutes: int, **changes: Any) -> CallRecord:
        record = CallRecord.arrive(cid, "0701", "012319100", T0 + timedelta(minutes=minutes), ROUTE)
        return replace(record, **changes)

    records = [
        call("a", 0, answered_by="1001", outcome=Outcome.ANSWERED),
        call("b", 0, called="0123191101", outcome=Outcome.VOICEMAIL),  # the same instant as a
        call("c", 5, direction="internal", called="1201", answered_by="1201"),
        call("d", 9, outcome=Outcome.ABANDONED),
        call("e", 60 * 24, answered_by="1002", outcome=Outcome.ANSWERED),
    ]
    await stores.calls.save_batch(records, [])
    cases = [
        (CallQuery(), "abcde"),
        (CallQuery(since=T0 + timedelta(minutes=1), until=T0 + timedelta(hours=1)), "cd"),
        (CallQuery(direction="internal"), "c"),
        (CallQuery(outcome="answered"), "ae"),
        (CallQuery(answered_by="1001"), "a"),
        (CallQuery(called=frozenset({"0123191101", "1201"}), answered_among=frozenset()), "bc"),
        (CallQuery(called=frozenset(), answered_among=frozenset({"1002"})), "e"),
    ]
    for where, expected in cases:
        pages = [page async for page in stores.calls.stream_calls(where, batch=2)]
        assert "".join(r.id for page in pages for r in page) == expected, where
        assert all(len(page) <= 2 for page in pages)
        assert await stores.calls.count_calls(where) == len(expected)
        assert [r.id for r in records if where.matches(r)] == list(expected), "the same test"
        # The exports' read: the same calls, as plain rows of the columns asked for.
        rows = [page async for page in stores.calls.stream_rows(where, ("outcome", "id"), 2)]
        assert "".join(row[1] for page in rows for row in page) == expected, where
        assert all(len(page) <= 2 for page in rows)
        # Without arrived_at and id (PostgreSQL's keyset needs them, and drops them again).
        rows = [page async for page in stores.calls.stream_rows(where, ("called",), 2)]
        assert [row for page in rows for row in page] == [
            (r.called,) for r in records if r.id in expected
        ]


async def test_the_exports_rows_hold_every_cell_in_its_plain_form(stores: Stores) -> None:
    at = datetime(2026, 10, 25, 0, 59, 59, 999_999, tzinfo=UTC)  # just before a DST change
    answered = replace(
        CallRecord.arrive("a", "+46700000000", "012319100", at, ROUTE, 'Åsa "=1"'),
        ring_started_at=at,
        answered_at=at + timedelta(seconds=3),
        answered_by="1001",
        ended_at=at + timedelta(minutes=2),
        outcome=Outcome.ANSWERED,
        rings=1,
        within_goal=True,
        trace=("[H1-H4] öppet", 'a "quoted", line'),
    )
    late = replace(answered, id="b", rings=9, within_goal=False)
    unanswered = CallRecord.arrive("c", "0701", "1201", at + timedelta(hours=1), ROUTE)
    records = [answered, late, unanswered]
    await stores.calls.save_batch(records, [])
    columns = [f.name for f in fields(CallRecord)]
    rows = [row async for page in stores.calls.stream_rows(CallQuery(), columns) for row in page]
    assert rows == [plain_row(r, columns) for r in records]
    trace, start = columns.index("trace"), columns.index("arrived_at")
    assert json.loads(rows[0][trace]) == ["[H1-H4] öppet", 'a "quoted", line']
    assert rows[0][start] == "2026-10-25 00:59:59.999999" == at.strftime(UTC_TEXT)
    assert [row[columns.index("within_goal")] for row in rows] == [1, 0, None]


async def test_the_audit_log_keeps_every_export(stores: Stores) -> None:
    one = Export(T0, "token:intranet", "csv", {"since": "2026-11-01T00:00:00+01:00"}, 1204)
    two = Export(T0 + timedelta(hours=1), "1203", "xlsx", {}, 0)
    await stores.audit.record(two)
    await stores.audit.record(one)
    if isinstance(stores.audit, AuditLog):
        assert await stores.audit.exports() == [one, two]

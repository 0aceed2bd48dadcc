"""Transfer's table (A5): (state, event) -> (state, commands), and its checks."""

from __future__ import annotations

import pytest

from tests.unit.flowtable import AT, OPEN, POLICY, Row, call, rows, sounds, step
from vvk_pbx.domain.callflow.commands import (
    CancelTimer,
    Command,
    Enqueue,
    HangUp,
    HangUpLegs,
    LegSpec,
    LookUpReferral,
    Play,
    ReportTransfer,
    Ring,
    StartTimer,
    StopPrompt,
)
from vvk_pbx.domain.callflow.events import (
    CallEvent,
    LegAnswered,
    LegGone,
    TransferRequested,
)
from vvk_pbx.domain.callflow.flows.common import RINGBACK
from vvk_pbx.domain.callflow.flows.transfer import TransferError, check
from vvk_pbx.domain.callflow.states import (
    Connected,
    Done,
    Menu,
    Purpose,
    Queued,
    Reaching,
    Ringing,
    State,
    Timer,
)

OP1 = "c:op1"
TALKING = Connected(OP1, "1001")
ON_THE_PHONE = {"answered": True, "bridged": True, "legs": 2}
REFER = "1001's phone (REFER)"
ANSWERED, DECLINED = "channel_answered", "channel_declined"

TABLE: list[Row] = [
    (
        "REFER to a person: accepted, the operator leaves, the person is looked up",
        TALKING,
        ON_THE_PHONE,
        TransferRequested("1201", OP1, REFER),
        Reaching("1201", Purpose.TRANSFER),
        (
            ReportTransfer(OP1, ANSWERED),
            HangUpLegs((OP1,)),
            Play((RINGBACK,), "ringback"),
            LookUpReferral("1201"),
        ),
    ),
    (
        "the API to an operator: no menu behind, the phone rings",
        TALKING,
        ON_THE_PHONE,
        TransferRequested("1002", None, "the API"),
        Ringing(Purpose.TRANSFER, frozenset({"c:xfer3"}), "1002"),
        (
            HangUpLegs((OP1,)),
            Play((RINGBACK,), "ringback"),
            Ring((LegSpec("c:xfer3", "PJSIP/1002", "1002"),), Purpose.TRANSFER, 72),
        ),
    ),
    (
        "REFER to no extension: declined, the call stays",
        TALKING,
        ON_THE_PHONE,
        TransferRequested("4711", OP1, REFER),
        TALKING,
        (ReportTransfer(OP1, DECLINED),),
    ),
    (
        "REFER to the phone that has the caller: declined",
        TALKING,
        ON_THE_PHONE,
        TransferRequested("1001", OP1, REFER),
        TALKING,
        (ReportTransfer(OP1, DECLINED),),
    ),
    (
        "REFER from a phone that does not have the caller: declined",
        TALKING,
        ON_THE_PHONE,
        TransferRequested("1201", "c:op2", "1002's phone (REFER)"),
        TALKING,
        (ReportTransfer("c:op2", DECLINED),),
    ),
    (
        "REFER while nobody talks to the caller: declined",
        Queued(),
        {"answered": True},
        TransferRequested("1201", OP1, REFER),
        Queued(),
        (ReportTransfer(OP1, DECLINED),),
    ),
    (
        "the API's transfer after the call moved on: nothing happens",
        Queued(),
        {"answered": True},
        TransferRequested("1201", None, "the API"),
        Queued(),
        (),
    ),
    (
        "the target answers: connected",
        Ringing(Purpose.TRANSFER, frozenset({"c:xfer3"}), "1002"),
        {**ON_THE_PHONE, "playing": "ringback", "legs": 3},
        LegAnswered("c:xfer3", "1002", AT),
        Connected("c:xfer3", "1002"),
        (CancelTimer(Timer.OVERFLOW), StopPrompt()),
    ),
    (
        "an operator the call was transferred to does not answer: back in line, and it can overflow",
        Ringing(Purpose.TRANSFER, frozenset({"c:xfer3"}), "1002"),
        {**ON_THE_PHONE, "playing": "ringback", "legs": 3},
        LegGone("c:xfer3", AT),
        Queued(),
        (Enqueue(True, OPEN), StartTimer(Timer.OVERFLOW, 60)),
    ),
    (
        "a person the call was transferred to does not answer: their menu (R5)",
        Ringing(Purpose.TRANSFER, frozenset({"c:xfer3"}), "1201"),
        {**ON_THE_PHONE, "legs": 3},
        LegGone("c:xfer3", AT),
        Menu("1201"),
        (Play(sounds("name-1201", "not-answering", "referral-menu"), "menu"),),
    ),
    (
        "the phone that has the caller hangs up: the caller is hung up",
        TALKING,
        ON_THE_PHONE,
        LegGone(OP1, AT),
        Done(),
        (HangUp(),),
    ),
    (
        "another phone answers late: it lost the race",
        TALKING,
        ON_THE_PHONE,
        LegAnswered("c:op2", "1002", AT),
        TALKING,
        (HangUpLegs(("c:op2",), status="LOST_RACE"),),
    ),
]


@rows(TABLE)
def test_transfer(
    what: str,
    state: State,
    fields: dict[str, object],
    event: CallEvent,
    after: State,
    commands: tuple[Command, ...],
) -> None:
    assert step(call(state, **fields), event)[:2] == (after, commands)


def test_the_trace_says_who_transferred_to_whom_and_how() -> None:
    _, _, after = step(call(TALKING, **ON_THE_PHONE), TransferRequested("1201", OP1, REFER))
    assert "[A5] transferred by 1001 to 1201 via 1001's phone (REFER)" in after.record.trace


@pytest.mark.parametrize(
    ("state", "to", "status", "reason"),
    [
        (None, "1201", 404, "no call c in progress"),
        (Done(), "1201", 404, "no call c in progress"),
        (Queued(), "1201", 409, "call c is not connected to anyone to transfer it"),
        (TALKING, "4711", 422, "'4711' is not an extension in the directory"),
        (TALKING, "1001", 409, "call c is already connected to 1001"),
    ],
)
def test_a_transfer_that_cannot_be_done_now_says_why(
    state: State | None, to: str, status: int, reason: str
) -> None:
    with pytest.raises(TransferError) as refused:
        check(None if state is None else call(state), "c", to, POLICY)
    assert (refused.value.status, refused.value.reason) == (status, reason)


def test_a_connected_call_can_be_transferred() -> None:
    check(call(TALKING), "c", "1201", POLICY)  # raises nothing

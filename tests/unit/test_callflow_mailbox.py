"""The mailbox's table (V1): (state, event) -> (state, commands)."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.flowtable import AT, OPEN, Row, call, rows, sounds, step
from vvk_pbx.domain.callflow.commands import (
    CancelTimer,
    Command,
    MarkMessage,
    OpenMailbox,
    Play,
    StartTimer,
    StopPrompt,
)
from vvk_pbx.domain.callflow.events import (
    CallEvent,
    Digit,
    MailboxOpened,
    MailboxRefused,
    PromptDone,
    ServiceFailed,
    TimerFired,
)
from vvk_pbx.domain.callflow.states import Farewell, Mailbox, PinEntry, State, Timer
from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.dialcodes import Problem
from vvk_pbx.domain.routing import Action, CallKind
from vvk_pbx.domain.voicemail import Message, Status


def message(mid: str, caller: str = "0701") -> Message:
    return Message(mid, "1101", caller, mid, OPEN, 9.0, f"vm-1101-{mid}", OPEN + timedelta(days=2))


M1, M2 = message("m1"), message("m2", "0702")
PLAY_M1 = Play(
    (*sounds("voicemail-message", "num-0", "num-7", "num-0", "num-1"), "recording:vm-1101-m1",
     *sounds("voicemail-menu")),
    "message",
)  # fmt: skip
PLAY_M2_AFTER_CALLED_BACK = Play(
    (*sounds("voicemail-called-back", "voicemail-message", "num-0", "num-7", "num-0", "num-2"),
     "recording:vm-1101-m2", *sounds("voicemail-menu")),
    "message",
)  # fmt: skip
HEARD = "V1: the mailbox was heard"
ON_THE_PIN = {"answered": True, "playing": "pin"}

TABLE: list[Row] = [
    (
        "the first digit: the silence timer is done with",
        PinEntry(),
        {"answered": True},
        Digit("4"),
        PinEntry("4"),
        (CancelTimer(Timer.PIN_WAIT),),
    ),
    (
        "more digits",
        PinEntry("4"),
        {"answered": True},
        Digit("7"),
        PinEntry("47"),
        (),
    ),
    (
        "#: the PIN is tried",
        PinEntry("4711"),
        ON_THE_PIN,
        Digit("#"),
        PinEntry(),
        (StopPrompt(), CancelTimer(Timer.PIN_WAIT), OpenMailbox("1101", "4711")),
    ),
    (
        "a wrong PIN: Fel PIN-kod, and the PIN prompt again",
        PinEntry(),
        {"answered": True},
        MailboxRefused(Problem.WRONG_PIN, "wrong PIN for 1101"),
        PinEntry("", 1),
        (Play(sounds("voicemail-wrong-pin", "voicemail-pin"), "pin"),),
    ),
    (
        "the third wrong PIN: said so, and goodbye",
        PinEntry("", 2),
        {"answered": True},
        MailboxRefused(Problem.WRONG_PIN, "wrong PIN for 1101"),
        Farewell(Outcome.FEATURE_CODE, "V1: mailbox refused"),
        (Play(sounds("voicemail-wrong-pin"), "farewell"),),
    ),
    (
        "a locked mailbox: said so at once",
        PinEntry(),
        {"answered": True},
        MailboxRefused(Problem.LOCKED, "1101 is locked"),
        Farewell(Outcome.FEATURE_CODE, "V1: mailbox refused"),
        (Play(sounds("code-error-locked"), "farewell"),),
    ),
    (
        "opened: the first message plays (marked heard), with the caller's number",
        PinEntry(),
        {"answered": True},
        MailboxOpened((M1, M2)),
        Mailbox(M1, (M2,)),
        (MarkMessage("m1", Status.HEARD), PLAY_M1),
    ),
    (
        "opened and empty: inga meddelanden",
        PinEntry(),
        {"answered": True},
        MailboxOpened(()),
        Farewell(Outcome.FEATURE_CODE, HEARD),
        (Play(sounds("voicemail-none"), "farewell"),),
    ),
    (
        "the PIN prompt ends with no key: wait a little",
        PinEntry(),
        ON_THE_PIN,
        PromptDone("pin", AT),
        PinEntry(),
        (StartTimer(Timer.PIN_WAIT, 10),),
    ),
    (
        "still no key: goodbye",
        PinEntry(),
        {"answered": True},
        TimerFired(Timer.PIN_WAIT),
        Farewell(Outcome.FEATURE_CODE, "V1: no PIN was entered"),
        (Play(sounds("goodbye"), "farewell"),),
    ),
    (
        "a timer after typing began changes nothing",
        PinEntry("4"),
        {"answered": True},
        TimerFired(Timer.PIN_WAIT),
        PinEntry("4"),
        (),
    ),
    (
        "5: called back, then the next message",
        Mailbox(M1, (M2,)),
        {"answered": True, "playing": "message"},
        Digit("5"),
        Mailbox(M2, ()),
        (
            StopPrompt(),
            MarkMessage("m1", Status.CALLED_BACK),
            MarkMessage("m2", Status.HEARD),
            PLAY_M2_AFTER_CALLED_BACK,
        ),
    ),
    (
        "3 on the last one: deleted (it stays in the ledger), and the end",
        Mailbox(M1, ()),
        {"answered": True, "playing": "message"},
        Digit("3"),
        Farewell(Outcome.FEATURE_CODE, HEARD),
        (
            StopPrompt(),
            MarkMessage("m1", Status.DELETED),
            Play(sounds("voicemail-deleted", "voicemail-end"), "farewell"),
        ),
    ),
    (
        "no choice: on to the next",
        Mailbox(M1, (M2,)),
        {"answered": True, "playing": "message"},
        PromptDone("message", AT),
        Mailbox(M2, ()),
        (MarkMessage("m2", Status.HEARD), Play(PLAY_M2_AFTER_CALLED_BACK.media[1:], "message")),
    ),
    (
        "the ledger fails: said so, and goodbye (nothing to the operators' fallback)",
        Mailbox(M2, ()),
        {"answered": True, "playing": "message"},
        ServiceFailed("database is locked"),
        Farewell(Outcome.FEATURE_CODE, "V1: the ledger failed"),
        (StopPrompt(), Play(sounds("fallback-feature-unavailable"), "farewell")),
    ),
    (
        "a key with no meaning here changes nothing",
        Mailbox(M1, ()),
        {"answered": True, "playing": "message"},
        Digit("7"),
        Mailbox(M1, ()),
        (),
    ),
]


@rows(TABLE)
def test_mailbox(
    what: str,
    state: State,
    fields: dict[str, object],
    event: CallEvent,
    after: State,
    commands: tuple[Command, ...],
) -> None:
    staff_call = call(
        state, kind=CallKind.FEATURE, route=Action.FEATURE_CODE, caller="1101", dialed="*98#",
        **fields,
    )  # fmt: skip
    assert step(staff_call, event)[:2] == (after, commands)

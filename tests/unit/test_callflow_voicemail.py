"""Voicemail's table (V1, V2): (state, event) -> (state, commands)."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.flowtable import AT, OPEN, Row, call, rows, sounds, step
from vvk_pbx.domain.callflow.commands import Command, Forget, Play, Record, SaveMessage
from vvk_pbx.domain.callflow.events import (
    CallerGone,
    CallEvent,
    Digit,
    MessageSaved,
    PromptDone,
    RecordingDone,
    ServiceFailed,
)
from vvk_pbx.domain.callflow.states import Done, Farewell, Recording, State, VoicemailPrompt
from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.routing import Action
from vvk_pbx.domain.voicemail import Message

NAME = "vm-1101-c"
RECORDING = Recording("1101", NAME, AT)
SAVED = Farewell(Outcome.VOICEMAIL, "V1: the message is saved")
MESSAGE = Message("c", "1101", "0701234567", "c", OPEN, 7.0, NAME, OPEN + timedelta(days=2))

TABLE: list[Row] = [
    (
        "the prompt ends: the recording starts, at most 120 s, 5 s of silence end it",
        VoicemailPrompt("1101"),
        {"answered": True, "playing": "voicemail-leave"},
        PromptDone("voicemail-leave", AT),
        RECORDING,
        (Record(NAME, 120, 5),),
    ),
    (
        "keys during the prompt change nothing",
        VoicemailPrompt("1101"),
        {"answered": True, "playing": "voicemail-leave"},
        Digit("1"),
        VoicemailPrompt("1101"),
        (),
    ),
    (
        "the recording ends: into the ledger, left now on the controller's clock",
        RECORDING,
        {"answered": True},
        RecordingDone(NAME, 7.0, AT + timedelta(seconds=7)),
        RECORDING,
        (SaveMessage("1101", "0701234567", NAME, OPEN, 7.0),),
    ),
    (
        "another recording's end is none of this call's",
        RECORDING,
        {"answered": True},
        RecordingDone("vm-1102-other", 7.0, AT),
        RECORDING,
        (),
    ),
    (
        "the ledger has it: the caller is thanked",
        RECORDING,
        {"answered": True},
        MessageSaved(MESSAGE),
        SAVED,
        (Play(sounds("voicemail-saved"), "farewell"),),
    ),
    (
        "the ledger fails: the audio is kept all the same, and the caller is told so",
        RECORDING,
        {"answered": True},
        ServiceFailed("database is locked"),
        SAVED,
        (Play(sounds("voicemail-saved"), "farewell"),),
    ),
    (
        "hanging up ends the message: it is kept, its length from when it began",
        RECORDING,
        {"answered": True},
        CallerGone(AT + timedelta(seconds=9)),
        Done(),
        (
            SaveMessage("1101", "0701234567", NAME, OPEN, 9.0),
            Forget(AT + timedelta(seconds=9)),
        ),
    ),
    (
        "the ledger answers for a caller who hung up: only the trace changes",
        Done(),
        {"answered": True},
        MessageSaved(MESSAGE),
        Done(),
        (),
    ),
]


@rows(TABLE)
def test_voicemail(
    what: str,
    state: State,
    fields: dict[str, object],
    event: CallEvent,
    after: State,
    commands: tuple[Command, ...],
) -> None:
    assert step(call(state, route=Action.EXTENSION, **fields), event)[:2] == (after, commands)


def test_a_message_makes_the_call_a_voicemail_call_with_its_deadline_in_the_trace() -> None:
    recording = call(RECORDING, route=Action.EXTENSION, answered=True)
    _, _, saving = step(recording, RecordingDone(NAME, 7.0, AT))
    assert saving.record.outcome is Outcome.VOICEMAIL
    _, _, saved = step(saving, MessageSaved(MESSAGE))
    assert saved.record.trace[-1].startswith(
        "[V2] message c for 1101, 7 s; call back by 2026-12-02"
    )
    _, _, hung_up = step(call(RECORDING, route=Action.EXTENSION), CallerGone(AT))
    assert hung_up.record.outcome is Outcome.VOICEMAIL

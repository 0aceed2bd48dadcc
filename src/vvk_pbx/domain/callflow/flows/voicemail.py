"""Voicemail (V1, V2): the prompt, the recording, the callback ledger.

    VoicemailPrompt -PromptDone-> Recording -RecordingDone-> (SaveMessage) -> Farewell("sparat")
    Recording -CallerGone-> Done, the message saved all the same (hanging up ends most messages)

The audio is safe in Asterisk's spool once recorded: a ledger that fails is
told in the trace and filled from the spool later (``services/reconciliation``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from vvk_pbx.domain.callflow.call import Call, Context, Step
from vvk_pbx.domain.callflow.commands import Record, SaveMessage
from vvk_pbx.domain.callflow.events import (
    CallEvent,
    MessageSaved,
    PromptDone,
    RecordingDone,
    ServiceFailed,
)
from vvk_pbx.domain.callflow.flows.common import farewell, prompt
from vvk_pbx.domain.callflow.states import Recording, VoicemailPrompt
from vvk_pbx.domain.calls import Outcome, seconds_between


def start(call: Call, person: str) -> Step:
    """2 in the menu: "leave a message after the tone" (V1)."""
    step = Step(call).note(f"[V1] pressed 2: voicemail for {person}")
    step = step.set(state=VoicemailPrompt(person))
    return step.then(lambda c: prompt(c, ["voicemail-leave"], "voicemail-leave"))


def recording_name(person: str, call_id: str) -> str:
    """``vm-<extension>-<call id>``: the call id is also the message's id in the ledger."""
    return f"vm-{person}-{call_id}"


def decide(call: Call, event: CallEvent, ctx: Context) -> Step | None:
    """Voicemail's part of a call; None where the event is not its business."""
    state = call.state
    if isinstance(state, VoicemailPrompt) and isinstance(event, PromptDone):
        name = recording_name(state.person, call.id)
        policy = ctx.policy
        record = Record(name, policy.voicemail_max_s, policy.voicemail_silence_s)
        return Step(call, (record,)).set(state=Recording(state.person, name, event.at))
    if isinstance(state, Recording) and isinstance(event, RecordingDone):
        if event.name != state.name:
            return None
        return save(call, state, event.at, event.duration_s, ctx)
    if isinstance(state, Recording) and isinstance(event, MessageSaved | ServiceFailed):
        return saved(call, event)
    return None


def save(
    call: Call, state: Recording, at: datetime, duration_s: float | None, ctx: Context
) -> Step:
    """The recording ended at ``at`` (Asterisk's time): into the ledger. Its length is
    Asterisk's, or for a caller who hung up the time since the recording began."""
    length = duration_s if duration_s is not None else seconds_between(state.started_at, at)
    command = SaveMessage(state.person, call.record.caller, state.name, ctx.now, max(0.0, length))
    # The call is a voicemail call whatever the ledger answers: the audio is kept.
    record = replace(call.record, outcome=Outcome.VOICEMAIL)
    return Step(call, (command,)).record(record)


def saved(call: Call, event: MessageSaved | ServiceFailed) -> Step:
    """The ledger's answer goes into the trace; a caller still on the line is thanked
    (one who hung up is ``Done`` by now)."""
    if isinstance(event, MessageSaved):
        message = event.message
        note = (
            f"[V2] message {message.id} for {message.extension}, {message.duration_s:.0f} s; "
            f"call back by {message.deadline_at.isoformat()}"
        )
    else:
        note = (
            f"[V2] the message is recorded; the ledger failed ({event.detail}), it is added later"
        )
    step = Step(call).note(note)
    if isinstance(call.state, Recording):
        return step.then(
            lambda c: farewell(
                c, ["voicemail-saved"], Outcome.VOICEMAIL, "V1: the message is saved"
            )
        )
    return step

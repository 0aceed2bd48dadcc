"""One decision for one call: ``decide(call, event, context) -> Step``, pure.

The state tells which feature decides (``FLOWS``); what every state handles
the same way is here: a leg's first ring (A1), a prompt ending, the caller
hanging up, the end of a call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from vvk_pbx.domain.callflow.call import FALLBACK_INTERNAL, Call, Context, Step
from vvk_pbx.domain.callflow.commands import Forget, ToDialplan
from vvk_pbx.domain.callflow.events import (
    Arrived,
    CallerGone,
    CallEvent,
    ConsultRequested,
    LegAnswered,
    LegFailed,
    LegGone,
    LegRinging,
    MessageSaved,
    Offered,
    ParkRequested,
    PromptDone,
    PromptFailed,
    ServiceFailed,
    TransferRequested,
)
from vvk_pbx.domain.callflow.flows import (
    answering_machine,
    console,
    dial_code,
    mailbox,
    operator_queue,
    person,
    transfer,
    voicemail,
)
from vvk_pbx.domain.callflow.flows.common import connect, finish, hang_up
from vvk_pbx.domain.callflow.states import (
    Announcing,
    Connected,
    Consulting,
    Done,
    Farewell,
    HandedOver,
    Mailbox,
    Menu,
    Parked,
    PinEntry,
    Purpose,
    Queued,
    Reaching,
    ReadingCode,
    Recording,
    Ringing,
    Routing,
    State,
    VoicemailPrompt,
)
from vvk_pbx.domain.calls import MAX_NUMBER, CallRecord, Outcome, bounded, display_name
from vvk_pbx.domain.routing import Action, route

Flow = Callable[[Call, CallEvent, Context], Step | None]

# Which feature owns a state (Ringing: by its purpose, RINGING below).
FLOWS: dict[type, Flow] = {
    Announcing: answering_machine.decide,
    Queued: operator_queue.decide,
    Reaching: person.decide,
    Menu: person.decide,
    VoicemailPrompt: voicemail.decide,
    Recording: voicemail.decide,
    ReadingCode: dial_code.decide,
    PinEntry: mailbox.decide,
    Mailbox: mailbox.decide,
    Connected: transfer.decide,
    Parked: console.decide,
    Consulting: console.decide,
}
# Who decides when nobody answers a ringing, by its purpose.
NOBODY: dict[Purpose, Callable[[Call, Context], Step]] = {
    Purpose.OPERATOR: operator_queue.nobody_answered,
    Purpose.OVERFLOW: operator_queue.nobody_answered,
    Purpose.PERSON: person.not_answered,
    Purpose.COLLEAGUE: person.not_answered,
    Purpose.ON_CALL: answering_machine.nobody_answered,
    Purpose.TRANSFER: transfer.nobody_answered,
}
RINGING: dict[Purpose, Flow] = {
    Purpose.OPERATOR: operator_queue.decide,
    Purpose.OVERFLOW: operator_queue.decide,
    Purpose.PERSON: person.decide,
    Purpose.COLLEAGUE: person.decide,
    Purpose.ON_CALL: answering_machine.decide,
    Purpose.TRANSFER: transfer.decide,
}


def arrive(call_id: str, event: Arrived, ctx: Context) -> Step:
    """A new call: the route decides at the controller's ``now`` (H1–H4, A5, R2) and the
    flow it names starts. The record arrives at Asterisk's ``event.at`` (A1).

    The caller id and the dialled string come from outside with any length and any
    characters: they are bounded here, where they enter, so that one odd caller
    never makes the call log refuse a row (O1)."""
    policy = ctx.policy
    caller, dialed = bounded(event.caller), bounded(event.dialed)
    name = bounded(display_name(event.name))
    decision = route(event.kind, caller, dialed, ctx.now, policy.calendar, policy.numbering)
    record = CallRecord.arrive(call_id, caller, dialed, event.at, decision, name)
    if (caller, dialed, name) != (event.caller, event.dialed, display_name(event.name)):
        record = record.note(
            f"[O1] caller id, name or number cut to {MAX_NUMBER} printable characters"
        )
    call = Call(call_id, record, Routing(), event.kind, decision.action, ctx.now)
    if decision.action is Action.ANSWERING_MACHINE:
        return answering_machine.start(call, ctx)
    if decision.action is Action.OPERATOR_QUEUE:
        return operator_queue.start(call, ctx)
    if decision.action is Action.EXTENSION and decision.target is not None:
        return person.reach(call, decision.target, Purpose.PERSON, ctx)
    if decision.action is Action.FEATURE_CODE:
        return dial_code.start(call, dialed)
    # No such number: the dialplan says so in words, as it does without the controller.
    ended = finish(call, event.at, Outcome.UNKNOWN_NUMBER, "no such number")
    return Step(replace(ended, state=HandedOver()), (ToDialplan(FALLBACK_INTERNAL, dialed),))


def adopt(
    call_id: str,
    event: Arrived,
    leg: str,
    who: str,
    legs_made: int,
    record: CallRecord | None,
    ctx: Context,
) -> Call:
    """A call that an earlier controller process connected to a person (``who`` on
    ``leg``), found bridged when this one started: it goes on as ``Connected`` (issue
    13: a restart never cuts a call in progress). ``record`` is its row in the call
    log, or None when the log could not be read in time; then a new one is made from
    the channel (``event``: its caller and creation time) and says so. ``legs_made``
    numbers the legs the call makes from now on."""
    policy = ctx.policy
    caller, dialed = bounded(event.caller), bounded(event.dialed)
    decision = route(event.kind, caller, dialed, ctx.now, policy.calendar, policy.numbering)
    if record is None:
        record = CallRecord.arrive(
            call_id, caller, dialed, event.at, decision, bounded(display_name(event.name))
        ).note("[resync] its call-log row could not be read: times before the restart unknown")
    record = record.note(f"[resync] the controller restarted; connected to {who}, adopted")
    return Call(
        call_id,
        record,
        Connected(leg, who),
        event.kind,
        decision.action,
        ctx.now,
        answered=True,
        bridged=True,
        legs=legs_made,
    )


def decide(call: Call, event: CallEvent, ctx: Context) -> Step:
    """The call after ``event``, and what to do (``Step``); an event the call's state has
    no use for changes nothing."""
    if isinstance(event, PromptDone | PromptFailed):
        if event.token != call.playing:
            return Step(call)  # a prompt stopped earlier
        call = replace(call, playing=None)
        if isinstance(event, PromptFailed):
            return Step(call)  # the caller is leaving: its CallerGone follows
    if isinstance(event, LegRinging):
        # The call rings from its first leg's first ring (A1).
        if call.record.ring_started_at is not None:
            return Step(call)
        return Step(replace(call, record=replace(call.record, ring_started_at=event.at)))
    if isinstance(event, CallerGone):
        return caller_gone(call, event, ctx)
    state = call.state
    if isinstance(event, TransferRequested):
        return transfer.decide(call, event, ctx) or Step(call)
    if isinstance(event, Offered):
        return operator_queue.decide(call, event, ctx) or Step(call)
    if isinstance(event, ParkRequested | ConsultRequested):
        return console.decide(call, event, ctx) or Step(call)
    if isinstance(state, Farewell) and isinstance(event, PromptDone):
        return hang_up(call, event.at, state.outcome, state.why)
    if isinstance(state, Done) and isinstance(event, MessageSaved | ServiceFailed):
        return voicemail.saved(call, event)  # the message of a caller who hung up
    if isinstance(state, Ringing):
        ringing = _ringing(call, state, event, ctx)
        if ringing is not None:
            return ringing
    flow = RINGING[state.purpose] if isinstance(state, Ringing) else FLOWS.get(type(state))
    step = flow(call, event, ctx) if flow is not None else None
    return step if step is not None else Step(call)


def _ringing(call: Call, state: Ringing, event: CallEvent, ctx: Context) -> Step | None:
    """What every ringing does with its legs: the first person to answer gets the caller;
    a phone that stops leaves the others ringing; when none is left, the feature whose
    ringing it was decides (``NOBODY``)."""
    if isinstance(event, LegAnswered) and event.leg in state.legs:
        return connect(call, event.leg, event.who, event.at, ctx)
    if isinstance(event, LegFailed | LegGone) and event.leg in state.legs:
        left = state.legs - {event.leg}
        if left:
            return Step(replace(call, state=replace(state, legs=left)))
        return NOBODY[state.purpose](call, ctx)
    return None


def caller_gone(call: Call, event: CallerGone, ctx: Context) -> Step:
    """The caller left our app: hung up, or handed to the dialplan. The outcome is what
    the call was doing then; a message being recorded is kept (V1)."""
    state = call.state
    step = Step(call)
    if isinstance(state, Recording):
        # Hanging up is how most callers end a message.
        step = voicemail.save(call, state, event.at, None, ctx)
    outcome = _outcome_on_leaving(step.call, state)
    why = "handed to the dialplan" if isinstance(state, HandedOver) else "the caller hung up"
    ended = finish(step.call, event.at, outcome, why)
    return Step(replace(ended, state=Done()), (*step.commands, Forget(event.at)))


def _outcome_on_leaving(call: Call, state: State) -> Outcome | None:
    if isinstance(state, HandedOver):
        return None  # the outcome it was handed over with stands
    if call.route is Action.FEATURE_CODE:
        # Staff hang up during the read-back or their mailbox: the code was
        # carried out (or refused) all the same, and no caller was lost.
        return Outcome.FEATURE_CODE
    if isinstance(state, Announcing) or (
        isinstance(state, Ringing) and state.purpose is Purpose.ON_CALL
    ):
        # Hanging up on the answering machine is its normal end, not an abandoned call.
        return Outcome.CLOSED if call.record.outcome is Outcome.IN_PROGRESS else None
    if isinstance(state, Menu | VoicemailPrompt) or (
        isinstance(state, Farewell) and state.outcome is Outcome.REFERRED
    ):
        return Outcome.REFERRED  # heard the person's referral or menu, then left (R5)
    return None

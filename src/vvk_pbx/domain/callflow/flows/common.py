"""The steps every flow shares: prompts, ringing, a person answering, the end, the fallback.

Each takes the call as it is and returns a ``Step``; flows chain them with
``Step.then``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from vvk_pbx.domain.announcements import sound
from vvk_pbx.domain.callflow.call import (
    FALLBACK_FEATURE,
    FALLBACK_INBOUND,
    FALLBACK_INTERNAL,
    Call,
    Context,
    Step,
)
from vvk_pbx.domain.callflow.commands import (
    Answer,
    CancelTimer,
    HangUp,
    HangUpLegs,
    LegSpec,
    Play,
    Ring,
    StopPrompt,
    ToDialplan,
)
from vvk_pbx.domain.callflow.states import (
    Announcing,
    Connected,
    Done,
    Farewell,
    HandedOver,
    Purpose,
    Queued,
    Ringing,
    Timer,
)
from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.routing import Action, CallKind

RINGBACK = "tone:ring;tonezone=se"  # the Swedish ring cadence, until stopped
# Legs whose answer is the switchboard's (or the person's own phone's): the
# ring count and the four-ring goal apply (A1). A colleague's or an on-call
# service's answer records who answered, without rings. (A transfer's target
# answers a call a person answered already: only noted.)
ANSWER_COUNTS = (Purpose.OPERATOR, Purpose.OVERFLOW, Purpose.PERSON, Purpose.TRANSFER)
ANSWER_OUTCOME = {Purpose.COLLEAGUE: Outcome.COLLEAGUE, Purpose.ON_CALL: Outcome.ON_CALL_TRANSFER}


def answer(call: Call) -> Step:
    """Answer the caller unless that is done."""
    if call.answered:
        return Step(call)
    return Step(replace(call, answered=True), (Answer(),))


def stop_prompt(call: Call) -> Step:
    """Stop what the caller hears, if anything."""
    if call.playing is None:
        return Step(call)
    return Step(replace(call, playing=None), (StopPrompt(),))


def play(call: Call, media: Sequence[str], token: str) -> Step:
    """Play one prompt (media URIs) to the caller, after stopping any other."""
    return stop_prompt(call).do(Play(tuple(media), token)).set(playing=token)


def prompt(call: Call, names: Sequence[str], token: str) -> Step:
    """Play our own prompts (``sounds/catalogue.toml`` names)."""
    return play(call, [sound(name) for name in names], token)


def ringback(call: Call) -> Step:
    """The Swedish ring tone for an answered caller, until stopped."""
    return play(call, [RINGBACK], "ringback")


def ring(
    call: Call,
    targets: Sequence[tuple[str, str]],
    purpose: Purpose,
    timeout_s: int,
    person: str | None = None,
    auto_answer: bool = False,
) -> Step:
    """Ring ``(endpoint, who)`` targets for the caller: state ``Ringing``; ``auto_answer``
    asks phones that can to answer by themselves (an operator's pick).

    A playing channel joins a bridge only when its playback ends
    (``asterisk-notes.md``): a caller who hears a prompt and is not yet in the
    bridge has it stopped, joins, and then hears the ring tone.
    """
    legs = tuple(
        LegSpec(f"{call.id}:{purpose.value}{call.legs + n}", endpoint, who)
        for n, (endpoint, who) in enumerate(targets, start=1)
    )
    replay = not call.bridged and call.playing is not None
    step = stop_prompt(call) if replay else Step(call)
    step = step.do(Ring(legs, purpose, timeout_s, auto_answer=auto_answer)).set(
        legs=call.legs + len(legs),
        bridged=True,
        state=Ringing(purpose, frozenset(leg.id for leg in legs), person),
    )
    return step.then(ringback) if replay else step


def connect(call: Call, leg: str, who: str, at: datetime, ctx: Context) -> Step:
    """A person answered on ``leg`` of the call's ringing: they get the caller (A1, A5).

    The first person's answer is the call's measure (A1, A2): rings from arrival
    for the switchboard and a person's own phone, who answered for a colleague or
    an on-call service; a later answer (a transfer's target) is only noted. The
    other phones stop, told that the call was answered elsewhere.
    """
    assert isinstance(call.state, Ringing)
    purpose, others = call.state.purpose, call.state.legs - {leg}
    record = call.record
    if record.answered_at is not None:
        record = record.note(f"[A5] {who} answered the transfer")
    elif purpose in ANSWER_COUNTS:
        policy = ctx.policy
        record = record.answered(at, who, policy.cycle_ms, policy.goal_rings)
        record = record.note(f"[A1] answered by {who}")
    else:
        outcome = ANSWER_OUTCOME[purpose]
        record = replace(record, outcome=outcome, answered_at=at, answered_by=who)
        record = record.note(f"[A1] answered by {who}")
    step = Step(call, (CancelTimer(Timer.OVERFLOW),)).record(record)
    step = step.then(stop_prompt).then(answer).set(state=Connected(leg, who))
    if others:
        step = step.do(HangUpLegs(tuple(sorted(others)), "answered_elsewhere"))
    return step


def finish(call: Call, at: datetime, outcome: Outcome | None, why: str) -> Call:
    """The call's record ends at ``at`` (Asterisk's time), as ``outcome`` (None: as it stands,
    abandoned if nothing else happened); a record that ended already stays as it is."""
    if call.record.ended_at is not None:
        return call
    return replace(call, record=call.record.note(f"[end] {why}").ended(at, outcome))


def hang_up(call: Call, at: datetime, outcome: Outcome | None, why: str) -> Step:
    """End the call and hang up the caller."""
    return Step(replace(finish(call, at, outcome, why), state=Done()), (HangUp(),))


def farewell(call: Call, names: Sequence[str], outcome: Outcome, why: str) -> Step:
    """Play a last prompt; the call hangs up when it ends (``Farewell``)."""
    return prompt(call, names, "farewell").set(state=Farewell(outcome, why))


def fallback_target(call: Call) -> tuple[str, str]:
    """Where the dialplan takes the call over: ``(context, extension)``.

    A staff dial code: the feature fallback, which says the service is not
    available. An internal call to an extension, still about that extension:
    the internal fallback rings it. Anything else: the switchboard's fallback
    (operators when open, the closed message when closed).
    """
    if call.route is Action.FEATURE_CODE:
        return FALLBACK_FEATURE, "s"
    at_switchboard = isinstance(call.state, Queued | Announcing) or (
        isinstance(call.state, Ringing)
        and call.state.purpose in (Purpose.OPERATOR, Purpose.OVERFLOW, Purpose.ON_CALL)
    )
    if call.kind is CallKind.INTERNAL and call.route is Action.EXTENSION and not at_switchboard:
        return FALLBACK_INTERNAL, call.record.called
    return FALLBACK_INBOUND, "s"


def fall_back(call: Call, outcome: Outcome, why: str | None = None) -> Step:
    """Give the caller to the dialplan, never to silence: its fallback routes by the same
    hours. The caller's prompt stops (a playing channel leaves Stasis only when it
    ends), every leg but a connected one is hung up, and the record says so."""
    context, extension = fallback_target(call)
    keep = call.state.leg if isinstance(call.state, Connected) else None
    step = Step(call)
    if why is not None:
        step = step.note(why)
    step = step.then(stop_prompt)
    if call.record.ended_at is None:
        record = replace(step.call.record, outcome=outcome).note("[fallback] sent to the dialplan")
        step = step.record(record)
    return step.do(ToDialplan(context, extension, keep)).set(state=HandedOver())

"""The operator queue, the caller's side (A3, A4, A6); the operators' side is
``services/operator_queue.py``.

    Queued -InQueue(waiting)-> Queued, welcome then ringback (A3: never in front of a free operator)
    Queued -Offered-> Ringing(OPERATOR) -LegAnswered-> Connected
                      Ringing(OPERATOR) -nobody answers-> Queued, in its place by arrival (A4)
    Queued | Ringing(OPERATOR) -TimerFired(OVERFLOW)-> Ringing(OVERFLOW), or HandedOver
                      Ringing(OVERFLOW) -nobody answers-> HandedOver (the fallback)
"""

from __future__ import annotations

from vvk_pbx.domain.announcements import sound
from vvk_pbx.domain.callflow.call import Call, Context, Step
from vvk_pbx.domain.callflow.commands import (
    Enqueue,
    GiveBack,
    HangUpLegs,
    LeaveQueue,
    StartTimer,
)
from vvk_pbx.domain.callflow.events import (
    CallEvent,
    InQueue,
    Offered,
    TimerFired,
)
from vvk_pbx.domain.callflow.flows.common import (
    RINGBACK,
    answer,
    fall_back,
    play,
    ring,
    ringback,
)
from vvk_pbx.domain.callflow.states import Purpose, Queued, Ringing, Timer
from vvk_pbx.domain.calls import Outcome


def start(call: Call, ctx: Context, prefer: str | None = None) -> Step:
    """In line for an operator, with the overflow timer from now (A6): at arrival, after
    0 in the referral menu, after a transfer nobody took, a parked caller's recall
    (for ``prefer`` first)."""
    return enqueue(call, prefer).do(StartTimer(Timer.OVERFLOW, ctx.policy.overflow_after_s))


def enqueue(call: Call, prefer: str | None = None) -> Step:
    """In line by the call's arrival, so a call back in line keeps its place (A4)."""
    external = call.record.direction == "external"
    return Step(call, (Enqueue(external, call.arrived, prefer),)).set(state=Queued())


def decide(call: Call, event: CallEvent, ctx: Context) -> Step | None:
    """The queue's part of a call; None where the event is not its business."""
    state = call.state
    if isinstance(event, Offered):
        if isinstance(state, Queued):
            return _ring_operators(call, event.extensions, ctx, event.picked)
        return Step(call, (GiveBack(event.extensions),))  # moved on meanwhile
    if isinstance(state, Queued):
        if isinstance(event, InQueue):
            if event.waiting:
                return _hold(call)
            # An operator rings at once: a caller we answered (0 in the menu) hears
            # the ring tone; an unanswered one hears the dialplan's ringing.
            return ringback(call) if call.answered and call.playing is None else Step(call)
        if isinstance(event, TimerFired) and event.kind is Timer.OVERFLOW:
            return _overflow(call, ctx)
        return None
    if not isinstance(state, Ringing) or state.purpose not in (Purpose.OPERATOR, Purpose.OVERFLOW):
        return None
    if isinstance(event, TimerFired) and event.kind is Timer.OVERFLOW:
        return _overflow(call, ctx) if state.purpose is Purpose.OPERATOR else Step(call)
    return None


def nobody_answered(call: Call, ctx: Context) -> Step:
    """No operator took the offer (no answer, busy, offline): back in line, in its place
    by arrival, until one does or it overflows (A4, A6). Nobody of the overflow group
    either: the dialplan fallback."""
    assert isinstance(call.state, Ringing)
    if call.state.purpose is Purpose.OVERFLOW:
        return fall_back(call, Outcome.NO_ANSWER, "[A6] no phone answered: dialplan fallback")
    return enqueue(Step(call).note("[A4] no operator answered the offer: back in line").call)


def _hold(call: Call) -> Step:
    """Nobody is free: the welcome prompt, then ringback until an operator answers (A3).
    The answer is a machine's, so the call's rings still count from arrival (A2)."""
    step = Step(call).note("[A3] no operator free: welcome, then ringback").then(answer)
    if step.call.playing is not None:
        return step  # already hears the ring tone (back in line after an offer)
    media = [sound("welcome"), sound("please-hold"), RINGBACK]
    return step.then(lambda c: play(c, media, "welcome"))


def _ring_operators(
    call: Call, extensions: tuple[str, ...], ctx: Context, picked: bool = False
) -> Step:
    policy = ctx.policy
    timeout_s = policy.ring_timeout_s if policy.strategy == "ring-all" else policy.offer_s
    step = Step(call)
    if call.record.ring_started_at is None and call.answered:
        # A waiting caller has heard the welcome: note who is offered the call.
        step = step.note(f"[A4] offered to {', '.join(extensions)}")
    targets = [(f"PJSIP/{ext}", ext) for ext in extensions]
    if picked:
        step = step.note(f"[A3] picked on the console by {', '.join(extensions)}")
    return step.then(lambda c: ring(c, targets, Purpose.OPERATOR, timeout_s, auto_answer=picked))


def _overflow(call: Call, ctx: Context) -> Step:
    """No person answered ``overflow_after_s`` after the call came in line: the operators
    stop ringing and the overflow group rings, or the dialplan takes it (A6)."""
    after_s = ctx.policy.overflow_after_s
    step = Step(call, (LeaveQueue(),))
    if isinstance(call.state, Ringing):
        step = step.do(HangUpLegs(tuple(sorted(call.state.legs))))
    targets = ctx.policy.overflow
    if not targets:
        why = f"[A6] no person answered in {after_s} s, no overflow group: dialplan fallback"
        return step.then(lambda c: fall_back(c, Outcome.NO_ANSWER, why))
    step = step.note(f"[A6] no person answered in {after_s} s: overflow to {', '.join(targets)}")
    if step.call.answered and step.call.playing is None:
        step = step.then(ringback)
    phones = [(f"PJSIP/{ext}", ext) for ext in targets]
    return step.then(lambda c: ring(c, phones, Purpose.OVERFLOW, ctx.policy.ring_timeout_s))

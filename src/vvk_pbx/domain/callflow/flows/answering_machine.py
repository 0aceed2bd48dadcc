"""The central answering machine (H5): the closed message, twice, then goodbye; a digit
connects an on-call service.

    Announcing(1) -PromptDone-> Announcing(2) -PromptDone-> Announcing(3) -PromptDone-> Done
    Announcing(*) -Digit(on-call)-> Ringing(ON_CALL) -LegAnswered-> Connected
                                    Ringing(ON_CALL) -nobody answers-> HandedOver (fallback)
"""

from __future__ import annotations

from vvk_pbx.domain.announcements import answering_machine, sound
from vvk_pbx.domain.callflow.call import Call, Context, Step
from vvk_pbx.domain.callflow.events import (
    CallEvent,
    Digit,
    PromptDone,
)
from vvk_pbx.domain.callflow.flows.common import (
    answer,
    fall_back,
    hang_up,
    play,
    ring,
    ringback,
    stop_prompt,
)
from vvk_pbx.domain.callflow.states import Announcing, Purpose
from vvk_pbx.domain.calls import Outcome


def start(call: Call, ctx: Context) -> Step:
    """The caller hears the central answering machine: answered, then the message (H5)."""
    return announce(call, 1, ctx)


def announce(call: Call, round_: int, ctx: Context) -> Step:
    """Round 1: the message; 2: "I repeat" and the message again; 3: goodbye. The message
    says when the switchboard opens next, from the controller's clock, and reads
    the on-call numbers from the config: nobody records it again when one changes."""
    if round_ == 3:
        media = [sound("goodbye")]
    else:
        calendar = ctx.policy.calendar
        now = ctx.now.astimezone(calendar.tz)
        media = answering_machine(now, calendar.status(now).next_change, ctx.policy.on_call)
        if round_ == 2:
            media = [sound("repeat"), *media]
    return (
        answer(call)
        .then(lambda c: play(c, media, f"closed-{round_}"))
        .set(state=Announcing(round_))
    )


def decide(call: Call, event: CallEvent, ctx: Context) -> Step | None:
    """The answering machine's part of a call; None where the event is not its business."""
    state = call.state
    if isinstance(state, Announcing):
        if isinstance(event, PromptDone):
            if state.round < 3:
                return announce(call, state.round + 1, ctx)
            return hang_up(call, event.at, Outcome.CLOSED, "H5: message played twice; goodbye")
        if isinstance(event, Digit) and event.digit in ctx.policy.on_call:
            return _connect_on_call(call, event.digit, ctx)
        return None
    return None


def nobody_answered(call: Call, ctx: Context) -> Step:
    """The on-call number did not answer: the dialplan fallback, never silence."""
    return fall_back(call, Outcome.NO_ANSWER, "[A6] no phone answered: dialplan fallback")


def _connect_on_call(call: Call, digit: str, ctx: Context) -> Step:
    service = ctx.policy.on_call[digit]
    step = Step(call).note(f"[H5] pressed {digit}: connect {service.name} ({service.number})")
    target = [(f"PJSIP/{service.digits}@trunk", service.digits)]
    timeout_s = ctx.policy.ring_timeout_s
    return (
        step.then(stop_prompt)
        .then(lambda c: ring(c, target, Purpose.ON_CALL, timeout_s))
        .then(ringback)
    )

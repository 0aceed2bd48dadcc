"""A person's phone (A5, R5): ring it, or tell the caller about the referral; the menu.

    Reaching -ReferralLooked(open)-> Ringing(PERSON) -LegAnswered-> Connected
    Reaching -ReferralLooked(referred)-> Menu           ("Anna Berg är på möte ...")
    Ringing(PERSON | COLLEAGUE) -nobody answers-> Menu   ("... svarar inte")
    Menu -1-> Ringing(COLLEAGUE)   -2-> VoicemailPrompt   -0-> the switchboard (queue or H5)
    Menu -PromptDone x3-> Farewell (or the switchboard, for a caller an operator transferred)

Direct calls, internal calls and operators' transfers all reach a person
through ``reach``: the one seam for referrals.
"""

from __future__ import annotations

from collections.abc import Sequence

from vvk_pbx.domain.callflow.call import Call, Context, Step
from vvk_pbx.domain.callflow.commands import FindColleague, LookUpReferral
from vvk_pbx.domain.callflow.events import (
    CallEvent,
    ColleagueFound,
    Digit,
    PromptDone,
    ReferralLooked,
    ServiceFailed,
)
from vvk_pbx.domain.callflow.flows import answering_machine, operator_queue, voicemail
from vvk_pbx.domain.callflow.flows.common import (
    answer,
    fall_back,
    farewell,
    prompt,
    ring,
    ringback,
    stop_prompt,
)
from vvk_pbx.domain.callflow.states import Menu, Purpose, Reaching, Ringing
from vvk_pbx.domain.calls import Outcome


def reach(call: Call, person: str, purpose: Purpose, ctx: Context) -> Step:
    """Reach ``person`` (an extension): staff are looked up for a referral first (R5);
    an operator's extension simply rings, with no menu behind it."""
    if person in ctx.policy.staff:
        return Step(call, (LookUpReferral(person),)).set(state=Reaching(person, purpose))
    targets = [(f"PJSIP/{person}", person)]
    return ring(call, targets, purpose, ctx.policy.ring_timeout_s, person)


def menu(call: Call, greeting: Sequence[str], person: str) -> Step:
    """The greeting (a referral, or "... svarar inte"), then the menu (R5)."""
    step = stop_prompt(call).then(answer).set(state=Menu(person))
    return step.then(lambda c: prompt(c, [*greeting, "referral-menu"], "menu"))


def to_switchboard(call: Call, ctx: Context) -> Step:
    """0 in the menu: the operators if the switchboard is open, else its answering
    machine (R5, H5)."""
    if ctx.policy.calendar.is_open(ctx.now):
        step = Step(call).note("[R5] pressed 0: to the switchboard")
        return step.then(lambda c: operator_queue.start(c, ctx))
    step = Step(call).note("[R5] pressed 0: the switchboard is closed")
    return step.then(lambda c: answering_machine.start(c, ctx))


def decide(call: Call, event: CallEvent, ctx: Context) -> Step | None:
    """A person's part of a call; None where the event is not its business."""
    state = call.state
    if isinstance(state, Reaching):
        return _reaching(call, state, event, ctx)
    if isinstance(state, Menu):
        return _menu(call, state, event, ctx)
    return None


def not_answered(call: Call, ctx: Context) -> Step:
    """Nobody answered the person's (or the colleague's) phone: the menu, without a
    referral (R5); for an operator's extension, the dialplan fallback."""
    assert isinstance(call.state, Ringing)
    person = call.state.person
    if person is None or person not in ctx.policy.staff:
        return fall_back(call, Outcome.NO_ANSWER, "[A6] no phone answered: dialplan fallback")
    if call.state.purpose is Purpose.COLLEAGUE:
        step = Step(call).note("[R5] the colleague did not answer: the menu")
        return step.then(lambda c: menu(c, ["no-colleague"], person))
    step = Step(call).note(f"[R5] {person} did not answer: the menu")
    return step.then(lambda c: menu(c, [f"name-{person}", "not-answering"], person))


def _reaching(call: Call, state: Reaching, event: CallEvent, ctx: Context) -> Step | None:
    person, purpose = state.person, state.purpose
    if isinstance(event, ReferralLooked):
        if event.until is not None:
            until = event.until.astimezone(ctx.policy.tz).isoformat()
            step = Step(call).note(f"[R5] {person} is referred ({event.reason}) until {until}")
            return step.then(lambda c: menu(c, event.greeting, person))
        return ring(
            call, [(f"PJSIP/{person}", person)], purpose, ctx.policy.person_timeout_s, person
        )
    if isinstance(event, ServiceFailed):
        # The referral cannot be known: ringing the phone beats leaving the caller.
        step = Step(call).note(f"[R5] the referral store failed ({event.detail}): ring {person}")
        targets = [(f"PJSIP/{person}", person)]
        return step.then(lambda c: ring(c, targets, purpose, ctx.policy.person_timeout_s, person))
    return None


def _menu(call: Call, state: Menu, event: CallEvent, ctx: Context) -> Step | None:
    person = state.person
    if isinstance(event, Digit) and event.digit in ("0", "1", "2"):
        step = stop_prompt(call)
        if event.digit == "1":
            return step.do(FindColleague(person))
        if event.digit == "2":
            return step.then(lambda c: voicemail.start(c, person))
        return step.then(lambda c: to_switchboard(c, ctx))
    if isinstance(event, ServiceFailed):
        step = Step(call).note(f"[A5] pressed 1: the referral store failed ({event.detail})")
        return step.then(lambda c: prompt(c, ["no-colleague", "referral-menu"], "menu"))
    if isinstance(event, ColleagueFound):
        colleague = event.colleague
        if colleague is None:
            step = Step(call).note(f"[A5] pressed 1: no colleague of {person} free")
            return step.then(lambda c: prompt(c, ["no-colleague", "referral-menu"], "menu"))
        step = Step(call).note(f"[A5] pressed 1: colleague {colleague}")
        targets = [(f"PJSIP/{colleague}", colleague)]
        timeout_s = ctx.policy.person_timeout_s
        step = step.then(lambda c: ring(c, targets, Purpose.COLLEAGUE, timeout_s, person))
        return step.then(ringback)
    if isinstance(event, PromptDone):
        if state.plays < 2:
            step = Step(call).set(state=Menu(person, state.plays + 1))
            return step.then(lambda c: prompt(c, ["referral-menu"], "menu"))
        if call.record.answered_at is not None and ctx.policy.calendar.is_open(ctx.now):
            # An operator's transfer nobody took, and no choice: back to the
            # switchboard rather than a dropped caller (A6).
            step = Step(call).note("[A6] no choice after a transfer: the switchboard")
            return step.then(lambda c: operator_queue.start(c, ctx))
        return farewell(call, ["goodbye"], Outcome.REFERRED, "R5: no choice made; goodbye")
    return None

"""The mailbox (V1): the PIN, then each message with 1 next, 3 delete, 5 called back.

PinEntry -digits, #-> (OpenMailbox) -MailboxOpened-> Mailbox ... -> Farewell
PinEntry -MailboxRefused(wrong PIN)-> PinEntry again; a third wrong one, or a lock -> Farewell
PinEntry -PromptDone, then no key for pin_wait_s-> Farewell("hej då")
any -ServiceFailed (the ledger is down)-> Farewell("tjänsten är inte tillgänglig")
"""

from __future__ import annotations

from collections.abc import Sequence

from vvk_pbx.domain.announcements import sound
from vvk_pbx.domain.callflow.call import Call, Context, Step
from vvk_pbx.domain.callflow.commands import CancelTimer, MarkMessage, OpenMailbox, StartTimer
from vvk_pbx.domain.callflow.events import (
    CallEvent,
    Digit,
    MailboxOpened,
    MailboxRefused,
    PromptDone,
    ServiceFailed,
    TimerFired,
)
from vvk_pbx.domain.callflow.flows.common import farewell, play, prompt, stop_prompt
from vvk_pbx.domain.callflow.states import Mailbox, PinEntry, Timer
from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.dialcodes import Problem
from vvk_pbx.domain.routing import digits
from vvk_pbx.domain.voicemail import Message, Status

MAX_TRIES = 3  # wrong PINs in one call before it says goodbye (the lock counts across calls)
CHOICES = {"1": None, "3": Status.DELETED, "5": Status.CALLED_BACK}
SAID = {"3": ["voicemail-deleted"], "5": ["voicemail-called-back"]}


def start(call: Call, prompts: Sequence[str]) -> Step:
    """Ask for the PIN (the dial code's prompts end with it)."""
    return prompt(call, prompts, "pin").set(state=PinEntry())


def decide(call: Call, event: CallEvent, ctx: Context) -> Step | None:
    """The mailbox's part of a call; None where the event is not its business."""
    state = call.state
    if isinstance(state, PinEntry):
        return _pin(call, state, event, ctx)
    if isinstance(state, Mailbox):
        if isinstance(event, Digit) and event.digit in CHOICES:
            return _choice(call, state, event.digit)
        if isinstance(event, PromptDone):
            return next_message(call, state.rest)  # no choice: on to the next one
        if isinstance(event, ServiceFailed):
            return _unavailable(call, event)
    return None


def next_message(call: Call, messages: Sequence[Message], first: Sequence[str] = ()) -> Step:
    """Play the next message with the menu, or say there are no more (V1). A message
    played is marked heard."""
    if not messages:
        ending = [*first] if "voicemail-none" in first else [*first, "voicemail-end"]
        return farewell(call, ending, Outcome.FEATURE_CODE, "V1: the mailbox was heard")
    message, rest = messages[0], tuple(messages[1:])
    media = [
        *(sound(name) for name in first),
        sound("voicemail-message"),
        *(sound(f"num-{d}") for d in digits(message.caller)),
        f"recording:{message.recording}",
        sound("voicemail-menu"),
    ]
    step = Step(call, (MarkMessage(message.id, Status.HEARD),)).set(state=Mailbox(message, rest))
    return step.then(lambda c: play(c, media, "message"))


def _pin(call: Call, state: PinEntry, event: CallEvent, ctx: Context) -> Step | None:
    if isinstance(event, Digit):
        if event.digit != "#":
            step = Step(call).set(state=PinEntry((state.digits + event.digit)[-16:], state.tries))
            # Typing has begun: the silence timer is done with.
            return step.do(CancelTimer(Timer.PIN_WAIT)) if not state.digits else step
        pin = state.digits
        step = stop_prompt(call).set(state=PinEntry("", state.tries))
        return step.do(CancelTimer(Timer.PIN_WAIT), OpenMailbox(call.record.caller, pin))
    if isinstance(event, MailboxOpened):
        count = len(event.messages)
        step = Step(call).note(f"[V1] mailbox opened: {count} message(s)")
        return step.then(
            lambda c: next_message(c, event.messages, [] if count else ["voicemail-none"])
        )
    if isinstance(event, MailboxRefused):
        tries = state.tries + 1
        step = Step(call).note(f"[V1] mailbox refused: {event.problem.value}: {event.detail}")
        # In the mailbox nothing was to be saved: a wrong PIN is only "Fel PIN-kod".
        wrong = event.problem is Problem.WRONG_PIN
        error = "voicemail-wrong-pin" if wrong else f"code-error-{event.problem.value}"
        if wrong and tries < MAX_TRIES:
            step = step.set(state=PinEntry("", tries))
            return step.then(lambda c: prompt(c, [error, "voicemail-pin"], "pin"))
        return step.then(
            lambda c: farewell(c, [error], Outcome.FEATURE_CODE, "V1: mailbox refused")
        )
    if isinstance(event, PromptDone) and not state.digits:
        # The PIN prompt ended and nothing was pressed: wait a little, then goodbye.
        return Step(call, (StartTimer(Timer.PIN_WAIT, ctx.policy.pin_wait_s),))
    if isinstance(event, TimerFired) and event.kind is Timer.PIN_WAIT and not state.digits:
        step = Step(call).note("[V1] no keys pressed in pin-entry")
        return step.then(
            lambda c: farewell(c, ["goodbye"], Outcome.FEATURE_CODE, "V1: no PIN was entered")
        )
    if isinstance(event, ServiceFailed):
        return _unavailable(call, event)
    return None


def _choice(call: Call, state: Mailbox, digit: str) -> Step:
    """1 next, 3 delete, 5 called back (V1, V2); a deleted message stays in the ledger."""
    message, status = state.current, CHOICES[digit]
    step = stop_prompt(call)
    if status is not None:
        step = step.do(MarkMessage(message.id, status))
    step = step.note(f"[V1] message {message.id}: pressed {digit}")
    return step.then(lambda c: next_message(c, state.rest, SAID.get(digit, [])))


def _unavailable(call: Call, event: ServiceFailed) -> Step:
    step = Step(call).note(f"[V1] the ledger failed: {event.detail}")
    return step.then(
        lambda c: farewell(
            c, ["fallback-feature-unavailable"], Outcome.FEATURE_CODE, "V1: the ledger failed"
        )
    )

"""The operator's console on a connected call: *parkera* and *koppla med förfrågan* (A3, A5).

    Connected -ParkRequested-> Parked: the operator's phone is hung up, the caller hears the ring tone
    Parked -TimerFired(RECALL)-> Queued, for the operator who parked first (then anyone, A6)
    Parked -Unpark(op)-> Queued, for that operator (the console's pick)

    Connected -ConsultRequested(to)-> Consulting: the operator's leg moves apart, ``to`` rings there
    Consulting -LegAnswered-> Consulting(talking)        the operator and ``to`` talk
    Consulting -ConsultCompleted-> Connected(to)         ``to`` joins the caller, the operator leaves
    Consulting -ConsultCancelled | nobody answers-> Connected(operator)   the caller back
    Consulting -the operator hangs up-> Connected(to) if ``to`` talks, else a blind transfer

The console's requests are checked first (``check_*``, and ``transfer.check``
for a consultation; all raise ``TransferError`` with the HTTP status)
and then posted behind the call's own events; a call that moved on since is
left as it is.
"""

from __future__ import annotations

from vvk_pbx.domain.callflow.call import Call, Context, Step
from vvk_pbx.domain.callflow.commands import (
    CancelTimer,
    CloseConsult,
    HangUpLegs,
    LegSpec,
    MoveLegs,
    Ring,
    StartTimer,
)
from vvk_pbx.domain.callflow.events import (
    CallEvent,
    ConsultCancelled,
    ConsultCompleted,
    ConsultRequested,
    LegAnswered,
    LegFailed,
    LegGone,
    ParkRequested,
    TimerFired,
    Unpark,
)
from vvk_pbx.domain.callflow.flows import operator_queue, person
from vvk_pbx.domain.callflow.flows.common import ringback, stop_prompt
from vvk_pbx.domain.callflow.flows.transfer import TransferError, check
from vvk_pbx.domain.callflow.states import (
    Connected,
    Consulting,
    Parked,
    Purpose,
    Timer,
)


def check_connected(call: Call | None, call_id: str) -> Connected:
    """The call's state if it is connected to a person; raises ``TransferError`` 404/409."""
    if call is None:
        raise TransferError(f"no call {call_id} in progress", 404)
    if not isinstance(call.state, Connected):
        raise TransferError(f"call {call_id} is not connected to anyone now", 409)
    return call.state


def check_consulting(call: Call | None, call_id: str) -> Consulting:
    """The call's consultation; raises ``TransferError`` 404, or 409 when there is none."""
    if call is None:
        raise TransferError(f"no call {call_id} in progress", 404)
    if not isinstance(call.state, Consulting):
        raise TransferError(f"call {call_id} has no consultation going on", 409)
    return call.state


def decide(call: Call, event: CallEvent, ctx: Context) -> Step | None:
    """The console's part of a call; None where the event is not its business."""
    state = call.state
    if isinstance(state, Connected):
        if isinstance(event, ParkRequested):
            return _park(call, state, event, ctx)
        if isinstance(event, ConsultRequested):
            return _consult(call, state, event, ctx)
        return None
    if isinstance(state, Parked):
        if isinstance(event, TimerFired) and event.kind is Timer.RECALL:
            step = Step(call).note(f"[A3] parked too long: recalling {state.by}")
            return step.then(lambda c: operator_queue.start(c, ctx, prefer=state.by))
        if isinstance(event, Unpark):
            step = Step(call, (CancelTimer(Timer.RECALL),))
            step = step.note(f"[A3] taken off park by {event.extension}")
            return step.then(lambda c: operator_queue.start(c, ctx, prefer=event.extension))
        return None
    if isinstance(state, Consulting):
        return _consulting(call, state, event, ctx)
    return None


def _park(call: Call, state: Connected, event: ParkRequested, ctx: Context) -> Step:
    """The operator's phone is hung up; the caller stays in the call's bridge hearing the
    ring tone until the recall (``recall_s``) or a pick."""
    recall_s = ctx.policy.recall_s
    step = Step(call, (HangUpLegs((state.leg,)),)).note(
        f"[A3] parked by {state.who} (asked by {event.asked_by}); recall in {recall_s} s"
    )
    step = step.then(ringback).set(state=Parked(state.who))
    return step.do(StartTimer(Timer.RECALL, recall_s))


def _consult(call: Call, state: Connected, event: ConsultRequested, ctx: Context) -> Step:
    try:
        check(call, call.id, event.to, ctx.policy)
    except TransferError:
        return Step(call)  # moved on since the API checked it
    leg = LegSpec(
        f"{call.id}:{Purpose.CONSULT.value}{call.legs + 1}", f"PJSIP/{event.to}", event.to
    )
    step = Step(call).note(f"[A5] {state.who} asks {event.to} before transferring")
    if event.asked_by != state.who:
        step = step.note(f"[S1] the consultation was asked for by {event.asked_by}")
    step = step.do(MoveLegs((state.leg,), consult=True)).then(ringback)
    step = step.do(Ring((leg,), Purpose.CONSULT, ctx.policy.ring_timeout_s, consult=True))
    return step.set(
        legs=call.legs + 1,
        state=Consulting(state.leg, state.who, event.to, frozenset((leg.id,))),
    )


def _consulting(call: Call, state: Consulting, event: CallEvent, ctx: Context) -> Step | None:
    if isinstance(event, LegAnswered) and event.leg in state.legs:
        step = Step(call).note(f"[A5] {event.who} answered {state.who}'s question")
        return step.set(state=Consulting(state.leg, state.who, state.to, frozenset(), event.leg))
    if isinstance(event, LegFailed | LegGone) and (
        event.leg in state.legs or event.leg == state.talking
    ):
        left = state.legs - {event.leg}
        if left or (state.talking is not None and event.leg != state.talking):
            return Step(call).set(
                state=Consulting(state.leg, state.who, state.to, left, state.talking)
            )
        step = Step(call).note(
            f"[A5] {state.to} is not on the line: the caller back to {state.who}"
        )
        return _take_back(step.call, state)
    if isinstance(event, ConsultCancelled):
        step = Step(call, (HangUpLegs(_target_legs(state)),))
        step = step.note(f"[A5] {event.asked_by} took the caller back from {state.to}")
        return step.then(lambda c: _take_back(c, state))
    if isinstance(event, ConsultCompleted):
        return _complete(call, state, f"completed by {event.asked_by}", ctx, operator_up=True)
    if isinstance(event, LegGone) and event.leg == state.leg:
        return _complete(call, state, f"{state.who} hung up", ctx, operator_up=False)
    return None


def _target_legs(state: Consulting) -> tuple[str, ...]:
    return tuple(sorted(state.legs | ({state.talking} if state.talking else set())))


def _take_back(call: Call, state: Consulting) -> Step:
    step = Step(call, (MoveLegs((state.leg,), consult=False), CloseConsult()))
    return step.then(stop_prompt).set(state=Connected(state.leg, state.who))


def _complete(call: Call, state: Consulting, why: str, ctx: Context, operator_up: bool) -> Step:
    """The caller goes to the person consulted: at once if they talk, else as a blind
    transfer to them (their phone rings for the caller, with their menu if referred).
    The operator's leg is hung up unless it is gone already."""
    hang_up = (state.leg,) if operator_up else ()
    if state.talking is not None:
        step = Step(call).note(
            f"[A5] transferred by {state.who} to {state.to} after asking ({why})"
        )
        step = step.do(MoveLegs((state.talking,), consult=False), CloseConsult())
        if hang_up:
            step = step.do(HangUpLegs(hang_up))
        return step.then(stop_prompt).set(state=Connected(state.talking, state.to))
    step = Step(call).note(f"[A5] transferred by {state.who} to {state.to} unanswered ({why})")
    step = step.do(HangUpLegs((*hang_up, *sorted(state.legs))), CloseConsult())
    return step.then(lambda c: person.reach(c, state.to, Purpose.TRANSFER, ctx))

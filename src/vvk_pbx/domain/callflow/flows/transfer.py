"""Blind transfer (A5): the person who has the caller hands them to an extension.

    Connected -TransferRequested-> Ringing(TRANSFER), or Reaching/Menu for a referred person
    Ringing(TRANSFER) -LegAnswered-> Connected       (the first answer stays the call's measure, A1)
    Ringing(TRANSFER) -nobody answers-> the person's menu (R5), or back in line for an operator (A6)
    Connected -LegGone(its leg)-> Done: the caller is hung up

A phone asks with SIP REFER (our legs hand REFER to ARI), the operator's API
with ``POST /calls/{id}/transfer``; both come here as ``TransferRequested``.
"""

from __future__ import annotations

from vvk_pbx.domain.callflow.call import Call, Context, Policy, Step
from vvk_pbx.domain.callflow.commands import HangUpLegs, ReportTransfer
from vvk_pbx.domain.callflow.events import CallEvent, LegAnswered, LegGone, TransferRequested
from vvk_pbx.domain.callflow.flows import operator_queue, person
from vvk_pbx.domain.callflow.flows.common import hang_up, ringback
from vvk_pbx.domain.callflow.states import Connected, Done, HandedOver, Purpose, Ringing

ANSWERED, DECLINED = "channel_answered", "channel_declined"


class TransferError(Exception):
    """The call cannot be transferred now: ``reason`` says why, ``status`` is the HTTP one."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def check(call: Call | None, call_id: str, to: str, policy: Policy) -> None:
    """Raise ``TransferError`` unless the call can be transferred to ``to`` now: 404 no
    such call in progress, 409 not connected or already with ``to``, 422 ``to`` is no
    extension in the directory."""
    if call is None or isinstance(call.state, Done | HandedOver):
        raise TransferError(f"no call {call_id} in progress", 404)
    if not isinstance(call.state, Connected):
        raise TransferError(f"call {call_id} is not connected to anyone to transfer it", 409)
    if to not in policy.numbering.extensions:
        raise TransferError(f"{to!r} is not an extension in the directory", 422)
    if call.state.who == to:
        raise TransferError(f"call {call_id} is already connected to {to}", 409)


def decide(call: Call, event: CallEvent, ctx: Context) -> Step | None:
    """The transfer's part of a call; None where the event is not its business."""
    state = call.state
    if isinstance(event, TransferRequested):
        return _requested(call, event, ctx)
    if isinstance(state, Connected):
        if isinstance(event, LegGone) and event.leg == state.leg:
            return hang_up(call, event.at, None, "the answering phone hung up")
        if isinstance(event, LegAnswered) and event.leg != state.leg:
            # Another phone answered too late: it lost the race.
            return Step(call, (HangUpLegs((event.leg,), status="LOST_RACE"),))
    return None


def nobody_answered(call: Call, ctx: Context) -> Step:
    """The transfer's target did not answer: a person's menu (R5), or back in line for
    the operators, with a new overflow timer (A6)."""
    assert isinstance(call.state, Ringing)
    if call.state.person in ctx.policy.staff:
        return person.not_answered(call, ctx)
    step = Step(call).note("[A6] the transfer was not answered: back to the switchboard")
    return step.then(lambda c: operator_queue.start(c, ctx))


def _requested(call: Call, event: TransferRequested, ctx: Context) -> Step:
    state = call.state
    by = event.by
    if by is not None:  # a phone's REFER: only the phone that has the caller may
        if not isinstance(state, Connected) or by != state.leg or event.to == state.who:
            return Step(call, (ReportTransfer(by, DECLINED),))
        if event.to not in ctx.policy.numbering.extensions:
            step = Step(call).note(f"[A5] transfer to {event.to!r} refused: not an extension")
            return step.do(ReportTransfer(by, DECLINED))
    try:
        check(call, call.id, event.to, ctx.policy)
    except TransferError:
        return Step(call)  # the call moved on since the API checked it
    assert isinstance(state, Connected)
    step = Step(call).note(f"[A5] transferred by {state.who} to {event.to} via {event.via}")
    if event.asked_by is not None:
        step = step.note(f"[S1] the transfer was asked for by {event.asked_by}")
    if by is not None:
        step = step.do(ReportTransfer(by, ANSWERED))
    step = step.do(HangUpLegs((state.leg,)))
    step = step.then(ringback)
    return step.then(lambda c: person.reach(c, event.to, Purpose.TRANSFER, ctx))

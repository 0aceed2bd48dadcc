"""Staff dial codes (R2, R4): answer, carry the code out, read it back or say why not.

    ReadingCode -CodeDone-> Farewell(the read-back)      or PinEntry (*98#, the mailbox)
    ReadingCode -ServiceFailed-> Farewell("tjänsten är inte tillgänglig"); nothing was stored

What a code means and whether it may be carried out is the referral service's
(``services/referrals.py``, ``domain/dialcodes.py``); this flow is the phone call.
"""

from __future__ import annotations

from vvk_pbx.domain.callflow.call import Call, Context, Step
from vvk_pbx.domain.callflow.commands import CarryOutCode
from vvk_pbx.domain.callflow.events import CallEvent, CodeDone, ServiceFailed
from vvk_pbx.domain.callflow.flows import mailbox
from vvk_pbx.domain.callflow.flows.common import answer, farewell
from vvk_pbx.domain.callflow.states import ReadingCode
from vvk_pbx.domain.calls import Outcome


def start(call: Call, dialed: str) -> Step:
    """A staff phone dialed a code: answer it and carry the code out."""
    step = answer(call).set(state=ReadingCode(dialed))
    return step.do(CarryOutCode(call.record.caller, dialed))


def decide(call: Call, event: CallEvent, ctx: Context) -> Step | None:
    """The dial code's part of a call; None where the event is not its business."""
    if not isinstance(call.state, ReadingCode):
        return None
    if isinstance(event, CodeDone):
        step = Step(call).note(event.note)
        if event.then_pin:
            return step.then(lambda c: mailbox.start(c, event.prompts))
        return step.then(
            lambda c: farewell(c, event.prompts, Outcome.FEATURE_CODE, "the code was read back")
        )
    if isinstance(event, ServiceFailed):
        step = Step(call).note(f"[R2] the referral store failed: {event.detail}")
        return step.then(
            lambda c: farewell(
                c, ["fallback-feature-unavailable"], Outcome.FEATURE_CODE, "R2: the store failed"
            )
        )
    return None

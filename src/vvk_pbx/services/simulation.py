"""``vvk-pbx simulate``: what happens to a call at a given time, by the same route, the same
flows and the same referral lookup as a real call, with no Asterisk and nothing stored (O1).

The call arrives as the controller would take it (``domain.callflow.decide``);
the services it asks answer from the database, read-only (a dial code is
carried out as a dry run); the commands become words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vvk_pbx.domain.callflow import commands as cmd
from vvk_pbx.domain.callflow.call import Context, Policy
from vvk_pbx.domain.callflow.decide import arrive, decide
from vvk_pbx.domain.callflow.events import (
    Arrived,
    CallEvent,
    CodeDone,
    InQueue,
    ReferralLooked,
)
from vvk_pbx.domain.routing import CallKind, digits, route
from vvk_pbx.services.referrals import ReferralService

# A caller as ops type one: a phone number or an extension (digits, + - and spaces).
CALLER = re.compile(r"^\+?[0-9][0-9 -]*$")
MAX_STEPS = 8  # arrival, then what the services answered: a handful at most


@dataclass(frozen=True)
class Simulation:
    """The call: its kind, the route's action and target, the trace (O1), and what the
    caller hears and what rings, in order."""

    at: datetime
    kind: CallKind
    caller: str
    action: str
    target: str | None
    external: bool
    trace: tuple[str, ...]
    happens: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind.value,
            "action": self.action,
            "target": self.target,
            "external": self.external,
            "trace": [_rule(line) for line in self.trace],
            "happens": self.happens,
        }


def caller_kind(caller: str, dialed: str, policy: Policy) -> tuple[str, CallKind]:
    """A caller that is an extension makes an internal call (a dial code if the dialed
    string starts with * or #); any other comes from the trunk. Raises ``ValueError``
    for a caller that is no phone number or extension."""
    if not CALLER.fullmatch(caller.strip()):
        raise ValueError(f"{caller!r} is no phone number or extension (digits, + - and spaces)")
    if digits(caller) in policy.numbering.extensions:
        kind = CallKind.FEATURE if dialed[:1] in ("*", "#") else CallKind.INTERNAL
        return digits(caller), kind
    return caller.strip(), CallKind.INBOUND


async def simulate(
    policy: Policy, referrals: ReferralService | None, caller: str, dialed: str, at: datetime
) -> Simulation:
    """Simulate one call arriving at the aware ``at``. ``referrals`` None: no database, so no
    referral is known (said so). Raises ``ValueError`` for a bad caller and
    ``UnsupportedYearError`` for a time beyond the holiday data."""
    caller, kind = caller_kind(caller, dialed, policy)
    ctx = Context(at, policy)
    step = arrive("simulated", Arrived(kind, caller, dialed, at), ctx)
    happens: list[str] = []
    for _ in range(MAX_STEPS):
        answers: list[CallEvent] = []
        for command in step.commands:
            happens.append(_say(command))
            answer = await _answer(command, referrals, at, happens)
            if answer is not None:
                answers.append(answer)
        if not answers:
            break
        for event in answers:
            step = decide(step.call, event, ctx)
    decision = route(kind, caller, dialed, at, policy.calendar, policy.numbering)
    return Simulation(
        at,
        kind,
        caller,
        decision.action.value,
        decision.target,
        decision.external,
        step.call.record.trace,
        [line for line in happens if line],
    )


async def _answer(
    command: cmd.Command, referrals: ReferralService | None, at: datetime, happens: list[str]
) -> CallEvent | None:
    """What the service a query asks would answer, read-only."""
    if isinstance(command, cmd.Enqueue):
        happens.append(
            "a free operator rings at once; if all are busy: welcome, then ringback (A3)"
        )
        return InQueue(waiting=False)
    if isinstance(command, cmd.LookUpReferral):
        if referrals is None:
            happens.append("no call log database here: no referral is known")
            return ReferralLooked(None, None, ())
        referral, greeting = await referrals.greeting(command.person, at)
        if referral is None:
            happens.append(f"{command.person} has no referral in force: the phone rings")
            return ReferralLooked(None, None, tuple(greeting))
        reason = referrals.reasons.get(referral.reason)
        happens.append(f"{command.person} is referred: the phone does not ring")
        return ReferralLooked(reason.name if reason else None, referral.end, tuple(greeting))
    if isinstance(command, cmd.CarryOutCode):
        if referrals is None:
            happens.append("no call log database here: the code is not checked against it")
            return None
        reply = await referrals.dial_code(command.extension, command.dialed, at, dry_run=True)
        happens.append(reply.note + ("" if reply.accepted else " (nothing would be stored)"))
        return CodeDone(tuple(reply.prompts), reply.note, reply.then_pin)
    return None


def _say(command: cmd.Command) -> str:
    match command:
        case cmd.Answer():
            return "answers the call (a machine's answer: A2)"
        case cmd.Play(media=media):
            return "plays: " + ", ".join(m.removeprefix("sound:vvk/") for m in media)
        case cmd.Ring(legs=legs, purpose=purpose, timeout_s=timeout_s):
            who = ", ".join(leg.who for leg in legs)
            return f"rings {who} ({purpose.name.lower().replace('_', '-')}, {timeout_s} s)"
        case cmd.StartTimer(kind=kind, delay_s=delay_s):
            return f"timer {kind.value}: {delay_s:.0f} s"
        case cmd.ToDialplan(context=context, extension=extension):
            return f"to the dialplan: {context},{extension}"
        case cmd.CarryOutCode(dialed=dialed):
            return f"the referral service is given {dialed} (simulate stores nothing)"
        case cmd.LookUpReferral(person=person):
            return f"looks up {person}'s referral"
    return ""


def _rule(line: str) -> dict[str, str]:
    found = re.match(r"^\[([^\]]+)\] (.*)$", line)
    return {"rule": found[1], "decision": found[2]} if found else {"rule": "", "decision": line}

"""Calls in progress: the controller (translate, decide, act), the registry, the executor, timers.

``wire`` builds the four with the operator queue around one clock; the
caller connects ``controller.handle``/``key`` to an ordered dispatcher and
sets ``controller.submit`` to its ``submit``.
"""

from __future__ import annotations

from vvk_pbx.config.model import Settings
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.callflow.events import Offered
from vvk_pbx.services.calls.controller import CallController, Posted
from vvk_pbx.services.calls.executor import AriPort, Executor
from vvk_pbx.services.calls.registry import Registry
from vvk_pbx.services.calls.timers import LoopTimers, Timers
from vvk_pbx.services.clock import Clock
from vvk_pbx.services.operator_queue import OperatorQueue
from vvk_pbx.services.recorder import Recorder
from vvk_pbx.services.referrals import ReferralService


def wire(
    ari: AriPort,
    settings: Settings,
    calendar: Calendar,
    referrals: ReferralService,
    recorder: Recorder,
    clock: Clock,
    timers: Timers | None = None,
) -> CallController:
    """The controller with its registry, executor and operator queue, on ``clock`` and
    ``timers`` (the event loop's unless given: tests give a fake one)."""
    timers = timers if timers is not None else LoopTimers()
    registry = Registry()
    queue = OperatorQueue(
        (o.extension for o in settings.operators),
        settings.queue.strategy,
        settings.queue.internal_delay_s,
        clock,
        timers,
        lambda call_id, extensions, picked: controller.post(call_id, Offered(extensions, picked)),
    )
    executor = Executor(
        ari, registry, queue, referrals, recorder, timers, clock, lambda c, e: controller.post(c, e)
    )
    controller = CallController(
        registry, executor, queue, recorder, settings.call_policy(calendar), clock
    )
    return controller


__all__ = ["CallController", "Posted", "wire"]

"""``/metrics`` in Prometheus's format (O1, F1): what ops graph and alert on.

One registry of our own (not the process-wide default), built once by
``bootstrap``. Counters and histograms are told by the controller's hooks (a
call that ended, a call-log write); gauges read the live objects when scraped.
Metrics never raise into a call: the hooks only count.

- ``vvk_calls_total{outcome}``: calls that ended, by outcome;
- ``vvk_answer_seconds``: arrival to a person's answer where rings count
  (A1), buckets at the ring boundaries (``ring.cycle_ms``);
- ``vvk_answered_within_goal_total`` / ``vvk_goal_counted_total``: the share
  within the four-ring goal is their ratio (abandoned calls count against);
- ``vvk_queue_waiting``, ``vvk_queue_longest_wait_seconds``;
- ``vvk_ari_connected`` (0/1), ``vvk_ari_connects_total``;
- ``vvk_event_loop_lag_seconds``: how late a 0.5 s sleep wakes up;
- ``vvk_calllog_write_seconds`` (a batch) and ``vvk_calllog_pending`` (rows).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from vvk_pbx.domain.calls import CallRecord, Outcome

LAG_PROBE_S = 0.5
RING_BUCKETS = 8  # answer-time buckets: the first eight ring boundaries, then +Inf


class Metrics:
    """The controller's metrics in ``registry``; ``watch`` wires the gauges."""

    def __init__(self, cycle_ms: int, goal_rings: int) -> None:
        self.registry = CollectorRegistry()
        self.goal_rings = goal_rings
        self.calls = Counter(
            "vvk_calls", "Calls that ended, by outcome", ["outcome"], registry=self.registry
        )
        for outcome in Outcome:
            if outcome is not Outcome.IN_PROGRESS:
                self.calls.labels(outcome.value)  # every series from the start, at 0
        buckets = [cycle_ms * n / 1000 for n in range(1, RING_BUCKETS + 1)]
        self.answer = Histogram(
            "vvk_answer_seconds",
            "From arrival to a person's answer, where rings count (A1)",
            buckets=buckets,
            registry=self.registry,
        )
        self.within_goal = Counter(
            "vvk_answered_within_goal",
            f"Calls answered within {goal_rings} rings",
            registry=self.registry,
        )
        self.counted = Counter(
            "vvk_goal_counted",
            "Calls the ring goal applies to (rings counted, or abandoned)",
            registry=self.registry,
        )
        self.write = Histogram(
            "vvk_calllog_write_seconds", "One call-log batch written", registry=self.registry
        )
        self.lag = Gauge(
            "vvk_event_loop_lag_seconds",
            f"How late a {LAG_PROBE_S} s sleep of the event loop woke up",
            registry=self.registry,
        )

    def call_ended(self, record: CallRecord) -> None:
        """A call's record ended (once per call)."""
        self.calls.labels(record.outcome.value).inc()
        if record.within_goal is not None and record.answered_at is not None:
            self.answer.observe((record.answered_at - record.arrived_at).total_seconds())
            self.counted.inc()
            if record.within_goal:
                self.within_goal.inc()
        elif record.outcome is Outcome.ABANDONED:
            self.counted.inc()

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge read when scraped."""
        Gauge(name, help_text, registry=self.registry).set_function(read)

    async def watch_loop(self) -> None:
        """Measure the event loop's lag until cancelled."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LAG_PROBE_S)
            self.lag.set(max(0.0, time.perf_counter() - started - LAG_PROBE_S))

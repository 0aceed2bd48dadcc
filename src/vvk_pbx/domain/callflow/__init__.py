"""Call flows as explicit state machines: translate, decide, act.

An ARI event becomes a call event (``events``); ``decide.decide(call, event,
context)`` returns the call's new snapshot and the ``commands`` to carry out,
with no I/O and no clock of its own; ``services/calls`` runs them against
ARI. Each feature has one module in ``flows/`` (``states`` lists which owns
what). See ``docs/decisions.md`` ("Call flows").
"""

"""Directory search (D1, R6) and the follow-up summary the wallboard shows (A1)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.unit.flowtable import OPEN, call
from vvk_pbx.domain.callflow.states import Queued
from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.directory import fold, matches
from vvk_pbx.domain.followup import summarise


def test_folding_ignores_case_and_diacritics() -> None:
    assert fold("Åsa ÖBERG") == "asa oberg"
    assert fold("Sjöberg-Ängström") == "sjoberg-angstrom"
    assert fold("Élodie Müller") == "elodie muller"


def test_every_typed_word_must_begin_a_word() -> None:
    fields = ("Åsa Öberg", "bygg-miljo", "Bygg och miljö", "Miljöstrateg", "1304")
    for query in ("asa", "ÅSA", "ober", "asa ob", "miljo", "milj", "130", ""):
        assert matches(query, fields), query
    for query in ("sa", "asa x", "1305", "berg"):
        assert not matches(query, fields), query


def test_todays_summary_counts_the_goal_over_answered_and_abandoned() -> None:
    base = call(Queued()).record
    quick = base.answered(OPEN + timedelta(seconds=10), "1001", 6000, 4)
    late = base.answered(OPEN + timedelta(seconds=30), "1001", 6000, 4)
    gave_up = base.ended(OPEN + timedelta(seconds=40), Outcome.ABANDONED)
    closed = replace(base, outcome=Outcome.CLOSED)
    summary = summarise([quick, quick, quick, late, gave_up, closed])
    assert (summary.calls, summary.answered, summary.counted) == (6, 4, 5)
    assert (summary.within_goal, summary.abandoned, summary.share) == (3, 1, 0.6)
    assert summarise([]).share is None

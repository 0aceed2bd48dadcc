"""A person's phone and the referral menu (A5, R5): (state, event) -> (state, commands)."""

from __future__ import annotations

from dataclasses import replace

from tests.unit.flowtable import AT, CLOSED, OPEN, Row, call, ctx, rows, sounds, step
from vvk_pbx.domain.callflow.commands import (
    Answer,
    Command,
    Enqueue,
    FindColleague,
    LegSpec,
    LookUpReferral,
    Play,
    Ring,
    StartTimer,
    StopPrompt,
    ToDialplan,
)
from vvk_pbx.domain.callflow.decide import arrive
from vvk_pbx.domain.callflow.events import (
    Arrived,
    CallEvent,
    ColleagueFound,
    Digit,
    LegAnswered,
    LegGone,
    PromptDone,
    ReferralLooked,
    ServiceFailed,
)
from vvk_pbx.domain.callflow.flows.common import RINGBACK
from vvk_pbx.domain.callflow.states import (
    Announcing,
    Farewell,
    HandedOver,
    Menu,
    Purpose,
    Queued,
    Reaching,
    Ringing,
    State,
    Timer,
    VoicemailPrompt,
)
from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.routing import Action, CallKind

PERSON = Action.EXTENSION
GREETING = ("name-1101", "reason-2", "and-back", "today", "at-clock", "num-14", "num-30")
MENU_AFTER_GREETING = Play(sounds(*GREETING, "referral-menu"), "menu")
MENU = Play(sounds("referral-menu"), "menu")
ANNA = LegSpec("c:ext1", "PJSIP/1101", "1101")
MARIA = LegSpec("c:col1", "PJSIP/1103", "1103")
IN_MENU = {"answered": True, "playing": "menu"}
BACK = OPEN.replace(hour=14, minute=30)

TABLE: list[Row] = [
    (
        "the phone is open: it rings four rings (R5)",
        Reaching("1101", Purpose.PERSON),
        {},
        ReferralLooked(None, None, ("name-1101", "not-answering")),
        Ringing(Purpose.PERSON, frozenset({"c:ext1"}), "1101"),
        (Ring((ANNA,), Purpose.PERSON, 24),),
    ),
    (
        "the person is referred: the phone does not ring; the referral, then the menu",
        Reaching("1101", Purpose.PERSON),
        {},
        ReferralLooked("mote", BACK, GREETING),
        Menu("1101"),
        (Answer(), MENU_AFTER_GREETING),
    ),
    (
        "the referral store fails: the phone rings rather than leave the caller",
        Reaching("1101", Purpose.PERSON),
        {},
        ServiceFailed("database is locked"),
        Ringing(Purpose.PERSON, frozenset({"c:ext1"}), "1101"),
        (Ring((ANNA,), Purpose.PERSON, 24),),
    ),
    (
        "1: the prompt stops and a free colleague is looked for",
        Menu("1101"),
        IN_MENU,
        Digit("1"),
        Menu("1101"),
        (StopPrompt(), FindColleague("1101")),
    ),
    (
        "a colleague is free: they ring, the caller hears the ring tone (A5)",
        Menu("1101"),
        {"answered": True},
        ColleagueFound("1103"),
        Ringing(Purpose.COLLEAGUE, frozenset({"c:col1"}), "1101"),
        (Ring((MARIA,), Purpose.COLLEAGUE, 24), Play((RINGBACK,), "ringback")),
    ),
    (
        "no colleague is free: said so, and the menu again",
        Menu("1101"),
        {"answered": True},
        ColleagueFound(None),
        Menu("1101"),
        (Play(sounds("no-colleague", "referral-menu"), "menu"),),
    ),
    (
        "2: voicemail",
        Menu("1101"),
        IN_MENU,
        Digit("2"),
        VoicemailPrompt("1101"),
        (StopPrompt(), Play(sounds("voicemail-leave"), "voicemail-leave")),
    ),
    (
        "0 while open: in line for the operators, with the overflow timer",
        Menu("1101"),
        IN_MENU,
        Digit("0"),
        Queued(),
        (StopPrompt(), Enqueue(True, OPEN), StartTimer(Timer.OVERFLOW, 60)),
    ),
    (
        "a key outside the menu changes nothing",
        Menu("1101"),
        IN_MENU,
        Digit("5"),
        Menu("1101"),
        (),
    ),
    (
        "the menu ends: it plays again",
        Menu("1101", 0),
        IN_MENU,
        PromptDone("menu", AT),
        Menu("1101", 1),
        (MENU,),
    ),
    (
        "the third time with no choice: goodbye (R5)",
        Menu("1101", 2),
        IN_MENU,
        PromptDone("menu", AT),
        Farewell(Outcome.REFERRED, "R5: no choice made; goodbye"),
        (Play(sounds("goodbye"), "farewell"),),
    ),
    (
        "nobody answers the person's phone: the menu, with no referral to tell",
        Ringing(Purpose.PERSON, frozenset({"c:ext1"}), "1101"),
        {"bridged": True, "legs": 1},
        LegGone("c:ext1", AT),
        Menu("1101"),
        (Answer(), Play(sounds("name-1101", "not-answering", "referral-menu"), "menu")),
    ),
    (
        "nobody answers the colleague's phone: said so, and the menu",
        Ringing(Purpose.COLLEAGUE, frozenset({"c:col1"}), "1101"),
        {"answered": True, "playing": "ringback", "bridged": True, "legs": 1},
        LegGone("c:col1", AT),
        Menu("1101"),
        (StopPrompt(), Play(sounds("no-colleague", "referral-menu"), "menu")),
    ),
    (
        "an operator's extension rung directly does not answer: the fallback",
        Ringing(Purpose.PERSON, frozenset({"c:ext1"}), "1001"),
        {"bridged": True, "legs": 1},
        LegGone("c:ext1", AT),
        HandedOver(),
        (ToDialplan("vvk-fallback-inbound", "s", None),),
    ),
]


@rows(TABLE)
def test_person(
    what: str,
    state: State,
    fields: dict[str, object],
    event: CallEvent,
    after: State,
    commands: tuple[Command, ...],
) -> None:
    assert step(call(state, route=PERSON, **fields), event)[:2] == (after, commands)


def test_a_direct_call_looks_the_person_up_first() -> None:
    result = arrive("c", Arrived(CallKind.INBOUND, "0701234567", "0123191101", OPEN), ctx())
    assert (result.call.state, result.commands) == (
        Reaching("1101", Purpose.PERSON),
        (LookUpReferral("1101"),),
    )


def test_zero_when_closed_is_the_answering_machine_played_twice_in_full() -> None:
    # The menu's replays are the menu's: the closed message still has both its rounds (H5).
    menu = call(Menu("1101", 2), route=PERSON, **IN_MENU)
    state, commands, after = step(menu, Digit("0"), CLOSED)
    assert state == Announcing(1)
    [first] = [c for c in commands if isinstance(c, Play)]
    assert first.media[:2] == sounds("welcome", "closed")
    state, commands, after = step(after, PromptDone("closed-1", AT), CLOSED)
    [again] = [c for c in commands if isinstance(c, Play)]
    assert state == Announcing(2) and again.media[:2] == sounds("repeat", "welcome")
    assert step(after, PromptDone("closed-2", AT), CLOSED)[0] == Announcing(3)


def test_a_transferred_caller_who_chooses_nothing_goes_back_in_line() -> None:
    menu = call(Menu("1101", 2), route=PERSON, **IN_MENU)
    answered = replace(menu, record=menu.record.answered(AT, "1001", 6000, 4))
    state, commands, after = step(answered, PromptDone("menu", AT))
    assert (state, commands) == (Queued(), (Enqueue(True, OPEN), StartTimer(Timer.OVERFLOW, 60)))
    assert after.record.trace[-1] == "[A6] no choice after a transfer: the switchboard"


def test_a_colleague_answering_is_the_outcome() -> None:
    ringing = call(Ringing(Purpose.COLLEAGUE, frozenset({"c:col1"}), "1101"), route=PERSON, legs=1)
    _, _, after = step(ringing, LegAnswered("c:col1", "1103", AT))
    assert (after.record.outcome, after.record.answered_by, after.record.rings) == (
        Outcome.COLLEAGUE,
        "1103",
        None,
    )

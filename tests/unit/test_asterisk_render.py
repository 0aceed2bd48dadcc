"""Asterisk's config and the fallback dialplan, rendered from the ops config (no Asterisk needed)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest

from tests.conftest import STHLM
from vvk_pbx.asterisk.fallback import closed_message, render_fallback, timespec
from vvk_pbx.asterisk.render import ChrootPaths, render_config
from vvk_pbx.config import Settings
from vvk_pbx.config.model import ClosedDate, Overrides, Switch
from vvk_pbx.domain.calendar import Calendar, TimeRange

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=STHLM)
PATHS = ChrootPaths()


@pytest.fixture
def files(sample_settings: Settings, sample_calendar: Calendar) -> dict[str, str]:
    return render_config(sample_settings, sample_calendar, NOW, "s3cret-pw", PATHS)


@pytest.mark.parametrize(
    ("start", "end", "spec"),
    [
        ((8, 0), (12, 0), "08:00-11:59"),
        ((13, 0), (16, 0), "13:00-15:59"),
        ((9, 30), (9, 31), "09:30-09:30"),
    ],
)
def test_timespec_ends_a_minute_early_because_gotoiftime_includes_it(
    start: tuple[int, int], end: tuple[int, int], spec: str
) -> None:
    assert timespec(TimeRange(time(*start), time(*end))) == spec


def test_every_extension_gets_an_endpoint_with_its_static_contact(
    files: dict[str, str], sample_settings: Settings
) -> None:
    pjsip = files["pjsip.conf"]
    for ext, name in sample_settings.extensions():
        assert f'[{ext}](phone)\naors = {ext}\ncallerid = "{name}" <{ext}>' in pjsip
        assert f"contact = sip:{ext}@127.0.0.1:{int(ext) + 4100}" in pjsip
    assert len(re.findall(r"^\[\d+\]\(phone\)$", pjsip, re.M)) == 14
    assert "match = 127.0.0.2" in pjsip
    assert "bind = 127.0.0.1:5060" in pjsip


def test_registering_phones_authenticate_and_have_no_static_contact(
    sample_settings: Settings, sample_calendar: Calendar
) -> None:
    phones = sample_settings.asterisk.phones.model_copy(update={"mode": "register"})
    asterisk = sample_settings.asterisk.model_copy(update={"phones": phones, "sip_bind": "0.0.0.0"})
    settings = sample_settings.model_copy(update={"asterisk": asterisk})
    secrets = {ext: f"pw-{ext}" for ext, _ in settings.extensions()}
    pjsip = render_config(settings, sample_calendar, NOW, "pw", PATHS, phone_secrets=secrets)[
        "pjsip.conf"
    ]
    assert "contact = sip:1101@" not in pjsip
    assert "max_contacts = 1" in pjsip
    assert "auth = 1101-auth\nidentify_by = auth_username" in pjsip
    assert (
        "[1101-auth]\ntype = auth\nauth_type = userpass\nusername = 1101\npassword = pw-1101"
        in pjsip
    )
    assert "bind = 0.0.0.0:5060" in pjsip


def test_ari_and_http_listen_on_loopback_with_the_generated_password(files: dict[str, str]) -> None:
    assert "bindaddr = 127.0.0.1\nbindport = 8088" in files["http.conf"]
    assert "[vvk-pbx]\ntype = user" in files["ari.conf"]
    assert "password = s3cret-pw" in files["ari.conf"]
    assert "astetcdir => /etc/vvk-asterisk" in files["asterisk.conf"]
    assert "astmoddir =>" not in files["asterisk.conf"]  # Debian's default fits every architecture


def test_every_call_kind_enters_stasis_and_falls_back_on_failure(files: dict[str, str]) -> None:
    ext = files["extensions.conf"]
    assert "VVK_APP = vvk-pbx" in ext
    # "!" patterns: one-character numbers (0, *, #) and +46 numbers enter Stasis too.
    # Callers hear ringback from the dialplan's Ringing() before the controller acts.
    for pattern in ("_X!", "_+!", "_[*#]!"):
        assert (
            f"exten => {pattern},1,Ringing()\n same => n,Stasis(${{VVK_APP}},inbound,${{EXTEN}})"
        ) in ext
    assert "exten => _X!,1,Ringing()\n same => n,Stasis(${VVK_APP},internal,${EXTEN})" in ext
    assert "exten => _+!,1,Ringing()\n same => n,Stasis(${VVK_APP},internal,${EXTEN})" in ext
    assert "exten => _[*#]!,1,Stasis(${VVK_APP},feature,${EXTEN})" in ext
    assert "#tryinclude extensions-local.conf" in ext
    assert ext.count('"${STASISSTATUS}" = "FAILED"') == 3
    assert "#include extensions-fallback.conf" in ext
    assert "extensions-fallback.conf" in files


def test_internal_fallback_never_gives_a_fast_busy(files: dict[str, str]) -> None:
    fallback = files["extensions-fallback.conf"]
    assert "exten => 1101,1,Ringing()\n same => n,Dial(PJSIP/1101,72)" in fallback
    assert "Playback(vvk/fallback-extension-no-answer)" in fallback
    assert "exten => _[+*#0-9]!,1,Answer()" in fallback
    assert "Playback(vvk/fallback-unknown-number)" in fallback
    assert "exten => 9,1,Goto(vvk-fallback-inbound,s,1)" in fallback
    # A direct number reaches the person even without the controller (A5).
    assert "exten => 0123191101,1,Goto(vvk-fallback-internal,1101,1)" in fallback
    assert "[vvk-fallback-open]\n; Ringback" in fallback
    assert "exten => s,1,Ringing()" in fallback


def test_indications_use_the_swedish_cadence(files: dict[str, str]) -> None:
    assert "country = se" in files["indications.conf"]
    assert "ringcadence = 1000,5000" in files["indications.conf"]


def test_fallback_has_the_weekly_hours_and_the_special_days(
    sample_settings: Settings, sample_calendar: Calendar
) -> None:
    text = render_fallback(sample_settings, sample_calendar, NOW)
    weekdays = "mon&tue&wed&thu&fri"
    assert f"GotoIfTime(08:00-11:59,{weekdays},*,*,Europe/Stockholm?vvk-fallback-open,s,1)" in text
    assert f"GotoIfTime(13:00-15:59,{weekdays},*,*,Europe/Stockholm?vvk-fallback-open,s,1)" in text
    # This year's and next year's special days, each by its exact date.
    assert "exten => 20261224,1,NoOp(Julafton: 08:00–12:00)" in text
    assert "exten => 20261225,1,NoOp(Juldagen: stängt)" in text
    assert "exten => 20270506,1,NoOp(Kristi himmelsfärdsdag: stängt)" in text
    assert "exten => 20280101" not in text
    assert "Dial(PJSIP/1001&PJSIP/1002,72)" in text
    assert "Playback(vvk/fallback-closed)" in text


def _day_block(text: str, day: str) -> str:
    start = text.index(f"exten => {day},1,")
    end = text.find("exten => ", start + 1)
    return text[start:end]


def test_fallback_day_rules_open_only_inside_the_days_hours(
    sample_settings: Settings, sample_calendar: Calendar
) -> None:
    text = render_fallback(sample_settings, sample_calendar, NOW)
    half = _day_block(text, "20261224")
    assert "GotoIfTime(08:00-11:59,*,*,*,Europe/Stockholm?vvk-fallback-open,s,1)" in half
    assert half.rstrip().endswith("Goto(vvk-fallback-closed,s,1)")
    closed = _day_block(text, "20261225")
    assert "GotoIfTime" not in closed


def test_fallback_switch_uses_epoch_seconds_and_drops_ended_ones(
    sample_settings: Settings,
) -> None:
    running = Switch(
        state="closed",
        start=NOW - timedelta(hours=1),
        end=NOW + timedelta(hours=1),
        reason="Övning",
    )
    ended = Switch(state="open", end=NOW - timedelta(minutes=1), reason="Gammal")
    settings = sample_settings.model_copy(update={"overrides": Overrides(switch=(running, ended))})
    text = render_fallback(settings, Calendar(settings.hours_policy()), NOW)
    start, end = int(running.start.timestamp()), int(running.end.timestamp())  # type: ignore[union-attr]
    assert (
        f"GotoIf($[${{VVK_NOW}} >= {start} & ${{VVK_NOW}} < {end}]?vvk-fallback-closed,s,1)" in text
    )
    assert "Gammal" not in text
    # The switch is checked before the day and the week.
    assert text.index("VVK_NOW} >=") < text.index("DIALPLAN_EXISTS")


def test_fallback_closed_override_on_a_weekday(sample_settings: Settings) -> None:
    today = date(2026, 11, 30)  # a Monday
    settings = sample_settings.model_copy(
        update={"overrides": Overrides(closed=(ClosedDate(date=today, reason="Test"),))}
    )
    text = render_fallback(settings, Calendar(settings.hours_policy()), NOW)
    assert f"exten => {today:%Y%m%d},1,NoOp(Test: stängt)" in text


def test_fallback_reason_text_cannot_break_the_dialplan(sample_settings: Settings) -> None:
    settings = sample_settings.model_copy(
        update={
            "overrides": Overrides(closed=(ClosedDate(date=date(2026, 12, 1), reason="a,b(c);d"),))
        }
    )
    text = render_fallback(settings, Calendar(settings.hours_policy()), NOW)
    assert "exten => 20261201,1,NoOp(a b[c] d: stängt)" in text


def test_closed_message_reads_hours_and_on_call_numbers_as_digits(
    sample_settings: Settings, sample_calendar: Calendar
) -> None:
    text = closed_message(sample_settings, sample_calendar)
    assert text.startswith("Välkommen till Valdemarsviks kommun. Växeln är stängd just nu.")
    assert "måndag till fredag klockan 8 till 12 och 13 till 16" in text
    assert "Helgaftnar och dagar före röd dag är växeln öppen klockan 8 till 12." in text
    assert "Socialjouren nås på nummer 0 1 2 3 1 9 1 9 0." in text

"""The ops config: the sample is valid, and every error is named with its key path (O1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_CONFIG
from vvk_pbx.config import ConfigError, Settings, load


def write_variant(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """A copy of the sample with each ``(old, new)`` replaced once; fails if ``old`` is absent."""
    text = SAMPLE_CONFIG.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path)
    return [str(p) for p in info.value.problems]


def test_sample_config_is_valid_and_complete(sample_settings: Settings) -> None:
    s = sample_settings
    assert s.site.timezone == "Europe/Stockholm"
    assert len(s.staff) >= 12
    assert len({p.unit for p in s.staff}) >= 4
    assert (s.ring.tone_ms, s.ring.pause_ms, s.ring.goal_rings) == (1000, 5000, 4)
    assert s.ring.cycle_ms == 6000
    assert [o.digit for o in s.on_call] == ["1", "2", "3"]
    assert s.on_call[0].name == "Socialjouren"
    assert {r.code: r.phrase for r in s.referral_reasons}[2] == "är på möte"
    assert len(s.operators) >= 1


def test_unit_members_follow_directory_order(sample_settings: Settings) -> None:
    members = sample_settings.unit_members("kommunledning")
    assert [p.extension for p in members] == ["1101", "1102", "1103"]


def test_settings_are_frozen(sample_settings: Settings) -> None:
    with pytest.raises(ValueError, match="frozen"):
        sample_settings.site.name = "x"  # type: ignore[misc]


def test_misspelled_key_and_impossible_time_are_both_named(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        ('lunch = "12:00-13:00"', 'lunhc = "12:00-13:00"'),
        ('monday = ["08:00-16:00"]', 'monday = ["08:00-25:00"]'),
    )
    found = problems(path)
    assert f"{path}: hours.lunhc: unknown key (did you mean 'lunch'?)" in found
    assert any(
        line.startswith(f"{path}: hours.weekly.monday[0]: '25:00' is an impossible time")
        for line in found
    )
    assert len(found) == 2


def test_every_error_line_has_file_key_and_reason(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        ('timezone = "Europe/Stockholm"', 'timezone = "Europe/Valdemarsvik"'),
        ("goal_rings = 4", "goal_rings = 0"),
        ('digit = "2"', 'digit = "1"'),
        ('unit = "ifo"', 'unit = "ifoo"'),
        ('extension = "1102"', 'extension = "1101"'),
        ('extension = "1002"', 'extension = "10x2"'),
        ("code = 3", "code = 2"),
        ('tuesday = ["08:00-16:00"]', 'tuesday = ["13:00-16:00", "08:00-14:00"]'),
        ("end = 2027-08-06", "end = 2027-06-06"),
    )
    found = problems(path)
    pattern = re.compile(rf"^{re.escape(str(path))}: [a-z_\[\]0-9.]+: .+$")
    assert all(pattern.match(line) for line in found), found
    keys = {line.split(": ")[1] for line in found}
    assert keys >= {
        "site.timezone",
        "ring.goal_rings",
        "on_call[1].digit",
        "staff[3].unit",
        "staff[1].extension",
        "operators[1].extension",
        "referral_reasons[2].code",
        "hours.weekly.tuesday",
        "overrides.period[0].end",
    }, found
    joined = "\n".join(found)
    assert "unknown time zone 'Europe/Valdemarsvik'" in joined
    assert "extension 1101 (Erik Lindqvist) is already used by staff[0] (Anna Berg)" in joined
    assert "unknown unit 'ifoo'" in joined
    assert "overlap" in joined


def test_operator_and_staff_share_one_numbering_plan(tmp_path: Path) -> None:
    path = write_variant(tmp_path, ('extension = "1001"', 'extension = "1101"'))
    found = problems(path)
    assert found == [
        f"{path}: staff[0].extension: extension 1101 (Anna Berg) is already used by "
        "operators[0] (Växeln 1)"
    ]


def test_cross_checks_still_run_when_a_table_is_broken(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        ('title = "Kommunsekreterare"', 'titel = "Kommunsekreterare"'),
        ('extension = "1102"', 'extension = "1101"'),
    )
    keys = [line.split(": ")[1] for line in problems(path)]
    assert keys == ["staff[0].titel", "staff[0].title", "staff[1].extension"]


def test_missing_required_key(tmp_path: Path) -> None:
    path = write_variant(tmp_path, ('phrase = "är sjuk"\n', ""))
    assert problems(path) == [f"{path}: referral_reasons[2].phrase: required key is missing"]


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path, ('name = "Valdemarsviks kommun"', 'name = "Valdemarsviks kommun')
    )
    [line] = problems(path)
    assert line.startswith(f"{path}: (syntax): not valid TOML")
    assert "line 13" in line


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert problems(path) == [f"{path}: (file): no such file"]


def test_switch_must_end_after_it_starts(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        ("# [[overrides.switch]]\n# state", "[[overrides.switch]]\nstate"),
        (
            "# start = 2026-12-01T10:00:00\n# end = 2026-12-01T11:30:00\n# reason",
            "start = 2026-12-01T10:00:00\nend = 2026-12-01T09:30:00\nreason",
        ),
    )
    [line] = problems(path)
    assert line.endswith(
        "overrides.switch[0].end: end 2026-12-01 09:30:00 is not after start 2026-12-01 10:00:00"
    )


def test_switch_in_config_reaches_the_calendar(tmp_path: Path) -> None:
    from datetime import datetime

    from vvk_pbx.domain.calendar import Calendar

    path = write_variant(
        tmp_path,
        ("# [[overrides.switch]]\n# state", "[[overrides.switch]]\nstate"),
        (
            "# start = 2026-12-01T10:00:00\n# end = 2026-12-01T11:30:00\n# reason",
            "start = 2026-12-01T10:00:00\nend = 2026-12-01T11:30:00\nreason",
        ),
    )
    settings = load(path)
    cal = Calendar(settings.hours_policy())
    at = datetime(2026, 12, 1, 10, 15, tzinfo=settings.site.tz)
    assert not cal.is_open(at)
    assert cal.status(at).reason == "Manuellt stängt till 2026-12-01 11:30: Brandövning"


def test_env_var_names_the_default_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VVK_PBX_CONFIG", str(SAMPLE_CONFIG))
    assert load().site.name == "Valdemarsviks kommun"


def _switch(tmp_path: Path, start: str, end: str) -> Path:
    return write_variant(
        tmp_path,
        ("# [[overrides.switch]]\n# state", "[[overrides.switch]]\nstate"),
        (
            "# start = 2026-12-01T10:00:00\n# end = 2026-12-01T11:30:00\n# reason",
            f"start = {start}\nend = {end}\nreason",
        ),
    )


def test_switch_order_respects_offsets(tmp_path: Path) -> None:
    # 10:30+01:00 is 09:30 UTC: before a 10:00 UTC start.
    bad = _switch(tmp_path, "2026-12-01T10:00:00Z", "2026-12-01T10:30:00+01:00")
    assert [p.split(": ")[1] for p in problems(bad)] == ["overrides.switch[0].end"]
    # 09:30 UTC is 10:30 in Stockholm: after a local 10:00 start.
    good = _switch(tmp_path, "2026-12-01T10:00:00", "2026-12-01T09:30:00Z")
    assert load(good).overrides.switch[0].reason == "Brandövning"


def test_switch_end_must_have_a_time(tmp_path: Path) -> None:
    [line] = problems(_switch(tmp_path, "2026-12-01T10:00:00", "2026-12-02"))
    assert "overrides.switch[0].end: expected a date and time" in line


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        (
            'timezone = "Europe/Stockholm"',
            'timezone = "Europe"',
            "site.timezone",
            "unknown time zone",
        ),
        ('id = "ifo"', 'id = ["ifo"]', "units[1].id", "expected text in quotes"),
        ("tone_ms = 1000", "tone_ms = true", "ring.tone_ms", "whole number"),
        ("tone_ms = 1000", 'tone_ms = "1000"', "ring.tone_ms", "whole number"),
        ("date = 2026-08-21", "date = 1787270400", "overrides.closed[0].date", "expected a date"),
        ('lunch = "12:00-13:00"', "lunch = 12:00:00", "hours.lunch", "write it in quotes"),
        ("saturday = []", 'saturday = "08:00-12:00"', "hours.weekly.saturday", "expected a list"),
        (
            'monday = ["08:00-16:00"]',
            'monday = ["٠٨:٠٠-١٦:٠٠"]',
            "hours.weekly.monday[0]",
            "is not a time",
        ),
        ('name = "Anna Berg"', 'name = "   "', "staff[0].name", "at least 1 character"),
        ('name = "Anna Berg"', 'name = "Anna\u202eBerg"', "staff[0].name", "does not match"),
        ('name = "Anna Berg"', 'name = "Anna; Berg"', "staff[0].name", "does not match"),
        ('name = "Anna Berg"', r'name = "Karin \\"', "staff[0].name", "does not match"),
        (
            'host = "127.0.0.1"',
            'host = "127.0.0.0/8"',
            "asterisk.phones.host",
            "not one IP address",
        ),
        (
            "sip_port = 5060",
            'sip_bind = "localhost"\nsip_port = 5060',
            "asterisk.sip_bind",
            "not one IP address",
        ),
        ('number = "0123-191 90"', 'number = "0--1"', "on_call[0].number", "does not match"),
        ("goal_rings = 4", "goal_rings = 1000", "ring.goal_rings", "less than or equal to 20"),
        (
            'weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday"]',
            "weekdays = []",
            "overrides.period[0].weekdays",
            "at least 1 item",
        ),
        (
            'monday = ["09:00-11:00", "13:00-15:00"]',
            'mondag = ["09:00-11:00", "13:00-15:00"]',
            "units[2].phone_hours.mondag",
            "unknown key",
        ),
        (
            'friday = ["09:00-11:00"]',
            'friday = ["09:00-11:00", "10:30-12:00"]',
            "units[2].phone_hours.friday",
            "overlap",
        ),
        (
            'friday = ["09:00-11:00"]',
            'friday = ["11:00-09:00"]',
            "units[2].phone_hours.friday[0]",
            "the start must be before the end",
        ),
        (
            "date = 2026-09-13",
            "date = 2026-08-21",
            "overrides.day[0].date",
            "already has an override",
        ),
    ],
)
def test_bad_values_get_a_clear_error(
    tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    found = problems(write_variant(tmp_path, (old, new)))
    [line] = [p for p in found if p.startswith(f"{tmp_path / 'site.toml'}: {key}: ")] or [found]
    assert reason in line


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SAMPLE_CONFIG.read_bytes())
    assert load(path).site.name == "Valdemarsviks kommun"


def test_errors_are_in_natural_order(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        (
            'unit = "barn-utbildning"\ntitle = "Administratör"',
            'unit = "x"\ntitle = "Administratör"',
        ),
        ('unit = "ifo"', 'unit = "y"'),
    )
    assert [p.split(": ")[1] for p in problems(path)] == ["staff[3].unit", "staff[11].unit"]


def test_a_directory_is_not_a_config(tmp_path: Path) -> None:
    [line] = problems(tmp_path)
    assert line.startswith(f"{tmp_path}: (file): cannot be read")


def test_overflow_names_extensions_or_units(tmp_path: Path, sample_settings: Settings) -> None:
    assert sample_settings.overflow_extensions() == ("1101", "1102", "1103")
    path = write_variant(
        tmp_path,
        ('overflow = ["kommunledning"]', 'overflow = ["ifo", "1101", "1201", "kommunledningen"]'),
    )
    found = problems(path)
    assert found == [
        f"{path}: queue.overflow[3]: 'kommunledningen' is neither an extension nor a unit id "
        "(units: barn-utbildning, bygg-miljo, ifo, kommunledning)"
    ]


def test_an_unknown_ring_strategy_is_refused(tmp_path: Path) -> None:
    path = write_variant(tmp_path, ('\nstrategy = "ring-all"', '\nstrategy = "round-robin"'))
    assert any(line.startswith(f"{path}: queue.strategy:") for line in problems(path))

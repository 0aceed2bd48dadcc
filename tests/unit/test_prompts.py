"""The prompt catalogue: every prompt the controller composes exists, in Swedish."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import STHLM
from vvk_pbx.asterisk import prompts as prompts_module
from vvk_pbx.asterisk.prompts import build_prompts, catalogue, phrases
from vvk_pbx.config import Settings
from vvk_pbx.domain.announcements import answering_machine
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.dialcodes import Problem
from vvk_pbx.domain.referral import Referral, Source, announcement


@pytest.fixture
def prompts(sample_settings: Settings) -> dict[str, str]:
    return catalogue(sample_settings, Calendar(sample_settings.hours_policy()))


def test_names_reasons_dates_and_numbers_come_from_the_config_and_the_calendar(
    prompts: dict[str, str],
) -> None:
    assert prompts["name-1101"] == "Anna Berg"
    assert prompts["reason-2"] == "är på möte"
    assert prompts["ord-7"] == "sjunde" and prompts["ord-31"] == "trettioförsta"
    assert prompts["month-12"] == "december" and prompts["day-0"] == "måndag"
    assert prompts["num-59"] == "59"
    assert prompts["welcome"] == "Välkommen till Valdemarsviks kommun."


def test_every_spoken_error_has_a_prompt(prompts: dict[str, str]) -> None:
    for problem in Problem:
        assert f"code-error-{problem.value}" in prompts


def test_every_composed_announcement_uses_existing_prompts(
    sample_settings: Settings, prompts: dict[str, str]
) -> None:
    calendar = Calendar(sample_settings.hours_policy())
    now = datetime(2026, 11, 27, 10, 0, tzinfo=STHLM)
    names: list[str] = []
    for person in sample_settings.staff:
        for days in (0, 1, 3, 10, 40):
            back = now + timedelta(days=days, hours=4, minutes=30)
            referral = Referral("r", person.extension, 2, now, back, "x", Source.PHONE)
            names += announcement(person.extension, referral, now, calendar)
        names += announcement(person.extension, None, now, calendar)
    on_call = [s.digit for s in sample_settings.on_call]
    names += [m.removeprefix("sound:vvk/") for m in answering_machine(now, now, on_call)]
    assert set(names) - set(prompts) == set()


def test_a_broken_catalogue_names_its_file(sample_settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "catalogue.toml"
    broken.write_text("[phrases\nwelcome = 1", encoding="utf-8")
    with pytest.raises(RuntimeError, match=f"{broken}: the prompt catalogue cannot be read"):
        phrases(sample_settings, broken)


def test_a_build_removes_the_prompts_of_people_who_left(
    sample_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spoken: list[str] = []

    def fake_speak(text: str, target: Path) -> None:
        spoken.append(text)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"RIFF")

    monkeypatch.setattr(prompts_module, "speak", fake_speak)
    target = tmp_path / "vvk"
    target.mkdir()
    (target / "name-1999.wav").write_bytes(b"RIFF")  # someone who left
    calendar = Calendar(sample_settings.hours_policy())
    lines: list[str] = []
    written = build_prompts(sample_settings, calendar, tmp_path / "cache", target, lines.append)
    names = {p.stem for p in target.glob("*.wav")}
    assert names == set(catalogue(sample_settings, calendar)) == {p.stem for p in written}
    assert "removing prompt name-1999" in lines
    assert "Anna Berg" in spoken
    spoken.clear()
    build_prompts(sample_settings, calendar, tmp_path / "cache", target, lines.append)
    assert spoken == [], "unchanged texts are not spoken again"

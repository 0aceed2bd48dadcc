"""Shared fixtures: the sample ops config and a calendar built from it."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from vvk_pbx.config import Settings, load
from vvk_pbx.domain.calendar import Calendar

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = ROOT / "config" / "vvk-pbx.toml"
STHLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture(scope="session")
def sample_settings() -> Settings:
    return load(SAMPLE_CONFIG)


@pytest.fixture(scope="session")
def sample_calendar(sample_settings: Settings) -> Calendar:
    return Calendar(sample_settings.hours_policy())

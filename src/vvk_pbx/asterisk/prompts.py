"""Swedish prompts, spoken by espeak-ng (voice ``sv``) and stored as 8 kHz mono WAV for Asterisk.

Generated, never recorded: when an on-call number or the hours change, the
prompts follow the config (H5). Each prompt is cached on its text, so only
changed prompts are spoken again.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

from vvk_pbx.asterisk.fallback import closed_message, spoken_week
from vvk_pbx.config.model import Settings
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.referral import MONTHS
from vvk_pbx.domain.routing import spoken_digits
from vvk_pbx.resources import resource_dir

WEEKDAY_WORDS = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
ORDINALS = (
    "första", "andra", "tredje", "fjärde", "femte", "sjätte", "sjunde", "åttonde", "nionde",
    "tionde", "elfte", "tolfte", "trettonde", "fjortonde", "femtonde", "sextonde",
    "sjuttonde", "artonde", "nittonde", "tjugonde", "tjugoförsta", "tjugoandra",
    "tjugotredje", "tjugofjärde", "tjugofemte", "tjugosjätte", "tjugosjunde",
    "tjugoåttonde", "tjugonionde", "trettionde", "trettioförsta",
)  # fmt: skip
CATALOGUE = resource_dir("sounds") / "catalogue.toml"
# Asterisk's sounds directory our prompts live in: ``sound:vvk/<name>`` (domain.announcements.sound).
PROMPT_DIR = "vvk"


def phrases(settings: Settings, path: Path = CATALOGUE) -> dict[str, str]:
    """The fixed phrases of the text catalogue kept in the repository (``sounds/catalogue.toml``).

    Raises ``RuntimeError`` naming the file if it is missing or malformed.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        table = data["phrases"]
        return {str(k): str(v).format(site=settings.site.name) for k, v in table.items()}
    except (OSError, tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        raise RuntimeError(f"{path}: the prompt catalogue cannot be read: {exc}") from None


def catalogue(settings: Settings, calendar: Calendar) -> dict[str, str]:
    """Every prompt the controller and the fallback play: ``{name: Swedish text}`` (``vvk/<name>``).

    The fixed phrases of ``sounds/catalogue.toml``, and, from the config and
    the calendar: the opening hours, each on-call service with its number
    read as digits (H5), each person's name and each referral reason (R5),
    numbers 0–59, weekdays, ordinals and months (dates and times are composed
    from these), and the fallback's own messages.
    """
    prompts = phrases(settings)
    prompts["hours"] = _hours_sentence(calendar)
    for i, word in enumerate(WEEKDAY_WORDS):
        prompts[f"day-{i}"] = word
    for n in range(60):
        prompts[f"num-{n}"] = str(n)
    for n, word in enumerate(ORDINALS, start=1):
        prompts[f"ord-{n}"] = word
    for n, month in enumerate(MONTHS, start=1):
        prompts[f"month-{n}"] = month
    for service in settings.on_call:
        prompts[f"on-call-{service.digit}"] = (
            f"{service.name} nås på nummer {spoken_digits(service.number)}. "
            f"Tryck {service.digit} för att kopplas dit."
        )
    for extension, name in settings.extensions():
        prompts[f"name-{extension}"] = name
    for reason in settings.referral_reasons:
        prompts[f"reason-{reason.code}"] = reason.phrase
    prompts.update(fallback_prompts(settings, calendar))
    return prompts


def _hours_sentence(calendar: Calendar) -> str:
    week = spoken_week(calendar)
    return f"Växeln är öppen {week}." if week else "Växeln har inga fasta öppettider."


def fallback_prompts(settings: Settings, calendar: Calendar) -> dict[str, str]:
    """``{prompt name: Swedish text}`` for the dialplan fallback (``vvk/<name>``)."""
    return {
        "fallback-closed": closed_message(settings, calendar),
        "fallback-no-answer": (
            f"Välkommen till {settings.site.name}. Just nu kan ingen ta ditt samtal. "
            "Försök gärna igen om en stund."
        ),
        "fallback-extension-no-answer": "Ingen svarar just nu. Försök gärna igen senare.",
        "fallback-unknown-number": "Numret du har slagit finns inte. Kontrollera numret och försök igen.",
        "fallback-feature-unavailable": (
            "Hänvisningen kan inte ändras just nu. Försök igen om en stund."
        ),
    }


def speak(text: str, target: Path) -> None:
    """Speak ``text`` in Swedish into ``target`` (WAV, 8 kHz, mono, 16-bit).

    Raises ``RuntimeError`` if espeak-ng or sox is missing or fails.
    """
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (./scripts/setup installs it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = target.with_suffix(".raw.wav")
    try:
        subprocess.run(
            ["espeak-ng", "-v", "sv", "-s", "150", "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "sox",
                str(raw),
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                str(target),
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"{exc.cmd[0]} failed: {exc.stderr.decode(errors='replace').strip()}"
        ) from None
    finally:
        raw.unlink(missing_ok=True)


def build_prompts(
    settings: Settings, calendar: Calendar, cache: Path, target: Path, log: Callable[[str], None]
) -> list[Path]:
    """Speak every prompt of the catalogue whose text changed, and copy all into ``target``.

    Prompts in ``target`` that the catalogue no longer has (a person who left)
    are removed, so the controller's check for missing prompts sees the truth.
    """
    target.mkdir(parents=True, exist_ok=True)
    written = []
    prompts = catalogue(settings, calendar)
    for stale in sorted(target.glob("*.wav")):
        if stale.stem not in prompts:
            log(f"removing prompt {stale.stem}")
            stale.unlink()
    for name, text in prompts.items():
        key = hashlib.sha256(text.encode()).hexdigest()[:16]
        cached = cache / f"{name}-{key}.wav"
        if not cached.exists():
            log(f"speaking prompt {name}")
            speak(text, cached)
        out = target / f"{name}.wav"
        shutil.copyfile(cached, out)
        written.append(out)
    return written

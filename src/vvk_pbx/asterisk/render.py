"""Asterisk's own config files, rendered from the templates in ``dialplan/`` and the ops config.

Pure: takes the settings, the calendar, the instant and the secrets, and
returns ``{file name: text}``. Writing them anywhere is ``local.py``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2

from vvk_pbx.asterisk.fallback import render_fallback
from vvk_pbx.config.model import Settings
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.resources import resource_dir

# Package data (vvk_pbx.resources): the same files as the repository's top-level
# folders, so an installed package renders what a checkout does.
DIALPLAN_DIR = resource_dir("dialplan")
PACKAGES_DIR = resource_dir("packages")


@dataclass(frozen=True)
class ChrootPaths:
    """Where Asterisk keeps things, as seen inside its root filesystem (or its container)."""

    etc: str = "/etc/vvk-asterisk"
    db: str = "/var/lib/vvk-asterisk"
    spool: str = "/var/spool/vvk-asterisk"
    run: str = "/run/vvk-asterisk"
    log: str = "/var/log/vvk-asterisk"
    cache: str = "/var/cache/vvk-asterisk"
    sounds: str = "/usr/share/asterisk/sounds/vvk"

    @property
    def asterisk_conf(self) -> str:
        return f"{self.etc}/asterisk.conf"

    @property
    def recordings(self) -> str:
        """Where ARI keeps stored recordings (``<astspooldir>/recording``): voicemail (V1)."""
        return f"{self.spool}/recording"

    def runtime_dirs(self) -> tuple[str, ...]:
        """Directories emptied at every start, so each run starts clean.

        The spool is not among them: it holds the voicemail recordings, which
        must outlive a restart (V1). Only its outgoing-call queue is emptied.
        """
        return (self.db, f"{self.spool}/outgoing", self.run, self.log, self.cache)


def render_config(
    settings: Settings,
    calendar: Calendar,
    now: datetime,
    ari_password: str,
    paths: ChrootPaths,
    template_dir: Path = DIALPLAN_DIR,
    phone_secrets: dict[str, str] | None = None,
) -> dict[str, str]:
    """Every file of Asterisk's config directory: ``{"pjsip.conf": "...", ...}``.

    ``*.j2`` templates are rendered with the settings; other ``*.conf`` files are
    copied as they are; ``extensions-fallback.conf`` is generated for ``now``
    (see ``fallback.py``). ``phone_secrets`` (extension -> password) is needed
    when phones register. Raises ``FileNotFoundError`` if ``template_dir`` is
    missing and ``jinja2.TemplateError`` for a broken template.
    """
    if not template_dir.is_dir():
        raise FileNotFoundError(f"{template_dir}: the Asterisk templates are missing")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Asterisk config, not HTML
    )
    context = {
        "asterisk": settings.asterisk,
        "phones": settings.extensions(),
        "paths": paths,
        "ari_password": ari_password,
        "ring_timeout": settings.ring.timeout_s,
        "phone_secrets": phone_secrets or {},
    }
    files: dict[str, str] = {}
    for path in sorted(template_dir.iterdir()):
        if path.suffix == ".j2":
            files[path.stem] = env.get_template(path.name).render(context)
        elif path.suffix == ".conf":
            files[path.name] = path.read_text(encoding="utf-8")
    files["extensions-fallback.conf"] = render_fallback(settings, calendar, now)
    return files

"""The monthly report (F1): one self-contained, printable HTML file in Swedish, charts as
inline SVG, no external URL; every text escaped. Figures from ``domain/report.py``.

``build(month)`` reads the month's calls (streamed) and messages; ``render`` writes
the page. ``vvk-pbx report --month 2026-11 --out report.html`` and ``GET
/report?month=2026-11`` (operator, reports) both use it.
"""

from __future__ import annotations

import html
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Protocol

from vvk_pbx.config import Settings
from vvk_pbx.domain.calls import CallRecord
from vvk_pbx.domain.report import (
    RING_BINS,
    MonthReport,
    Share,
    average,
    mmss,
    month_report,
)
from vvk_pbx.domain.routing import digits
from vvk_pbx.domain.voicemail import Message
from vvk_pbx.services.export import CallSource
from vvk_pbx.storage.calllog import CallQuery

OUTCOMES_SV = {
    "answered": "besvarade",
    "abandoned": "lade på i kön",
    "closed": "stängt (telefonsvarare)",
    "voicemail": "röstmeddelande",
    "referred": "hörde hänvisning",
    "colleague": "kollega svarade",
    "on_call_transfer": "kopplade till jour",
    "no_answer": "inget svar",
    "fallback": "reservläget",
    "unknown_number": "okänt nummer",
    "feature_code": "kod från telefon",
    "in_progress": "pågår",
}


class ReportError(ValueError):
    """A month the report cannot take (``YYYY-MM``)."""


class LedgerPort(Protocol):
    async def ledger(self, extensions: list[str] | None = None) -> list[Message]: ...


def month_bounds(month: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """``"2026-11"`` -> its first instant and the next month's, local. Raises ``ReportError``."""
    year, _, number = month.partition("-")
    try:
        if len(year) != 4 or len(number) != 2:
            raise ValueError(month)
        first = date(int(year), int(number), 1)
    except ValueError:
        raise ReportError(f"{month!r} is not a month like 2026-11") from None
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (
        datetime.combine(first, time(), tz),
        datetime.combine(following, time(), tz),
    )


async def build(
    month: str, calls: CallSource, ledger: LedgerPort, settings: Settings, now: datetime
) -> MonthReport:
    """The month's figures from the stores. Raises ``ReportError``, ``StorageError``."""
    tz = settings.site.tz
    start, end = month_bounds(month, tz)
    records: list[CallRecord] = []
    async for page in calls.stream_calls(CallQuery(since=start, until=end)):
        records.extend(page)
    messages = [m for m in await ledger.ledger() if start <= m.left_at < end]
    prefix = digits(settings.switchboard.direct_prefix)
    unit_of_extension = {p.extension: p.unit for p in settings.staff}
    unit_of_number = {**unit_of_extension, **{prefix + e: u for e, u in unit_of_extension.items()}}
    return month_report(
        month,
        records,
        messages,
        tz,
        now,
        settings.ring.goal_rings,
        (o.extension for o in settings.operators),
        unit_of_number,
        unit_of_extension,
    )


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f} %"


def _bars(values: list[tuple[str, float | None, str]], goal: float | None = None) -> str:
    """A horizontal bar chart as inline SVG: (label, 0..1 or None, text) per bar."""
    height = 22 * len(values) + 10
    parts = [
        f'<svg class="chart" viewBox="0 0 720 {height}" width="720" height="{height}" role="img">'
    ]
    for n, (label, value, text) in enumerate(values):
        y = 5 + 22 * n
        width = 0 if value is None else round(400 * value)
        parts.append(
            f'<text x="0" y="{y + 15}" font-size="12">{html.escape(label)}</text>'
            f'<rect x="220" y="{y + 3}" width="{width}" height="16" fill="#005aa0"/>'
            f'<text x="{226 + width}" y="{y + 15}" font-size="12">{html.escape(text)}</text>'
        )
    if goal is not None:
        x = 220 + round(400 * goal)
        parts.append(
            f'<line x1="{x}" y1="0" x2="{x}" y2="{height}" stroke="#c62828" '
            'stroke-dasharray="4 3"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _share_rows(items: list[tuple[str, Share]], goal: float) -> str:
    bars = [(label, s.ratio, f"{_pct(s.ratio)} av {s.counted}") for label, s in items]
    return _bars(bars, goal) if bars else "<p>Inga samtal.</p>"


WEEKDAYS = ("mån", "tis", "ons", "tor", "fre", "lör", "sön")
GOAL_SHARE = 0.9  # the line drawn on the charts: nine of ten within the goal


def render(report: MonthReport, settings: Settings) -> str:
    """The report as one HTML page (Swedish, printable, no external URL)."""
    tz = settings.site.tz
    names = dict(settings.extensions())
    units = {u.id: u.name for u in settings.units}
    e = html.escape
    goal = report.goal_rings
    days = sorted(report.by_day.items())
    rows_day = [(f"{WEEKDAYS[d.weekday()]} {d:%-d/%-m}", s) for d, s in days]
    rows_hour = [(f"kl. {h:02d}", s) for h, s in sorted(report.by_hour.items())]
    rows_op = [(f"{names.get(x, x)}", s) for x, s in sorted(report.by_operator.items())]
    rows_unit = [(units.get(u, u), s) for u, s in sorted(report.by_unit.items())]
    counted = sum(report.rings.values())
    dist = [
        (
            f"{n}{'+' if n == RING_BINS else ''} signal{'er' if n > 1 else ''}",
            (c / counted) if counted else None,
            str(c),
        )
        for n, c in report.rings.items()
    ]
    callbacks = report.callbacks
    lines = [
        "<!doctype html>",
        '<html lang="sv"><head><meta charset="utf-8">',
        f"<title>Uppföljning av telefonin {e(report.month)}</title>",
        "<style>body{font-family:system-ui,'DejaVu Sans',sans-serif;margin:2em;color:#1b1f24}"
        "h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}"
        "table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;"
        "text-align:left}.big{font-size:2em;font-weight:bold}"
        "@media print{body{margin:0}h2{break-after:avoid}}</style></head><body>",
        f"<h1>Uppföljning av telefonin – {e(report.month)}</h1>",
        f"<p>{e(settings.site.name)}. Målet: svar inom {goal} signaler.</p>",
        f'<p class="big">{_pct(report.total.ratio)} besvarade inom {goal} signaler</p>',
        f"<p>{report.total.within} av {report.total.counted} samtal där målet gäller; "
        f"{report.calls} samtal i allt. Genomsnittlig tid till svar "
        f"{mmss(average(report.answer_s))}, genomsnittlig samtalstid "
        f"{mmss(average(report.talk_s))} (m:ss).</p>",
        "<h2>Per dag</h2>",
        _share_rows(rows_day, GOAL_SHARE),
        "<h2>Per timme</h2>",
        _share_rows(rows_hour, GOAL_SHARE),
        "<h2>Per telefonist</h2>",
        _share_rows(rows_op, GOAL_SHARE),
        "<h2>Per enhet</h2>",
        _share_rows(rows_unit, GOAL_SHARE),
        "<h2>Svarstid i signaler</h2>",
        _bars(dist) if counted else "<p>Inga besvarade samtal.</p>",
        "<h2>Lade på i kön</h2>",
        f"<p>{report.abandoned} samtal. Externa som lade på och inte nåddes senare i "
        f"månaden: {len(report.not_reached)}.</p>",
    ]
    if report.not_reached:
        lines.append(
            "<table><thead><tr><th>Nummer</th><th>Namn</th><th>När</th></tr></thead><tbody>"
        )
        for record in report.not_reached:
            when = record.arrived_at.astimezone(tz)
            lines.append(
                f"<tr><td>{e(record.caller)}</td><td>{e(record.caller_name)}</td>"
                f"<td>{when:%Y-%m-%d %H:%M}</td></tr>"
            )
        lines.append("</tbody></table>")
    lines += [
        "<h2>Återringning (två arbetsdagar)</h2>",
        f"<p>{callbacks.left} meddelanden: {callbacks.in_time} i tid, {callbacks.late} sent, "
        f"{callbacks.overdue} försenade och inte besvarade "
        f"({_pct(callbacks.ratio)} i tid).</p>",
    ]
    if report.overdue_by_person:
        lines.append("<table><thead><tr><th>Försenade per person</th><th></th></tr></thead><tbody>")
        for ext, n in report.overdue_by_person.items():
            lines.append(f"<tr><td>{e(names.get(ext, ext))} ({e(ext)})</td><td>{n}</td></tr>")
        lines.append("</tbody></table>")
        lines.append("<table><thead><tr><th>Försenade per enhet</th><th></th></tr></thead><tbody>")
        for unit, n in report.overdue_by_unit.items():
            lines.append(f"<tr><td>{e(units.get(unit, unit))}</td><td>{n}</td></tr>")
        lines.append("</tbody></table>")
    lines += [
        "<h2>Utan besked</h2>",
        f"<p>{report.no_besked} samtal fick varken svar, hänvisning eller meddelande "
        "(lade på i kön eller inget svar).</p>",
        "<h2>Reservläget</h2>",
        f"<p>{report.fallback} samtal togs av reservläget i växeln (dialplanen).</p>",
        "<h2>Alla samtal efter utfall</h2>",
        "<table><tbody>",
        *(
            f"<tr><td>{e(OUTCOMES_SV.get(k, k))}</td><td>{v}</td></tr>"
            for k, v in report.outcomes.items()
        ),
        "</tbody></table>",
        "</body></html>",
        "",
    ]
    return "\n".join(lines)


__all__ = ["ReportError", "build", "month_bounds", "render"]

"""One clock: no code but ``services/clock.py`` reads the wall clock, so every decision can be
moved by ``--clock`` and by the tests (issue 10). The benchmark times itself."""

from __future__ import annotations

import re

from tests.conftest import ROOT

WALL_CLOCK = re.compile(r"datetime\.now\(|datetime\.utcnow\(|date\.today\(|time\.time\(\)")
ALLOWED = {
    "src/vvk_pbx/services/clock.py",  # the one clock
}
ALLOWED_FOLDERS = ("src/vvk_pbx/bench/",)  # measures wall time, decides nothing


def test_only_the_clock_reads_the_wall_clock() -> None:
    readers = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if name in ALLOWED or name.startswith(ALLOWED_FOLDERS):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if WALL_CLOCK.search(line):
                readers.append(f"{name}:{number}: {line.strip()}")
    assert readers == []

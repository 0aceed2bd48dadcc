"""``vvk-pbx supervise`` (issue 13): a controller that dies is started again at once, a
crash loop backs off, and a stop passes SIGTERM on and starts nothing more."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from vvk_pbx.supervise import Supervisor


def test_a_dying_controller_is_restarted_at_once_then_with_a_backoff(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    crash = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)"
    supervisor = Supervisor([sys.executable, "-c", crash], tmp_path / "pid")
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(supervisor.run()))
    began = time.monotonic()
    thread.start()
    while (starts.read_text() if starts.exists() else "").count("x") < 3:
        assert time.monotonic() - began < 20, "not restarted"
        time.sleep(0.05)
    took = time.monotonic() - began
    supervisor.stop()
    thread.join()  # no timeout: a lock's timed wait never ends under faketime
    assert done == [3] and supervisor.restarts >= 2
    # Restart 1 at once, restart 2 after 0.5 s: a crash loop does not spin.
    assert 0.5 <= took < 10, took
    assert (tmp_path / "pid").read_text().strip().isdigit()


def test_a_stop_passes_sigterm_to_the_controller_and_starts_no_other(tmp_path: Path) -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        f"open({str(tmp_path / 'up')!r}, 'w').write('up')\n"
        "time.sleep(60)\n"
    )
    supervisor = Supervisor([sys.executable, "-c", script])
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(supervisor.run()))
    thread.start()
    began = time.monotonic()
    while not (tmp_path / "up").exists():
        assert time.monotonic() - began < 20
        time.sleep(0.05)
    supervisor.stop(signal.SIGTERM)
    thread.join()
    assert done == [0] and supervisor.restarts == 0

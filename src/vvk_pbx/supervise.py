"""``vvk-pbx supervise``: run the controller and start it again at once when it dies (issue 13).

Why a supervisor and not a standby process: Asterisk gives a Stasis app to one
websocket, and a second connection with the app's name takes it from the first,
so a standby cannot wait connected. A controller that starts again within a
second or two resyncs from Asterisk (``services/reconciliation.py``): it adopts
the calls connected to a person, hands the others to the dialplan fallback and
follows them to their end. Meanwhile Asterisk keeps every channel as it was: a
prompt plays to its end, ringback and ringing go on, a recording records.

In production systemd (``deploy/vvk-pbx.service``: ``Restart=always``) or the
container's restart policy does this job; this command is the same for
``scripts/run`` and any host without them.

- The first restart is immediate; a controller that dies again within
  ``STABLE_S`` waits longer each time (``BACKOFF_S``), so a config that cannot
  start never spins and logs one line per attempt.
- SIGTERM or SIGINT to the supervisor is passed to the controller; the
  supervisor then exits with the controller's code and starts nothing.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("vvk_pbx.supervise")

STABLE_S = 10.0  # a controller that ran this long is restarted at once again
BACKOFF_S = (0.0, 0.5, 1.0, 2.0, 5.0)  # waits before restarts 1, 2, 3 ... of a crash loop
STOP_GRACE_S = 10.0  # how long a stopping controller may take before it is killed


class Supervisor:
    """Runs ``command`` until told to stop; ``pid_file`` holds the running controller's pid."""

    def __init__(self, command: Sequence[str], pid_file: Path | None = None) -> None:
        self.command = list(command)
        self.pid_file = pid_file
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop the controller (``signum`` passed on) and start no other."""
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    def run(self) -> int:
        """Start, wait, restart; the last controller's exit code once stopped."""
        failures = 0
        while True:
            started = time.monotonic()
            self.child = subprocess.Popen(self.command)
            if self.pid_file is not None:
                self.pid_file.write_text(f"{self.child.pid}\n")
            log.info("controller started (pid %d)", self.child.pid)
            code = self._wait(self.child)
            ran = time.monotonic() - started
            if self.stopping.is_set():
                return code
            failures = 0 if ran >= STABLE_S else failures + 1
            delay = BACKOFF_S[min(failures, len(BACKOFF_S)) - 1] if failures else 0.0
            self.restarts += 1
            log.warning(
                "controller (pid %d) exited with %s after %.1f s; restart %d in %.1f s",
                self.child.pid,
                _describe(code),
                ran,
                self.restarts,
                delay,
            )
            if self._pause(delay):
                return code

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` or until stopped; whether stopped. Slept in steps rather than
        ``Event.wait(timeout)``, whose deadline is absolute and never comes under a
        shifted clock (libfaketime in the tests)."""
        end = time.monotonic() + seconds
        while not self.stopping.is_set() and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        return self.stopping.is_set()

    def _wait(self, child: subprocess.Popen[bytes]) -> int:
        while True:
            try:
                return child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if self.stopping.is_set():
                    try:
                        return child.wait(timeout=STOP_GRACE_S)
                    except subprocess.TimeoutExpired:
                        log.error("controller did not stop in %.0f s: killed", STOP_GRACE_S)
                        child.kill()
                        return child.wait()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def supervise(run_args: Sequence[str], pid_file: Path | None = None) -> int:
    """``vvk-pbx run run_args`` under a ``Supervisor``, with SIGTERM/SIGINT handled."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    supervisor = Supervisor([sys.executable, "-m", "vvk_pbx", "run", *run_args], pid_file)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: supervisor.stop(number))
    code = supervisor.run()
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell says

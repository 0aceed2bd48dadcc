"""The local Asterisk 22: a cached Debian sid root filesystem run in a chroot.

Debian 12 has no Asterisk package, so ``debootstrap`` builds a sid root
filesystem with the packages in ``packages/asterisk-rootfs.txt`` (the same
list the Docker image installs). It is cached under ``~/.cache/vvk-pbx/``,
keyed on that list, so a second ``up`` only renders the config and starts.
Asterisk shares the host's network: ARI on 127.0.0.1:<ari_port>, SIP on
127.0.0.1:<sip_port>. See ``../shared/design/asterisk-notes.md``.

Errors::

    ProvisionError(RuntimeError)   this machine cannot run it (not root, not
                                   Debian, debootstrap failed, ARI never
                                   answered); the message says what to do
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from vvk_pbx.asterisk.prompts import build_prompts
from vvk_pbx.asterisk.render import PACKAGES_DIR, ChrootPaths, render_config
from vvk_pbx.config.model import Settings
from vvk_pbx.domain.calendar import Calendar

Log = Callable[[str], None]

DOCKER_HINT = (
    "On other machines run Asterisk from docker/ instead: "
    "`docker compose -f docker/compose.yaml up`."
)


CHROOT = ChrootPaths()


class ProvisionError(RuntimeError):
    """The local Asterisk cannot be built, started or reached; the message says why."""


def _default_dir(env: str, fallback: Path) -> Path:
    value = os.environ.get(env)
    return Path(value) if value else fallback


@dataclass(frozen=True)
class Layout:
    """Where the local instance lives on the host.

    ``cache`` (``$VVK_PBX_CACHE``, default ``~/.cache/vvk-pbx``) holds the root
    filesystem and the prompts; ``state`` (``$VVK_PBX_STATE``, default
    ``~/.local/state/vvk-pbx``) the ARI password and the pid file.
    """

    cache: Path
    state: Path
    packages_file: Path = PACKAGES_DIR / "asterisk-rootfs.txt"

    @classmethod
    def default(cls) -> Layout:
        home = Path.home()
        return cls(
            cache=_default_dir("VVK_PBX_CACHE", home / ".cache" / "vvk-pbx"),
            state=_default_dir("VVK_PBX_STATE", home / ".local" / "state" / "vvk-pbx"),
        )

    @property
    def packages(self) -> list[str]:
        lines = self.packages_file.read_text(encoding="utf-8").splitlines()
        return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]

    @property
    def rootfs_home(self) -> Path:
        digest = hashlib.sha256(self.packages_file.read_bytes()).hexdigest()[:16]
        return self.cache / f"asterisk-rootfs-{digest}"

    @property
    def rootfs(self) -> Path:
        return self.rootfs_home / "rootfs"

    @property
    def stamp(self) -> Path:
        return self.rootfs_home / "rootfs.ok"

    @property
    def pid_file(self) -> Path:
        return self.state / "asterisk.pid"

    @property
    def password_file(self) -> Path:
        return self.state / "ari-password"

    @property
    def clock_file(self) -> Path:
        """A running controller's clock shift, for the CLI (``stores.cli_clock``)."""
        return self.state / "clock.json"

    @property
    def phone_secrets_file(self) -> Path:
        return self.state / "phone-secrets.json"

    def inside(self, chroot_path: str) -> Path:
        """A path inside the root filesystem, seen from the host."""
        return self.rootfs / chroot_path.lstrip("/")


def check_host() -> None:
    """Raise ``ProvisionError`` unless this is a Debian machine where we are root."""
    if os.geteuid() != 0:
        raise ProvisionError(
            "vvk-pbx asterisk needs root: it builds a root filesystem with debootstrap "
            f"and runs Asterisk in a chroot. Run it as root or with sudo. {DOCKER_HINT}"
        )
    if not Path("/etc/debian_version").exists() or shutil.which("debootstrap") is None:
        raise ProvisionError(
            "vvk-pbx asterisk runs on Debian with debootstrap installed "
            f"(./scripts/setup installs it). {DOCKER_HINT}"
        )


def debian_mirror(sources: Path = Path("/etc/apt/sources.list.d/debian.sources")) -> str:
    """The first ``URIs:`` of the host's apt sources, so no host name is written in the repo."""
    try:
        for line in sources.read_text(encoding="utf-8").splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    except OSError:
        pass
    list_file = Path("/etc/apt/sources.list")
    if list_file.exists():
        for line in list_file.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "deb":
                return next(p for p in parts[1:] if p.startswith("http"))
    raise ProvisionError(f"no Debian mirror found in {sources} or {list_file}")


def build_rootfs(layout: Layout, log: Log) -> Path:
    """Build the cached root filesystem unless it exists. Returns its path.

    Raises ``ProvisionError`` when debootstrap fails (its log's tail is in the
    message).
    """
    if layout.stamp.exists() and layout.inside("/usr/sbin/asterisk").exists():
        log(f"rootfs cache hit: {layout.rootfs}")
        return layout.rootfs
    check_host()
    layout.rootfs_home.mkdir(parents=True, exist_ok=True)
    building = layout.rootfs_home / "rootfs.building"
    shutil.rmtree(building, ignore_errors=True)
    shutil.rmtree(layout.rootfs, ignore_errors=True)
    mirror = debian_mirror()
    packages = ",".join(layout.packages)
    log(f"building the Asterisk rootfs (debootstrap sid, {packages}); this takes a minute")
    started = time.monotonic()
    debootstrap_log = layout.rootfs_home / "debootstrap.log"
    with debootstrap_log.open("w") as out:
        result = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={packages}",
                "sid",
                str(building),
                mirror,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(debootstrap_log.read_text(errors="replace").splitlines()[-15:])
        raise ProvisionError(f"debootstrap failed (log: {debootstrap_log}):\n{tail}")
    subprocess.run(["chroot", str(building), "apt-get", "clean"], check=False)
    for junk in ("usr/share/doc", "usr/share/man", "usr/share/locale"):
        shutil.rmtree(building / junk, ignore_errors=True)
    building.rename(layout.rootfs)
    versions = subprocess.run(
        ["chroot", str(layout.rootfs), "dpkg-query", "-W", "-f=${Package} ${Version}\n"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    (layout.rootfs_home / "versions.txt").write_text(versions, encoding="utf-8")
    layout.stamp.write_text(f"built in {time.monotonic() - started:.0f} s\n", encoding="utf-8")
    log(f"rootfs built in {time.monotonic() - started:.0f} s: {layout.rootfs}")
    return layout.rootfs


def phone_secrets(settings: Settings, layout: Layout) -> dict[str, str]:
    """Each extension's SIP password for registering phones, generated once, kept 0600 in ``state``.

    A new extension gets a new password; existing ones never change.
    """
    secrets_file = layout.phone_secrets_file
    known: dict[str, str] = {}
    if secrets_file.exists():
        known = json.loads(secrets_file.read_text(encoding="utf-8"))
    wanted = {ext: known.get(ext) or secrets.token_urlsafe(16) for ext, _ in settings.extensions()}
    if wanted != known:
        layout.state.mkdir(parents=True, exist_ok=True)
        fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(wanted, out, indent=1)
    return wanted


def ari_password(layout: Layout) -> str:
    """The ARI password, generated on first use and kept in ``state`` with mode 0600."""
    if layout.password_file.exists():
        return layout.password_file.read_text(encoding="utf-8").strip()
    layout.state.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    fd = os.open(layout.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password


def install_config(
    settings: Settings, calendar: Calendar, layout: Layout, now: datetime, log: Log
) -> ChrootPaths:
    """Render Asterisk's config and the prompts into the root filesystem."""
    paths = CHROOT
    secrets_ = (
        phone_secrets(settings, layout) if settings.asterisk.phones.mode == "register" else None
    )
    files = render_config(
        settings, calendar, now, ari_password(layout), paths, phone_secrets=secrets_
    )
    etc = layout.inside(paths.etc)
    etc.mkdir(parents=True, exist_ok=True)
    for old in etc.glob("*.conf"):
        old.unlink()
    for name, text in files.items():
        target = etc / name
        target.write_text(text, encoding="utf-8")
        target.chmod(0o600 if name == "ari.conf" else 0o644)
    # Without the host name in /etc/hosts Asterisk resolves it (and
    # A.ROOT-SERVERS.NET) through DNS on every call; with no DNS here calls pile
    # up. Any stray query goes to loopback and fails at once.
    hostname = os.uname().nodename
    layout.inside("/etc/hosts").write_text(
        f"127.0.0.1 localhost {hostname}\n::1 localhost ip6-localhost ip6-loopback {hostname}\n",
        encoding="utf-8",
    )
    layout.inside("/etc/resolv.conf").write_text(
        "# no DNS for the local Asterisk\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        encoding="utf-8",
    )
    build_prompts(settings, calendar, layout.cache / "sounds", layout.inside(paths.sounds), log)
    return paths


def reload_dialplan(settings: Settings, calendar: Calendar, layout: Layout, now: datetime) -> None:
    """Re-render the config (the fallback follows the hours) and reload the running dialplan."""
    install_config(settings, calendar, layout, now, lambda _: None)
    cli(layout, "dialplan reload")


def running_pid(layout: Layout) -> int | None:
    """The pid of the local Asterisk if it runs, else None.

    The pid file alone is not trusted: after a reboot its number may belong to
    any process. Only a live (not zombie) ``asterisk`` whose root directory is
    our root filesystem counts, so ``down`` can never signal a stranger.
    """
    try:
        pid = int(layout.pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return pid if is_our_asterisk(pid, layout.rootfs) else None


def is_our_asterisk(pid: int, rootfs: Path) -> bool:
    proc = Path(f"/proc/{pid}")
    try:
        comm = (proc / "comm").read_text().strip()
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        root = (proc / "root").resolve()
    except (OSError, IndexError):
        return False
    return comm == "asterisk" and state not in ("Z", "X") and root == rootfs.resolve()


def check_ports(settings: Settings) -> None:
    """Raise ``ProvisionError`` naming the port if SIP (UDP) or ARI (TCP) is taken on 127.0.0.1.

    Asterisk itself starts anyway and only logs the failed bind, which would
    look like a healthy start.
    """
    wanted = (
        (socket.SOCK_DGRAM, settings.asterisk.sip_port, "SIP (UDP)"),
        (socket.SOCK_STREAM, settings.asterisk.ari_port, "ARI/HTTP (TCP)"),
    )
    for kind, port, what in wanted:
        with socket.socket(socket.AF_INET, kind) as probe:
            if kind == socket.SOCK_STREAM:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise ProvisionError(
                    f"{what} port {port} on 127.0.0.1 is already in use by another program "
                    f"(see `ss -lunpt | grep {port}`); stop it or change [asterisk] in the config"
                ) from None


def ari_ready(settings: Settings, layout: Layout) -> bool:
    """Whether ARI answers ``GET /ari/asterisk/info`` with our credentials."""
    url = f"http://127.0.0.1:{settings.asterisk.ari_port}/ari/asterisk/info"
    token = base64.b64encode(
        f"{settings.asterisk.ari_user}:{ari_password(layout)}".encode()
    ).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def up(
    settings: Settings,
    calendar: Calendar,
    layout: Layout,
    now: datetime,
    log: Log,
    timeout: float = 60,
) -> int:
    """Build (or reuse) the rootfs, render the config, start Asterisk, wait for ARI. Returns the pid.

    A running instance that answers gets the config and the prompts rendered
    again and reloaded (``core reload``), so a person added to the directory
    gets a phone and a spoken name without a restart; calls in progress go on.
    Raises ``ProvisionError``.
    """
    check_host()
    pid = running_pid(layout)
    if pid is not None:
        if ari_ready(settings, layout):
            install_config(settings, calendar, layout, now, log)
            cli(layout, "core reload")
            log(f"Asterisk already runs (pid {pid}); its config and prompts are reloaded")
            return pid
        raise ProvisionError(
            f"Asterisk pid {pid} runs but ARI does not answer: run `vvk-pbx asterisk down`"
        )
    started = time.monotonic()
    check_ports(settings)
    build_rootfs(layout, log)
    paths = install_config(settings, calendar, layout, now, log)
    # The CDR file outlives a start: a call the fallback handled before Asterisk
    # restarted must still reach the call log (issue 13).
    cdr = layout.inside(paths.log) / "cdr-custom"
    kept = layout.rootfs_home / "cdr-custom.kept"  # outside the folders emptied below
    if cdr.is_dir():
        shutil.rmtree(kept, ignore_errors=True)
        cdr.rename(kept)
    for directory in paths.runtime_dirs():
        shutil.rmtree(layout.inside(directory), ignore_errors=True)
        layout.inside(directory).mkdir(parents=True)
    if kept.is_dir():
        kept.rename(cdr)
    cdr.mkdir(exist_ok=True)
    layout.inside(paths.recordings).mkdir(parents=True, exist_ok=True)
    # astkeydir: Asterisk logs an error at every start without it.
    layout.inside("/var/lib/asterisk/keys").mkdir(parents=True, exist_ok=True)
    stdout = layout.inside(paths.log) / "stdout.log"
    with stdout.open("w") as out:
        process = subprocess.Popen(
            ["chroot", str(layout.rootfs), "asterisk", "-f", "-C", paths.asterisk_conf],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so down() can end all of it
        )
    layout.state.mkdir(parents=True, exist_ok=True)
    layout.pid_file.write_text(f"{process.pid}\n", encoding="utf-8")
    deadline = time.monotonic() + timeout
    while not ari_ready(settings, layout):
        if process.poll() is not None:
            tail = "\n".join(stdout.read_text(errors="replace").splitlines()[-20:])
            raise ProvisionError(f"Asterisk exited while starting (log: {stdout}):\n{tail}")
        if time.monotonic() > deadline:
            raise ProvisionError(
                f"ARI did not answer within {timeout:.0f} s (logs: {layout.inside(paths.log)})"
            )
        time.sleep(0.1)
    log(
        f"Asterisk up (pid {process.pid}) in {time.monotonic() - started:.1f} s; "
        f"ARI on http://127.0.0.1:{settings.asterisk.ari_port}/ari, SIP on 127.0.0.1:{settings.asterisk.sip_port}"
    )
    return process.pid


def down(layout: Layout, log: Log, timeout: float = 15) -> bool:
    """Stop the local Asterisk: ``core stop now``, then SIGTERM, then SIGKILL. False if none ran."""
    pid = running_pid(layout)
    if pid is None:
        layout.pid_file.unlink(missing_ok=True)
        log("Asterisk is not running")
        return False
    with contextlib.suppress(ProvisionError):  # the signals below still stop it
        cli(layout, "core stop now", timeout=5)
    for sig, wait in ((None, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _gone(pid):
                layout.pid_file.unlink(missing_ok=True)
                log(f"Asterisk stopped (pid {pid})")
                return True
            time.sleep(0.1)
    layout.pid_file.unlink(missing_ok=True)
    return True


def _gone(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        waited = 0  # not our child: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return waited == pid


def cli(layout: Layout, command: str, timeout: float = 15) -> str:
    """Run one Asterisk CLI command (``asterisk -rx``) and return its output."""
    paths = CHROOT
    try:
        result = subprocess.run(
            ["chroot", str(layout.rootfs), "asterisk", "-C", paths.asterisk_conf, "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProvisionError(
            f"asterisk -rx {command!r} did not answer in {timeout:.0f} s"
        ) from None
    if result.returncode != 0:
        raise ProvisionError(
            f"asterisk -rx {command!r} failed: {result.stderr.strip() or result.stdout.strip()}"
        )
    return result.stdout

"""The package stands alone: a normal (not editable) install, away from the checkout, renders
the dialplan and speaks the prompts from its own package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_CONFIG


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, installed into a folder of its own."""
    work = tmp_path_factory.mktemp("package")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(work / "wheel"), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    [wheel] = (work / "wheel").glob("vvk_pbx-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for needed in (
        "vvk_pbx/resources/dialplan/extensions.conf.j2",
        "vvk_pbx/resources/sounds/catalogue.toml",
        "vvk_pbx/resources/packages/asterisk-rootfs.txt",
        "vvk_pbx/http/pages/console.html",
        "vvk_pbx/http/pages/app.js",
        "vvk_pbx/http/pages/style.css",
        "vvk_pbx/storage/migrations/versions/0001_call_log.py",
    ):
        assert needed in names, needed
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return target


def vvk(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``vvk-pbx ARGS`` from the installed copy, run outside the checkout."""
    code = (
        "import sys, vvk_pbx; assert vvk_pbx.__file__.startswith(sys.argv[1]), vvk_pbx.__file__;"
        "sys.argv = ['vvk-pbx', *sys.argv[2:]]; from vvk_pbx.cli import main; main()"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "VVK_PBX_CACHE": str(cwd / "cache"),
           "VVK_PBX_STATE": str(cwd / "state")}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", code, str(site), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_installed_package_renders_the_dialplan_and_asterisks_config(
    installed: Path, tmp_path: Path
) -> None:
    config = tmp_path / "site.toml"
    shutil.copy(SAMPLE_CONFIG, config)
    result = vvk(installed, tmp_path, "dialplan", "render", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "[vvk-fallback-inbound]" in result.stdout
    result = vvk(installed, tmp_path, "asterisk", "render", "--out", "etc", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "[from-trunk]" in (tmp_path / "etc" / "extensions.conf").read_text()


def test_an_installed_package_speaks_the_prompts(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    shutil.copy(SAMPLE_CONFIG, config)
    result = vvk(installed, tmp_path, "sounds", "build", "--out", "snd", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "snd" / "welcome.wav").stat().st_size > 1000
    assert (tmp_path / "snd" / "name-1101.wav").is_file()

"""The Docker files, checked statically: no Docker engine runs on these machines."""

from __future__ import annotations

from typing import Any

import yaml
from typer.testing import CliRunner

from tests.conftest import ROOT
from vvk_pbx.cli import app

DOCKER = ROOT / "docker"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


def test_asterisk_image_installs_the_same_package_list_as_the_local_provisioning() -> None:
    dockerfile = (DOCKER / "asterisk" / "Dockerfile").read_text()
    assert "FROM debian:sid" in dockerfile
    assert "COPY packages/asterisk-rootfs.txt" in dockerfile
    assert (ROOT / "packages" / "asterisk-rootfs.txt").exists()


def test_compose_builds_from_existing_dockerfiles_and_has_postgres() -> None:
    services = compose()["services"]
    assert {"render", "asterisk", "controller", "postgres"} <= set(services)
    for name in ("render", "asterisk", "controller"):
        build = services[name]["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve().exists()


def test_compose_render_command_is_a_real_cli_command() -> None:
    command = compose()["services"]["render"]["command"]
    result = CliRunner().invoke(app, [*command[:2], "--help"])
    assert result.exit_code == 0
    for option in command[2:]:
        if option.startswith("--"):
            assert option in result.stdout


def test_compose_controller_runs_the_real_run_command_against_postgres() -> None:
    controller = compose()["services"]["controller"]
    command = controller["command"]
    result = CliRunner().invoke(app, [command[0], "--help"])
    assert result.exit_code == 0
    for option in command[1:]:
        if option.startswith("--"):
            assert option in result.stdout
    assert controller["network_mode"] == "host"  # ARI stays on 127.0.0.1
    assert controller["environment"]["VVK_PBX_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "state:/var/lib/vvk-pbx" in controller["volumes"]  # the ARI password


def test_the_controller_image_installs_the_package_normally() -> None:
    dockerfile = (DOCKER / "controller" / "Dockerfile").read_text()
    assert "pip install --no-cache-dir ." in dockerfile
    assert "-e ." not in dockerfile, "an editable install would need the checkout at run time"
    for folder in ("src", "dialplan", "sounds", "packages"):
        assert f"COPY {folder} ./{folder}" in dockerfile, folder

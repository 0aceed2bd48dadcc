"""The ``vvk-pbx`` commands, through the installed console script and typer's runner."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT, SAMPLE_CONFIG, STHLM
from vvk_pbx.cli import _ledger_status, app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args])
    return result.exit_code, result.stdout, result.stderr


def hours_at(at: str) -> dict[str, object]:
    code, out, err = run("hours", "--config", str(SAMPLE_CONFIG), "--at", at, "--json")
    assert code == 0, err
    parsed: dict[str, object] = json.loads(out)
    return parsed


def test_after_noon_on_the_day_before_ascension_is_closed() -> None:
    assert hours_at("2026-05-13T12:30") == {
        "open": False,
        "reason": "Stängt – Dag före Kristi himmelsfärdsdag: 08:00–12:00",
        "next_change": "2026-05-15T08:00:00+02:00",
    }


def test_morning_on_the_day_before_ascension_is_open() -> None:
    result = hours_at("2026-05-13T11:00")
    assert result["open"] is True
    assert result["next_change"] == "2026-05-13T12:00:00+02:00"


def test_at_with_an_offset_is_respected() -> None:
    # 09:30 UTC is 11:30 in Stockholm (summer time): open; 10:30 UTC is 12:30: closed.
    assert hours_at("2026-05-13T09:30+00:00")["open"] is True
    assert hours_at("2026-05-13T10:30:00Z")["open"] is False


def test_year_json_lists_differing_days() -> None:
    code, out, _ = run("hours", "--config", str(SAMPLE_CONFIG), "--year", "2026", "--json")
    assert code == 0
    days = {d["date"]: d for d in json.loads(out)}
    assert days["2026-12-24"] == {
        "date": "2026-12-24",
        "intervals": [["08:00", "12:00"]],
        "reason": "Julafton",
    }
    assert days["2026-12-25"]["intervals"] == []
    assert days["2026-08-21"]["reason"] == "Personaldag, växeln stängd"
    assert days["2026-09-13"]["intervals"] == [["09:00", "12:00"]]
    assert "2026-12-23" not in days


def test_year_table_is_readable() -> None:
    code, out, _ = run("hours", "--config", str(SAMPLE_CONFIG), "--year", "2026")
    assert code == 0
    assert "Dag före Kristi himmelsfärdsdag" in out
    assert "2026-06-05" in out


def test_a_units_phone_hours_are_shown_with_unit() -> None:
    code, out, err = run(
        "hours",
        "--config",
        str(SAMPLE_CONFIG),
        "--unit",
        "bygg-miljo",
        "--at",
        "2026-11-30T08:30",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out) == {
        "open": False,
        "reason": "Stängt – Vardag: 09:00–11:00, 13:00–15:00",
        "next_change": "2026-11-30T09:00:00+01:00",
    }
    code, out, _ = run(
        "hours", "--config", str(SAMPLE_CONFIG), "--unit", "bygg-miljo", "--year", "2026"
    )
    assert code == 0
    assert "Bygg och miljö, telefontid" in out
    # Christmas Eve: the half-day rule keeps the unit's morning hours only
    assert "2026-12-24 │ torsdag │ 09:00–11:00" in out
    # a unit without hours of its own follows the switchboard
    assert hours_at("2026-11-30T08:30")["open"] is True
    code, out, _ = run(
        "hours",
        "--config",
        str(SAMPLE_CONFIG),
        "--unit",
        "ifo",
        "--at",
        "2026-11-30T08:30",
        "--json",
    )
    assert json.loads(out)["open"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--unit", "ekonomi", "--at", "2026-05-13T11:00"], "no unit 'ekonomi' (units: "),
        (["--at", "tomorrow"], "is not an ISO 8601 time"),
        (["--at", "9999-12-31T12:00"], "covers 1953–2100"),
        (["--at", "0001-01-01T00:00+05:00"], "covers 1953–2100"),
        (["--year", "2101"], "less than or equal to 2100"),
        (["--at", "2026-05-13T11:00", "--year", "2026"], "give one of --year or --at, not both"),
    ],
)
def test_bad_hours_arguments_are_explained(args: list[str], message: str) -> None:
    code, _, err = run("hours", "--config", str(SAMPLE_CONFIG), *args)
    assert code == 2
    assert message in err


# A process whose command line is a controller's (`... vvk-pbx run`), doing nothing.
CONTROLLER_LOOKALIKE = [sys.executable, "-c", "import time; time.sleep(60)", "vvk-pbx", "run"]


@pytest.fixture
def shifted_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A running `vvk-pbx run --clock 2026-11-30T10:00` as the CLI sees one: a live process
    of that name and the clock shift it publishes in the state directory."""
    process = subprocess.Popen(CONTROLLER_LOOKALIKE)
    monkeypatch.setenv("VVK_PBX_STATE", str(tmp_path))
    offset = (datetime(2026, 11, 30, 10, 0, tzinfo=STHLM) - datetime.now(UTC)).total_seconds()
    (tmp_path / "clock.json").write_text(json.dumps({"offset_s": offset, "pid": process.pid}))
    try:
        yield
    finally:
        process.kill()
        process.wait()


def test_hours_with_no_option_is_the_state_now(shifted_controller: None) -> None:
    code, out, err = run("hours", "--config", str(SAMPLE_CONFIG), "--json")
    assert code == 0, err
    # Monday 10:00 on the controller's clock: open until lunch.
    assert json.loads(out) == {
        "open": True,
        "reason": "Öppet – Vardag: 08:00–12:00, 13:00–16:00",
        "next_change": "2026-11-30T12:00:00+01:00",
    }
    assert "clock shifted as the running controller's" in err


def test_the_cli_decides_on_the_running_controllers_clock(
    shifted_controller: None, tmp_path: Path
) -> None:
    db = ["--database", str(tmp_path / "calls.sqlite3")]
    result = runner.invoke(
        app, ["referrals", "set", "1103", "--reason", "2", "--until", "2026-11-30T14:30", *db]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["start"].startswith("2026-11-30T10:00")
    # No --at: what the controller (and a caller) sees now.
    result = runner.invoke(app, ["referrals", "list", "--json", *db])
    assert [r["extension"] for r in json.loads(result.stdout)] == ["1103"]


def test_a_dead_controllers_clock_is_not_followed(tmp_path: Path) -> None:
    process = subprocess.Popen(CONTROLLER_LOOKALIKE)
    process.kill()
    process.wait()
    (tmp_path / "clock.json").write_text(json.dumps({"offset_s": -1e6, "pid": process.pid}))
    from vvk_pbx.asterisk.local import Layout
    from vvk_pbx.stores import cli_clock

    clock, note = cli_clock(Layout(tmp_path, tmp_path))
    assert (clock.shifted, note) == (False, None)


def test_check_config_ok() -> None:
    code, out, _ = run("check-config", str(SAMPLE_CONFIG))
    assert code == 0
    assert "OK (2 operators, 4 units, 12 staff, 3 on-call services)" in out


def test_check_config_lists_every_error_one_per_line(tmp_path: Path) -> None:
    text = SAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text.replace('lunch = "12:00-13:00"', 'lunhc = "12:00-13:00"', 1)
    text = text.replace('friday = ["08:00-16:00"]', 'friday = ["08:00-16:61"]', 1)
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    code, _, err = run("check-config", str(bad))
    assert code == 2
    lines = err.strip().splitlines()
    assert lines == [
        f"{bad}: hours.lunhc: unknown key (did you mean 'lunch'?)",
        f"{bad}: hours.weekly.friday[0]: '16:61' is an impossible time: "
        "hours go 00–23 and minutes 00–59",
        "2 error(s) in the config.",
    ]


def test_hours_with_a_broken_config_exits_with_the_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[site]\nname = 'x'\n", encoding="utf-8")
    code, _, err = run("hours", "--config", str(bad), "--at", "2026-05-13T11:00")
    assert code == 2
    assert f"{bad}: hours: required key is missing" in err


def test_console_script_is_installed() -> None:
    exe = shutil.which("vvk-pbx") or str(ROOT / ".venv" / "bin" / "vvk-pbx")
    proc = subprocess.run(
        [exe, "hours", "--at", "2026-12-24T11:59", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout)["open"] is True


def test_asterisk_up_as_non_root_points_to_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    code, _, err = run("asterisk", "up", "--config", str(SAMPLE_CONFIG))
    assert code == 1
    assert "needs root" in err
    assert "docker compose -f docker/compose.yaml up" in err


def test_asterisk_render_writes_a_whole_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VVK_PBX_STATE", str(tmp_path / "state"))
    code, _, err = run(
        "asterisk", "render", "--out", str(tmp_path / "etc"), "--config", str(SAMPLE_CONFIG)
    )
    assert code == 0, err
    names = {p.name for p in (tmp_path / "etc").iterdir()}
    assert {"pjsip.conf", "extensions.conf", "extensions-fallback.conf", "ari.conf"} <= names
    password = (tmp_path / "state" / "ari-password").read_text().strip()
    assert f"password = {password}" in (tmp_path / "etc" / "ari.conf").read_text()
    assert (tmp_path / "state" / "ari-password").stat().st_mode & 0o077 == 0


def test_dialplan_render_prints_the_fallback() -> None:
    code, out, _ = run(
        "dialplan", "render", "--config", str(SAMPLE_CONFIG), "--at", "2026-12-01T10:00"
    )
    assert code == 0
    assert "[vvk-fallback-inbound]" in out
    assert "exten => 20261224,1,NoOp(Julafton: 08:00–12:00)" in out


def test_simulate_christmas_eve_after_noon_is_the_answering_machine() -> None:
    code, out, err = run(
        "simulate",
        "--config",
        str(SAMPLE_CONFIG),
        "--at",
        "2026-12-24T12:30",
        "--from",
        "+46701234567",
        "--to",
        "0123-19100",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["action"] == "answering_machine"
    assert result["kind"] == "inbound"
    assert result["trace"][-1] == {
        "rule": "H5",
        "decision": "central answering machine; opens again 2026-12-28T08:00:00+01:00",
    }


def test_simulate_from_an_extension_is_internal() -> None:
    code, out, _ = run(
        "simulate",
        "--config",
        str(SAMPLE_CONFIG),
        "--at",
        "2026-11-30T10:00",
        "--from",
        "1101",
        "--to",
        "1202",
    )
    assert code == 0
    assert out.splitlines()[0] == "2026-11-30T10:00:00+01:00 internal call: extension -> 1202"


def test_sounds_build_speaks_every_prompt_as_8_khz_wav(tmp_path: Path) -> None:
    import wave

    out = tmp_path / "sounds"
    result = runner.invoke(app, ["sounds", "build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.stem for p in out.glob("*.wav")}
    assert {"name-1101", "reason-2", "ord-7", "month-12", "code-referred", "welcome"} <= names
    with wave.open(str(out / "name-1101.wav")) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert audio.getnframes() > 0


def test_sounds_build_without_a_local_asterisk_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VVK_PBX_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(app, ["sounds", "build"])
    assert result.exit_code == 1
    assert "there is no local Asterisk yet" in result.output


def test_referrals_from_the_command_line(tmp_path: Path) -> None:
    db = ["--database", f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"]
    result = runner.invoke(
        app,
        ["referrals", "set", "1101", "--reason", "4", "--from", "2026-12-21T00:00",
         "--until", "2027-01-04T08:00", "--note", "Semester", *db],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"] == "cli"
    result = runner.invoke(app, ["referrals", "list", "--at", "2026-12-22T10:00", "--json", *db])
    [row] = json.loads(result.stdout)
    assert (row["extension"], row["phrase"], row["end"]) == (
        "1101",
        "har semester",
        "2027-01-04T08:00:00+01:00",
    )
    result = runner.invoke(app, ["referrals", "list", "--at", "2026-12-20T10:00", "--json", *db])
    assert json.loads(result.stdout) == [], "a future referral waits its turn (R3)"


@pytest.mark.parametrize("form", ["path", "sqlite:///"])
def test_the_database_may_be_a_plain_file_or_a_url_without_a_driver(
    tmp_path: Path, form: str
) -> None:
    file = tmp_path / "calls.sqlite3"
    db = ["--database", str(file) if form == "path" else f"sqlite:///{file}"]
    result = runner.invoke(
        app,
        ["referrals", "set", "1303", "--reason", "2", "--from", "2026-11-30T09:00",
         "--until", "2026-11-30T15:30", *db],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert file.is_file()
    result = runner.invoke(app, ["referrals", "list", "--at", "2026-11-30T10:00", *db])
    assert result.exit_code == 0, result.output
    # Bygg och miljö answers from 09:00 the next day (its phone hours, A7): the
    # operators see both times (the table may wrap the cell).
    assert "2026-11-30 15:30 (nås" in result.stdout
    assert "2026-12-01" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1999", "--reason", "2", "--until", "2026-12-01T10:00"], "1999 is not a staff extension"),
        (["1101", "--reason", "42", "--until", "2026-12-01T10:00"], "no reason code 42"),
        (
            ["1101", "--reason", "2", "--from", "2026-12-01T10:00", "--until", "2026-12-01T09:00"],
            "the return time must be after the start",
        ),
        (["1101", "--reason", "2", "--until", "2026-12-01"], "has no time of day"),
        (["1101", "--reason", "2", "--until", "9999-12-31T23:59-05:00"], "not within 1953–2100"),
    ],
)
def test_bad_referrals_are_refused_and_nothing_is_stored(
    tmp_path: Path, args: list[str], message: str
) -> None:
    db = ["--database", f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"]
    result = runner.invoke(app, ["referrals", "set", *args, *db])
    assert result.exit_code == 2
    assert message in result.output


def test_the_callback_ledger_command(tmp_path: Path) -> None:
    db = ["--database", f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"]
    # A report on a database that is not there says so, and makes none (a typo
    # must not look like an empty ledger).
    for command in (["callbacks"], ["referrals", "list"], ["calls", "list"]):
        result = runner.invoke(app, [*command, *db])
        assert result.exit_code == 1, result.output
        assert "no call log there" in result.output
    assert not (tmp_path / "calls.sqlite3").exists()
    runner.invoke(app, ["pins", "set", "1101", *db])  # a command that writes makes it
    result = runner.invoke(app, ["callbacks", "--json", *db])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    result = runner.invoke(app, ["callbacks", "--unit", "nope", *db])
    assert result.exit_code == 2 and "no unit 'nope'" in result.output


def test_pins_are_set_and_refused_clearly(tmp_path: Path) -> None:
    db = ["--database", f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"]
    result = runner.invoke(app, ["pins", "set", "1101", *db])
    assert result.exit_code == 0 and result.stdout.startswith("PIN for 1101: ")
    result = runner.invoke(app, ["pins", "set", "1101", "--pin", "12", *db])
    assert result.exit_code == 2 and "4 to 8 digits" in result.output
    result = runner.invoke(app, ["pins", "set", "1999", *db])
    assert result.exit_code == 2 and "is not a staff or operator" in result.output
    # An operator has a PIN too: it is the web login (S1).
    result = runner.invoke(app, ["pins", "set", "1001", "--pin", "4711", *db])
    assert result.exit_code == 0, result.output


def test_tokens_are_shown_once_listed_without_secrets_and_revoked(tmp_path: Path) -> None:
    db = ["--database", f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"]
    result = runner.invoke(
        app, ["tokens", "create", "--role", "reports", "--name", "intranet", *db]
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("vvk_") and len(secret) > 40, "only the secret goes to stdout"
    for args, hint in (
        (["--role", "reports", "--name", "intranet"], "exists already"),
        (["--role", "staff", "--name", "x"], "not staff"),
        (["--role", "boss", "--name", "x"], "not boss"),
        (["--role", "admin", "--name", "a b"], "letters, digits"),
    ):
        result = runner.invoke(app, ["tokens", "create", *args, *db])
        assert result.exit_code == 2 and hint in result.output, result.output
    result = runner.invoke(app, ["tokens", "list", "--json", *db])
    [row] = json.loads(result.stdout)
    assert (row["name"], row["role"], row["revoked_at"]) == ("intranet", "reports", None)
    listed = runner.invoke(app, ["tokens", "list", *db]).stdout
    assert "intranet" in listed and secret not in listed
    assert runner.invoke(app, ["tokens", "revoke", "intranet", *db]).exit_code == 0
    result = runner.invoke(app, ["tokens", "revoke", "intranet", *db])
    assert result.exit_code == 1 and "no token 'intranet' in force" in result.output
    [row] = json.loads(runner.invoke(app, ["tokens", "list", "--json", *db]).stdout)
    assert row["revoked_at"] is not None


@pytest.mark.parametrize(
    ("row", "shown"),
    [
        ({"status": "new", "overdue": False, "late": False}, "ny"),
        ({"status": "deleted", "overdue": True, "late": False}, "FÖRSENAD raderad"),
        ({"status": "called_back", "overdue": False, "late": True}, "återringd (sent)"),
        ({"status": "heard", "overdue": False, "late": False}, "avlyssnad"),
    ],
)
def test_the_ledger_table_speaks_swedish(row: dict[str, object], shown: str) -> None:
    assert _ledger_status(row) == shown


def test_notes_and_names_are_shown_as_written_never_as_markup(tmp_path: Path) -> None:
    db = ["--database", str(tmp_path / "calls.sqlite3")]
    note = "möte [/x] [bold]om [red]budget"
    result = runner.invoke(
        app,
        ["referrals", "set", "1101", "--reason", "2", "--from", "2026-11-30T09:00",
         "--until", "2026-11-30T15:30", "--note", note, *db],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["referrals", "list", "--at", "2026-11-30T10:00", *db])
    assert result.exit_code == 0, result.output
    # Shown as typed (the table may wrap the cell), none of it taken for markup.
    for piece in ("möte [/x]", "[bold]om", "[red]budget"):
        assert piece in result.stdout


def test_export_refuses_options_that_contradict_each_other(tmp_path: Path) -> None:
    db = ["--database", str(tmp_path / "calls.sqlite3")]
    runner.invoke(app, ["pins", "set", "1101", *db])  # makes the database
    result = runner.invoke(app, ["calls", "export", "--json", "--format", "csv", *db])
    assert result.exit_code == 2
    assert "--json asks for JSON, --format for csv: give one" in result.output
    result = runner.invoke(app, ["calls", "export", "--format", "csv", *db])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("id,arrived_at,direction,caller,caller_name,called,")


def simulated(*args: str, database: Path | None = None) -> tuple[int, str, str]:
    db = ["--database", str(database)] if database is not None else []
    return run("simulate", "--config", str(SAMPLE_CONFIG), *args, *db)


def test_simulate_uses_the_stored_referrals_as_a_real_call_does(tmp_path: Path) -> None:
    database = tmp_path / "calls.sqlite3"
    runner.invoke(
        app,
        ["referrals", "set", "1101", "--reason", "2", "--from", "2026-11-30T08:00",
         "--until", "2026-11-30T14:30", "--database", str(database)],
    )  # fmt: skip
    code, out, err = simulated(
        "--at", "2026-11-30T10:00", "--from", "0701234567", "--to", "0123191101", "--json",
        database=database,
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert (result["action"], result["target"]) == ("extension", "1101")
    assert {
        "rule": "R5",
        "decision": "1101 is referred (mote) until 2026-11-30T14:30:00+01:00",
    } in (result["trace"])
    assert (
        "plays: name-1101, reason-2, and-back, today, at-clock, num-14, num-30, referral-menu"
        in (result["happens"])
    )
    assert not any(line.startswith("rings") for line in result["happens"]), "1101 does not ring"


def test_simulate_decodes_a_dial_code_and_stores_nothing(tmp_path: Path) -> None:
    database = tmp_path / "calls.sqlite3"
    runner.invoke(app, ["pins", "set", "1101", "--database", str(database)])
    code, out, err = simulated(
        "--at", "2026-11-30T10:00", "--from", "1101", "--to", "*23*2*1430#", database=database
    )
    assert code == 0, err
    assert "[R2] referral set: mote until 2026-11-30T14:30:00+01:00" in out
    assert "plays: code-referred, name-1101, reason-2" in out
    result = runner.invoke(
        app,
        ["referrals", "list", "--at", "2026-11-30T11:00", "--json", "--database", str(database)],
    )
    assert json.loads(result.stdout) == [], "simulate stored nothing"


@pytest.mark.parametrize("caller", ["abc", "", "0701;DROP", "++46"])
def test_simulate_refuses_a_caller_that_is_no_number(caller: str) -> None:
    code, _, err = simulated("--at", "2026-11-30T10:00", "--from", caller, "--to", "012319100")
    assert code == 2
    assert "is no phone number or extension" in err


def test_check_config_takes_the_file_as_every_command_does(tmp_path: Path) -> None:
    code, out, _ = run("check-config", "--config", str(SAMPLE_CONFIG))
    assert code == 0 and "OK (2 operators" in out
    code, _, err = run("check-config", str(SAMPLE_CONFIG), "--config", str(tmp_path / "x.toml"))
    assert code == 2 and "two files to check" in err


def test_simulate_with_no_time_is_now_on_the_controllers_clock(
    shifted_controller: None, tmp_path: Path
) -> None:
    database = tmp_path / "calls.sqlite3"
    runner.invoke(
        app,
        ["referrals", "set", "1101", "--reason", "2", "--until", "2026-11-30T14:30",
         "--database", str(database)],
    )  # fmt: skip
    code, out, err = simulated("--from", "0701234567", "--to", "0123191101", database=database)
    assert code == 0, err
    assert out.startswith("2026-11-30T10:00")
    assert "=> 1101 is referred: the phone does not ring" in out


def test_export_streams_a_filtered_xlsx_to_a_file_and_records_who(tmp_path: Path) -> None:
    db = ["--database", str(tmp_path / "calls.sqlite3")]
    runner.invoke(app, ["pins", "set", "1101", *db])  # makes the database
    out = tmp_path / "nov.xlsx"
    args = ["calls", "export", "--format", "xlsx", "--from", "2026-11-01", "--to", "2026-12-01"]
    result = runner.invoke(app, [*args, "--outcome", "answered", "--out", str(out), *db])
    assert result.exit_code == 0, result.output
    assert "0 calls written to" in result.output and out.stat().st_size > 0
    with sqlite3.connect(tmp_path / "calls.sqlite3") as raw:
        [(who, fmt, rows, wanted)] = raw.execute(
            "SELECT who, format, rows, filter FROM export_audit"
        )
    assert who.startswith("cli:") and (fmt, rows) == ("xlsx", 0)
    assert json.loads(wanted) == {
        "since": "2026-11-01T00:00:00+01:00",
        "until": "2026-12-01T00:00:00+01:00",
        "outcome": "answered",
    }
    for bad, hint in (
        (["--unit", "nope"], "--unit"),
        (["--direction", "up"], "--direction"),
        (["--format", "pdf"], "--format"),
    ):
        result = runner.invoke(app, ["calls", "export", "--format", "csv", *bad, *db])
        assert result.exit_code == 2 and hint in result.output, result.output

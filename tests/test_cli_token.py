"""pyhsm's own `token init|list|status`, token selection, output formats, `--help` at every level and the exit
status contract (0 ok, 1 failed operation, 2 refused request), through the installed console script."""

from __future__ import annotations

import argparse
import subprocess

import pytest
from cli_helpers import LABEL, PYHSM, SO_PIN, USER_PIN, Cli, cli_fixture  # noqa: F401  (fixture)

from pyhsm.cli.main import build_parser, main


def test_init_and_list_print_the_envelope(cli: Cli) -> None:
    listed = cli.run("token", "list")
    assert listed.status == 0 and listed.json["error_code"] == 0
    initialised = [t for t in listed.json["data"] if t["initialized"]]
    assert [t["label"] for t in initialised] == [LABEL]
    assert {"slot", "label", "serial", "flags", "flag_names"} <= set(initialised[0])


def test_json_flag_prints_the_bare_data_for_older_scripts(cli: Cli) -> None:
    bare = cli.run("token", "list", "--json").json
    assert isinstance(bare, list) and any(t["label"] == LABEL for t in bare)


def test_table_format_is_for_people(cli: Cli) -> None:
    table = cli.run("--format", "table", "token", "list")
    assert table.status == 0 and "pyhsm tokens" in table.stdout and LABEL in table.stdout
    assert not table.stdout.lstrip().startswith("{")


def test_status_needs_no_login(cli: Cli) -> None:
    status = cli.ok("token", "status", PYHSM_PASSWORD=None)
    assert status["label"] == LABEL and "token-initialized" in status["flag_names"]


def test_a_second_token_makes_the_selector_necessary(cli: Cli) -> None:
    cli.ok("token", "init", "--label", "second", "--so-pin", SO_PIN, "--pin", USER_PIN)
    ambiguous = cli.run("key", "list")
    assert ambiguous.status == 2 and "--token LABEL" in ambiguous.json["data"]
    assert cli.ok("--token", "second", "token", "status")["label"] == "second"
    assert cli.ok("token", "status", "--token", LABEL)["label"] == LABEL
    assert cli.ok("token", "status", PYHSM_TOKEN="second")["label"] == "second"
    missing = cli.run("key", "list", "--token", "nope")
    assert missing.status == 1 and missing.json == {"error_code": 1,
                                                    "data": "no token labelled 'nope' (tokens: cli, second)"}


def test_a_refused_request_exits_2_and_a_failed_operation_exits_1(cli: Cli) -> None:
    again = cli.run("token", "init", "--label", LABEL, "--so-pin", SO_PIN, "--pin", USER_PIN)
    assert again.status == 2 and "already exists" in again.json["data"]
    wrong_pin = cli.run("token", "init", "--label", LABEL, "--reinit", "--so-pin", "wrong-so-pin", "--pin", USER_PIN)
    assert wrong_pin.status == 1 and wrong_pin.json["data"].startswith("CKR_PIN_INCORRECT")
    assert "pyhsm: CKR_PIN_INCORRECT" in wrong_pin.stderr  # one line for people and logs
    unknown = cli.run("key", "frobnicate")
    assert unknown.status == 2 and "invalid choice" in unknown.stderr


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, (*path, name))
    return found


def test_help_works_at_every_level(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _commands(build_parser())
    assert ("key", "unwrap", "cloudhsm-aes-gcm") in commands and ("crypto", "verify", "hmac") in commands
    for command in commands:
        assert main([*command, "--help"]) == 0, command
        assert capsys.readouterr().out.startswith(f"usage: pyhsm {' '.join(command)}".rstrip())
    done = subprocess.run([PYHSM, "key", "list", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--starting-token" in done.stdout


def test_fips_mode_is_chosen_at_init_and_refuses_des3(cli: Cli) -> None:
    assert cli.ok("key", "generate-symmetric", "des3", "--label", "legacy")["key"]["attributes"]["key-type"] == "des3"
    fips = cli.ok("token", "init", "--label", "fips", "--fips", "--so-pin", SO_PIN, "--pin", USER_PIN)
    assert fips["fips"] is True
    refused = cli.run("key", "generate-symmetric", "des3", "--label", "legacy", "--token", "fips")
    assert refused.status == 1 and refused.json["data"].startswith("CKR_MECHANISM_INVALID")
    aes = cli.ok("key", "generate-symmetric", "aes", "--label", "ok", "--key-length-bytes", "32", "--token", "fips")
    assert aes["key"]["attributes"]["key-type"] == "aes"

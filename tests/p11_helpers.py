"""Helpers shared by the tests (importable by name: pytest collects two conftest modules)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# Set before any host loads the module, so nothing touches the user's real tokens.
STORE_DIR = os.environ.setdefault("PYHSM_STORE_DIR", tempfile.mkdtemp(prefix="pyhsm-tests-"))

SO_PIN = "so-pin-1234"
USER_PIN = "user-pin-1234"


def module_path() -> str:
    spec = importlib.util.find_spec("pyhsm")
    assert spec is not None and spec.submodule_search_locations, "pyhsm is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "libpyhsm.so"
    assert path.exists(), f"{path} missing: build with `pip install .`"
    return str(path)


def pyhsm_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyhsm.cli.main", *args], capture_output=True, text=True,
                          env=env or os.environ.copy(), timeout=120)


def init_token(label: str, so_pin: str = SO_PIN, pin: str = USER_PIN) -> None:
    result = pyhsm_cli("token", "init", "--label", label, "--so-pin", so_pin, "--pin", pin)
    assert result.returncode == 0, result.stderr


@contextmanager
def raises_rv(rv: int) -> Iterator[None]:
    """Expect exactly CK_RV `rv` from a python-pkcs11 call for codes it has no exception class for."""
    import pkcs11

    with pytest.raises(pkcs11.exceptions.PKCS11Error) as info:
        yield
    assert str(info.value) == f"Unmapped error code {hex(rv)}"


def generated_header_path(directory: Path) -> Path:
    """Write pyhsm_gen.h (the C declarations our C code includes) and ck_constants.h (every CK*_ constant of
    pyhsm.constants, so C tests never restate a number by hand) into `directory` and return it."""
    from pyhsm import constants
    from pyhsm.pkcs11.cdefs import constants_header, generated_header

    (directory / "pyhsm_gen.h").write_text(generated_header())
    (directory / "ck_constants.h").write_text(constants_header(constants))
    return directory


def build_c_host(source: Path, directory: Path, *extra: str) -> Path:
    """Compile one of the C test hosts in tests/c_host against the generated headers."""
    generated_header_path(directory)
    binary = directory / source.stem
    subprocess.run(["gcc", "-Wall", "-Werror", "-O1", f"-I{directory}", "-o", str(binary), str(source), "-ldl",
                    "-lpthread", *extra], check=True)
    return binary


def c_rule_report(source: Path, directory: Path, *args: str, timeout: int = 600) -> dict[str, list[str]]:
    """Run a C host whose checks print "ok <rule>: <step>" / "FAIL <rule>: ..." and group its lines by rule.

    Every RULE(name...) of the source gets an entry, so a rule that printed nothing shows up empty."""
    import re

    binary = build_c_host(source, directory)
    result = subprocess.run([str(binary), module_path(), *args], capture_output=True, text=True, timeout=timeout)
    print(result.stdout, result.stderr)
    lines: dict[str, list[str]] = {rule: [] for rule in c_rules(source)}
    for line in result.stdout.splitlines():
        match = re.match(r"(ok|FAIL) (\w+): ", line)
        if match:
            lines.setdefault(match.group(2), []).append(line)
    assert result.returncode in (0, 1), f"the host died (status {result.returncode}): {result.stderr[-2000:]}"
    return lines


def assert_rule_passed(lines: list[str], rule: str) -> None:
    """One RULE of a C host (c_rule_report's lines for it): it printed something, and none of it is a FAIL."""
    assert lines, f"{rule} printed nothing"
    failed = [line for line in lines if line.startswith("FAIL")]
    assert not failed, "\n".join(failed)


def c_rules(source: Path) -> list[str]:
    import re

    return re.findall(r"^\s*RULE\((\w+)(?:, [01])?\),$", source.read_text(), re.MULTILINE)

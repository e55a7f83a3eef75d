"""PKCS#11 rules checked from a non-Python host (tests/c_host/conformance.c): one test per RULE in that file.

The C program runs every rule once against a fresh token; each test here asserts its rule's lines all say "ok".
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from p11_helpers import SO_PIN, USER_PIN, generated_header_path, init_token, module_path

SOURCE = Path(__file__).with_name("c_host") / "conformance.c"
RULES = re.findall(r"^\s*RULE\((\w+), [01]\),$", SOURCE.read_text(), re.MULTILINE)
TOKEN = "conformance"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    build = generated_header_path(tmp_path_factory.mktemp("conformance"))
    binary = build / "conformance"
    subprocess.run(["gcc", "-Wall", "-Werror", "-O1", f"-I{build}", "-o", str(binary), str(SOURCE), "-ldl",
                    "-lpthread"], check=True)
    init_token(TOKEN)
    result = subprocess.run([str(binary), module_path(), USER_PIN, SO_PIN, TOKEN], capture_output=True, text=True,
                            timeout=600)
    print(result.stdout, result.stderr)
    lines: dict[str, list[str]] = {rule: [] for rule in RULES}
    for line in result.stdout.splitlines():
        match = re.match(r"(ok|FAIL) (\w+): ", line)
        if match:
            lines.setdefault(match.group(2), []).append(line)
    assert result.returncode in (0, 1), result.stderr  # 1: some rule failed, reported by its own test
    return lines


def test_every_rule_of_the_c_host_is_collected() -> None:
    assert len(RULES) >= 20 and len(set(RULES)) == len(RULES)


@pytest.mark.parametrize("rule", RULES)
def test_rule(report: dict[str, list[str]], rule: str) -> None:
    lines = report[rule]
    assert lines, f"{rule} printed nothing"
    failed = [line for line in lines if line.startswith("FAIL")]
    assert not failed, "\n".join(failed)

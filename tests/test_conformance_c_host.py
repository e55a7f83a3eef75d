"""PKCS#11 rules checked from a non-Python host (tests/c_host/conformance.c): one test per RULE in that file.

The C program runs every rule once against a fresh token; each test here asserts its rule's lines all say "ok".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from p11_helpers import SO_PIN, USER_PIN, assert_rule_passed, c_rule_report, c_rules, init_token

SOURCE = Path(__file__).with_name("c_host") / "conformance.c"
RULES = c_rules(SOURCE)
TOKEN = "conformance"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    init_token(TOKEN)
    return c_rule_report(SOURCE, tmp_path_factory.mktemp("conformance"), USER_PIN, SO_PIN, TOKEN)


def test_every_rule_of_the_c_host_is_collected() -> None:
    assert len(RULES) >= 20 and len(set(RULES)) == len(RULES)


@pytest.mark.parametrize("rule", RULES)
def test_rule(report: dict[str, list[str]], rule: str) -> None:
    assert_rule_passed(report[rule], rule)

"""Bounded fuzzing campaigns in CI (fuzz/run.sh; README "Fuzzing" has the longer campaign and its results).

libFuzzer drives sequences of C_* calls with mutated templates, mechanism parameters, lengths and handles through
libpyhsm.so against a scratch token; atheris mutates the C structures the Python marshalling layer decodes. Each
campaign first replays the inputs that once crashed (fuzz/corpus/<target>/regressions). Any crash, escaped
exception (CKR_GENERAL_ERROR) or memory blow-up fails the test and leaves the input in the test's directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN_SECONDS = {"c-abi": 60, "marshal": 30}


def run_campaign(target: str, artifacts: Path) -> str:
    env = dict(os.environ, PYHSM_FUZZ_PYTHON=sys.executable, PYHSM_FUZZ_ARTIFACTS=f"{artifacts}/")
    result = subprocess.run(["bash", str(ROOT / "fuzz" / "run.sh"), target, str(CAMPAIGN_SECONDS[target]),
                             "-seed=1"], capture_output=True, text=True, env=env, timeout=600, cwd=artifacts)
    output = result.stdout + result.stderr
    findings = sorted(p.name for p in artifacts.iterdir() if p.name.startswith(("crash-", "oom-", "timeout-")))
    assert result.returncode == 0 and not findings, f"findings {findings}:\n{output[-6000:]}"
    return output


@pytest.mark.parametrize("target", sorted(CAMPAIGN_SECONDS))
def test_fuzz_campaign_finds_no_crash_and_replays_every_regression(target: str, tmp_path: Path) -> None:
    output = run_campaign(target, tmp_path)
    regressions = list((ROOT / "fuzz" / "corpus" / target / "regressions").iterdir())
    if regressions:
        assert f"replaying {len(regressions)} regression inputs" in output
    runs = re.search(r"Done (\d+) runs", output)
    assert runs and int(runs.group(1)) >= 1000, output[-3000:]  # it really ran, and not one input only

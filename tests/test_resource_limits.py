"""Per-process resource bounds, from a C host (tests/c_host/limits.c).

Sessions and session objects are bounded per process (pyhsm/engine/core.py) and run out with the spec's codes,
CKR_SESSION_COUNT and CKR_DEVICE_MEMORY, freeing up again when sessions or objects go; memory stays flat over
a million HMAC sign operations (growth measured from /proc/self/statm after a warm-up, not time).
Per-token quotas configured by an administrator are a separate feature.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from p11_helpers import SO_PIN, USER_PIN, build_c_host, init_token, module_path
from users_helpers import manage, ok

from pyhsm.engine.core import MAX_SESSION_OBJECTS, MAX_SESSIONS

SOURCE = Path(__file__).with_name("c_host") / "limits.c"
TOKEN = "resource-limits"
SIGN_CALLS = 1_000_000
MAX_GROWTH_KIB = 4096  # after warm-up; a leak of even 5 bytes per call would be 4.8 MiB


@pytest.fixture(scope="module")
def limits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    init_token(TOKEN)
    # The token's own per-application session quota (1,024 by default, tests/test_quotas.py) must not be what
    # runs out first here.
    ok(manage(TOKEN, SO_PIN, ("set_limits", None, None, MAX_SESSIONS + 1), so=True))
    return build_c_host(SOURCE, tmp_path_factory.mktemp("limits"))


def run(binary: Path, scenario: str, n: int) -> str:
    result = subprocess.run([str(binary), module_path(), USER_PIN, TOKEN, scenario, str(n)], capture_output=True,
                            text=True, timeout=900)
    print(result.stdout)
    assert result.returncode == 0 and result.stdout.rstrip().endswith("ALL OK"), result.stdout + result.stderr
    return result.stdout


def test_sessions_per_process_are_bounded_with_session_count(limits: Path) -> None:
    assert f"opened {MAX_SESSIONS} sessions" in run(limits, "sessions", MAX_SESSIONS)


def test_session_objects_per_process_are_bounded_with_device_memory(limits: Path) -> None:
    assert f"created {MAX_SESSION_OBJECTS} session objects" in run(limits, "objects", MAX_SESSION_OBJECTS)


def test_memory_stays_flat_over_a_million_sign_calls(limits: Path) -> None:
    out = run(limits, "memory", SIGN_CALLS)
    match = re.search(r"rss_kib warm=(\d+) end=(\d+) calls=(\d+)", out)
    assert match and int(match.group(3)) == SIGN_CALLS
    warm, end = int(match.group(1)), int(match.group(2))
    assert end - warm <= MAX_GROWTH_KIB, f"RSS grew {end - warm} KiB over {SIGN_CALLS * 9 // 10} calls"

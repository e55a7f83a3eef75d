"""Helpers for the user-management tests: the engine's management API in another process, and the C host.

User management has no PKCS#11 function, so a test drives it the way the `pyhsm` CLI does: a separate process
that uses the engine directly. Everything else goes through the built module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from p11_helpers import generated_header_path, module_path

C_HOST_SOURCE = Path(__file__).with_name("c_host") / "users.c"

_MANAGE = r"""
import json, sys
from pyhsm import constants as ck
from pyhsm.engine import Engine
from pyhsm.errors import CKRError
from pyhsm.objects.codec import encode

req = json.loads(sys.argv[1])
eng = Engine()
eng.initialize(0)
slot = next(s for s in eng.get_slot_list(False) if eng.get_token_info(s).label.rstrip() == req["token"].encode())
h = eng.open_session(slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION)
eng.login(h, ck.CKU_SO if req["so"] else ck.CKU_USER, req["pin"].encode())

def arg(value):
    if isinstance(value, dict) and "bytes" in value:
        return value["bytes"].encode()
    if isinstance(value, dict) and "label" in value:
        eng.find_objects_init(h, [(ck.CKA_LABEL, value["label"].encode())])
        found = eng.find_objects(h, 2)
        eng.find_objects_final(h)
        assert len(found) == 1, (value, found)
        return found[0]
    return value

results = []
for name, *args in req["calls"]:
    try:
        result = getattr(eng, name)(h, *[arg(a) for a in args])
        results.append({"ok": repr(result)})
    except CKRError as exc:
        results.append({"rv": exc.rv, "message": str(exc)})
eng.logout(h)
eng.close_session(h)
eng.finalize()
print(json.dumps(results))
"""


def manage(token: str, pin: str, *calls: tuple[Any, ...], so: bool = False,
           env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Call Engine management methods (name, *args after the session handle) in a fresh process logged in with
    `pin`. Arguments {"bytes": s} become bytes, {"label": s} the handle of the object with that label."""
    request = json.dumps({"token": token, "pin": pin, "so": so, "calls": [list(c) for c in calls]})
    result = subprocess.run([sys.executable, "-c", _MANAGE, request], capture_output=True, text=True, timeout=300,
                            env=env or os.environ.copy())
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout.splitlines()[-1]))


def ok(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    failed = [r for r in results if "rv" in r]
    assert not failed, failed
    return results


def create_users(token: str, so_pin: str, *users: tuple[str, str]) -> None:
    ok(manage(token, so_pin, *(("create_user", name, "crypto-user", {"bytes": pw}) for name, pw in users), so=True))


def build_users_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build tests/c_host/users.c."""
    build = generated_header_path(tmp_path_factory.mktemp("users_host"))
    binary = build / "users"
    subprocess.run(["gcc", "-Wall", "-Werror", "-O1", f"-I{build}", "-o", str(binary), str(C_HOST_SOURCE), "-ldl"],
                   check=True)
    return binary


def run_c_host(binary: Path, token: str, pin: str, scenario: str, label: str, arg: str) -> str:
    result = subprocess.run([str(binary), module_path(), token, pin, scenario, label, arg], capture_output=True,
                            text=True, timeout=300)
    print(result.stdout, result.stderr)
    assert result.returncode == 0 and result.stdout.rstrip().endswith("ALL OK"), result.stdout + result.stderr
    return result.stdout

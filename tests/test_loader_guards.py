"""The loader's guards: a Python host of another minor version gets a clean refusal, never a hang or CKR_OK."""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys

import pytest
from p11_helpers import module_path


def _other_python() -> str | None:
    mine = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [shutil.which(f"python3.{minor}") for minor in range(8, 15)]
    candidates += glob.glob("/root/.pyenv/versions/3.*/bin/python3")
    for path in filter(None, candidates):
        probe = "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')"
        version = subprocess.run([path, "-c", probe], capture_output=True, text=True).stdout.strip()
        if version and version != mine:
            return path
    return None


def test_host_running_another_python_minor_gets_general_error_and_a_message() -> None:
    other = _other_python()
    if other is None:
        pytest.skip("no Python of another minor version is installed on this machine")
    script = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); "
              "print(hex(lib.C_Initialize(None)), hex(lib.C_Initialize(None)))")
    result = subprocess.run([other, "-c", script, module_path()], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0x5", "0x5"]  # CKR_GENERAL_ERROR, every time, no hang
    assert "pyhsm: this process runs Python 3." in result.stderr
    assert "refusing to load" in result.stderr

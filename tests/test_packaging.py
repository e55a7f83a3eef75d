"""Packaging: `pip wheel .` gives a wheel that installs into a fresh venv and works from a non-Python host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from p11_helpers import generated_header_path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_in_a_fresh_venv_and_the_module_answers_a_c_host(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, timeout=600)
    (wheel,) = wheels.glob("pyhsm-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, timeout=600)
    module = subprocess.run([str(venv / "bin" / "pyhsm"), "module-path"], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert module.startswith(str(venv))
    host = tmp_path / "host"
    subprocess.run(["gcc", f"-I{generated_header_path(tmp_path)}", "-o", str(host),
                    str(ROOT / "tests" / "c_host" / "host.c"), "-ldl", "-lpthread"], check=True)
    # An empty environment apart from the store: the module must find its own venv from its location.
    env = {"PYHSM_STORE_DIR": str(tmp_path / "store"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(host), module, "info"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("ALL OK")
    assert os.stat(module).st_size > 0

    # The same wheel where `cryptography` is missing: a clean refusal, not a crash and never CKR_OK.
    broken = tmp_path / "broken"
    subprocess.run([sys.executable, "-m", "venv", str(broken)], check=True)
    subprocess.run([str(broken / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel), "cffi"], check=True,
                   timeout=600)
    broken_module = str(next((broken / "lib").glob("python3.*/site-packages/pyhsm/libpyhsm.so")))
    result = subprocess.run([str(host), broken_module, "info"], capture_output=True, text=True, env=env, timeout=120)
    assert "FAIL C_Initialize: got 0x5 want 0x0" in result.stdout
    assert "the cryptography package is not importable" in result.stderr


DEBIAN_PYTHON = Path("/usr/bin/python3.11")


def test_install_with_debians_own_python_serves_a_c_host(tmp_path: Path) -> None:
    """Debian's python3.11 builds more modules (e.g. _struct) into its executable than its libpython lists as
    built in; an interpreter embedded from that library must still import them. Users on a bare Debian 12 install
    pyhsm with exactly this Python."""
    assert DEBIAN_PYTHON.exists(), "Debian's python3.11 is missing (bash ci/install.sh installs python3-venv)"
    venv = tmp_path / "venv"
    subprocess.run([str(DEBIAN_PYTHON), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True, timeout=600)
    module = subprocess.run([str(venv / "bin" / "pyhsm"), "module-path"], capture_output=True, text=True,
                            check=True).stdout.strip()
    host = tmp_path / "host"
    subprocess.run(["gcc", f"-I{generated_header_path(tmp_path)}", "-o", str(host),
                    str(ROOT / "tests" / "c_host" / "host.c"), "-ldl", "-lpthread"], check=True)
    env = {"PYHSM_STORE_DIR": str(tmp_path / "store"), "PATH": "/usr/bin:/bin"}
    for command in ("info", "lifecycle"):
        result = subprocess.run([str(host), module, command], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.rstrip().endswith("ALL OK")

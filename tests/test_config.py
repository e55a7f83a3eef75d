"""Where the token store lives: env var, then config file, then the user's data directory; a clear error otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = "from pyhsm.config import store_dir; print(store_dir())"


def resolve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-P", "-c", PROBE], capture_output=True, text=True, env=env, timeout=60)


def test_env_var_wins_over_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'store_dir = "{tmp_path / "from-config"}"\n')
    out = resolve({"PYHSM_STORE_DIR": str(tmp_path / "from-env"), "PYHSM_CONFIG": str(config)})
    assert out.stdout.strip() == str(tmp_path / "from-env")


def test_config_file_is_used_without_the_env_var(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'store_dir = "{tmp_path / "from-config"}"\n')
    assert resolve({"PYHSM_CONFIG": str(config)}).stdout.strip() == str(tmp_path / "from-config")


def test_default_is_the_users_data_directory_created_0700(tmp_path: Path) -> None:
    out = resolve({"HOME": str(tmp_path)}).stdout.strip()
    assert out == str(tmp_path / ".local" / "share" / "pyhsm")
    assert (Path(out).stat().st_mode & 0o777) == 0o700


def test_empty_environment_without_system_config_is_a_clear_error() -> None:
    if Path("/etc/pyhsm/config.toml").exists():
        pytest.skip("this machine has /etc/pyhsm/config.toml, which an empty environment resolves through")
    out = resolve({})
    assert out.returncode != 0 and "PYHSM_STORE_DIR" in out.stderr

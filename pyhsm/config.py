"""Where token stores live.

Resolution order (first match wins):
1. env PYHSM_STORE_DIR;
2. `store_dir` in a TOML config file: env PYHSM_CONFIG, else ~/.config/pyhsm/config.toml, else
   /etc/pyhsm/config.toml (the way for servers such as NGINX workers running as `nobody` with an empty environment);
3. $XDG_DATA_HOME/pyhsm, else ~/.local/share/pyhsm.

Backups go to env PYHSM_BACKUP_DIR, else `backup_dir` in the config file, else `backups/` in the store directory
(keep copies elsewhere too: a backup on the disk it protects does not survive that disk).
"""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_CONFIG = Path("/etc/pyhsm/config.toml")


class ConfigError(Exception):
    pass


def _config_files() -> list[Path]:
    files = []
    if os.environ.get("PYHSM_CONFIG"):
        files.append(Path(os.environ["PYHSM_CONFIG"]))
    if os.environ.get("HOME"):
        files.append(Path(os.environ["HOME"]) / ".config" / "pyhsm" / "config.toml")
    files.append(SYSTEM_CONFIG)
    return files


def _configured(env_var: str, setting: str) -> Path | None:
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    for config in _config_files():
        if config.is_file():
            import tomllib  # only when there is a config file: not in every C_Initialize

            with config.open("rb") as f:
                data = tomllib.load(f)
            if setting in data:
                return Path(str(data[setting]))
    return None


def store_dir() -> Path:
    path = _configured("PYHSM_STORE_DIR", "store_dir")
    if path is None:
        if os.environ.get("XDG_DATA_HOME"):
            path = Path(os.environ["XDG_DATA_HOME"]) / "pyhsm"
        elif os.environ.get("HOME"):
            path = Path(os.environ["HOME"]) / ".local" / "share" / "pyhsm"
        else:
            raise ConfigError("no token store: set PYHSM_STORE_DIR, PYHSM_CONFIG, or store_dir in "
                              f"{SYSTEM_CONFIG}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def backup_dir() -> Path:
    path = _configured("PYHSM_BACKUP_DIR", "backup_dir") or store_dir() / "backups"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path

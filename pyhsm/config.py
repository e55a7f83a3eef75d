"""Where token stores live.

Resolution order (first match wins):
1. env PYHSM_STORE_DIR;
2. `store_dir` in a TOML config file: env PYHSM_CONFIG, else ~/.config/pyhsm/config.toml, else
   /etc/pyhsm/config.toml (the way for servers such as NGINX workers running as `nobody` with an empty environment);
3. $XDG_DATA_HOME/pyhsm, else ~/.local/share/pyhsm.
"""

from __future__ import annotations

import os
import tomllib
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


def store_dir() -> Path:
    path: Path | None = None
    if os.environ.get("PYHSM_STORE_DIR"):
        path = Path(os.environ["PYHSM_STORE_DIR"])
    else:
        for config in _config_files():
            if config.is_file():
                with config.open("rb") as f:
                    data = tomllib.load(f)
                if "store_dir" in data:
                    path = Path(str(data["store_dir"]))
                    break
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

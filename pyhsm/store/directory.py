"""TokenDirectory: the token databases under one store directory, one per slot (`token-<slot>.sqlite3`)."""

from __future__ import annotations

import re
from pathlib import Path

from pyhsm.store.sqlite import SqliteTokenStore

_NAME = re.compile(r"^token-(\d+)\.sqlite3$")


class TokenDirectory:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, slot: int) -> Path:
        return self.root / f"token-{slot}.sqlite3"

    def audit_path(self, slot: int) -> Path:
        """The token's audit log (pyhsm/audit.py), next to its database."""
        return self.root / f"token-{slot}.audit.jsonl"

    def slots(self) -> list[int]:
        return sorted(int(m.group(1)) for p in self.root.iterdir() if (m := _NAME.match(p.name)))

    def next_free_slot(self) -> int:
        used = set(self.slots())
        return next(i for i in range(len(used) + 1) if i not in used)

    def open(self, slot: int) -> SqliteTokenStore:
        return SqliteTokenStore(self.path(slot))

    def create(self, slot: int) -> SqliteTokenStore:
        store = self.open(slot)
        store.all_meta()  # creates the file, 0600, with its schema
        return store

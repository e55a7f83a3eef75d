"""The backups in a directory: naming, listing, and the retention rule.

Retention deletes backups older than a cutoff but never the newest backup of a lineage, so pruning can never leave
a token without any backup. Files that are not readable backups are listed as such and never deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pyhsm.store.backup_file import SUFFIX, BackupError, BackupHeader, read_header

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(label: str, created: datetime, lineage: str) -> str:
    safe = _UNSAFE.sub("_", label).strip("._") or "token"
    stamp = created.strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
    return f"{safe}-{stamp}-{lineage[:8]}{SUFFIX}"


@dataclass(frozen=True)
class Entry:
    path: Path
    header: BackupHeader | None
    problem: str | None = None  # why the file is not a readable backup


def scan(directory: Path) -> list[Entry]:
    """Every *.pyhsm-backup file in `directory`, oldest first (unreadable ones last)."""
    entries = []
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            entries.append(Entry(path, read_header(path)))
        except BackupError as exc:
            entries.append(Entry(path, None, str(exc)))
    return sorted(entries, key=lambda e: (e.header is None, e.header.created_at if e.header else datetime.min,
                                          e.path.name))


def expired(entries: list[Entry], before: datetime) -> list[Entry]:
    """The backups created before `before`, except the newest of each lineage."""
    newest: dict[str, Entry] = {}
    for entry in entries:
        if entry.header is not None:
            current = newest.get(entry.header.lineage)
            if current is None or _created(entry) >= _created(current):
                newest[entry.header.lineage] = entry
    kept = {id(e) for e in newest.values()}
    return [e for e in entries if e.header is not None and id(e) not in kept and _created(e) < before]


def _created(entry: Entry) -> datetime:
    assert entry.header is not None
    return entry.header.created_at

"""The audit log of a token: append-only, hash-chained JSON lines, shared by every process using the token.

One line per event::

    {"seq": 7, "time": "2026-12-01T22:10:03.123Z", "user": "alice", "role": "crypto-user", "session": 3,
     "pid": 4242, "event": "key.share", "object": "0x2a", "result": "ok", "detail": {...},
     "prev": "<hash of line 6>", "hash": "<sha256 of prev + this line without its hash>"}

Several processes (NGINX workers, the CLI, a database) append at once: each append opens the file with O_APPEND and
holds an exclusive flock while it reads the last line (for `seq` and `prev`) and writes the next one, so the chain
stays linear. After writing, still under the lock, the new head (seq, hash) is handed to a callback that records it
in the token store: `verify` then detects an edited, deleted, inserted or reordered line by the chain, and a
truncated tail by the recorded head missing from the file. Someone able to rewrite both the log and the token store
can forge history; that is outside what a hash chain can prevent.

Secrets never enter the log: callers pass names, handles and outcomes only, and `append` refuses bytes values.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
FIELDS = ("seq", "time", "user", "role", "session", "pid", "event", "object", "result", "detail")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _chain(prev: str, body: Mapping[str, Any]) -> tuple[str, str]:
    """The hash of a record (without its hash) that follows `prev`, and its line: the canonical JSON of the record
    with the hash added last (readers parse the line, so the key order there does not matter)."""
    from hashlib import sha256  # loads OpenSSL's libcrypto: on the first record, not in every C_Initialize

    canonical = _CANONICAL.encode(body)
    digest = sha256(prev.encode() + b"\n" + canonical.encode()).hexdigest()
    return digest, f'{canonical[:-1]},"hash":"{digest}"}}\n'


def record_hash(record: Mapping[str, Any]) -> str:
    """sha256 over the previous hash and the canonical JSON of the record without its own hash."""
    return _chain(str(record.get("prev", "")), {k: v for k, v in record.items() if k != "hash"})[0]


_second: tuple[int, str] = (-1, "")


def timestamp(seconds: float) -> str:
    global _second
    whole = int(seconds)
    if _second[0] != whole:  # strftime once per second: every audit record needs a time stamp
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int(seconds * 1000) % 1000:03d}Z"


_PLAIN = frozenset({str, int, float, bool, type(None)})


def check_entry(value: Any) -> None:
    """Refuse raw bytes anywhere in an event (a key value or PIN passed by mistake); the common cases - text,
    numbers, a dict of them - take one type lookup per value (this runs for every audited call)."""
    if type(value) is dict:
        items: Any = value.values()
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError("audit records hold text and numbers only, never raw bytes")
    elif isinstance(value, (list, tuple)):
        items = value
    elif isinstance(value, Mapping):
        items = value.values()
    else:
        return
    for item in items:
        if type(item) not in _PLAIN:
            check_entry(item)


class Verification:
    """What `verify` found (a plain class: a dataclass's generated code is compiled at every start-up)."""

    def __init__(self) -> None:
        self.records = 0
        self.problems: list[str] = []
        self.last: tuple[int, str] | None = None  # (seq, hash) of the last record

    @property
    def ok(self) -> bool:
        return not self.problems


# Descriptors of appends in progress. A process that forks while one of its threads appends (a host thread, or the
# audit queue's writer) hands the child a copy of the descriptor, and an flock lasts until every copy is closed:
# the child, which never finishes that append, would hold every other process's appends until it exits.
_locking: set[int] = set()


def _close_parents_appends() -> None:
    for fd in _locking:
        os.close(fd)
    _locking.clear()


os.register_at_fork(after_in_child=_close_parents_appends)


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    # ---- writing ----------------------------------------------------------------------------------------
    def append(self, entry: Mapping[str, Any], record_head: Callable[[int, str], None] | None = None) -> dict[str, Any]:
        """Append one event (keys from FIELDS, without seq/prev/hash) and return the full record."""
        return self.append_all([entry], record_head)[-1]

    def append_all(self, entries: Sequence[Mapping[str, Any]],
                   record_head: Callable[[int, str], None] | None = None) -> list[dict[str, Any]]:
        """Append events in order as consecutive records: one lock, one write, one head for all of them."""
        for entry in entries:
            check_entry(entry)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        _locking.add(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = self._last_record()
            seq = (int(last["seq"]) + 1) if last else 1
            prev = str(last["hash"]) if last else GENESIS
            records, lines = [], []
            for entry in entries:
                record: dict[str, Any] = {k: entry.get(k) for k in FIELDS}
                record["seq"], record["prev"] = seq, prev
                prev, line = _chain(prev, record)
                record["hash"] = prev
                records.append(record)
                lines.append(line)
                seq += 1
            data = "".join(lines).encode()
            while data:  # a large batch may take more than one write
                data = data[os.write(fd, data):]
            if record_head is not None and records:
                record_head(records[-1]["seq"], records[-1]["hash"])
            return records
        finally:
            _locking.discard(fd)
            os.close(fd)  # releases the flock

    def _last_record(self) -> dict[str, Any] | None:
        """The last complete line, read backwards from the end (the log can be large)."""
        with open(self.path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            chunk, data = 4096, b""
            pos = end
            while pos > 0:
                step = min(chunk, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
                lines = data.rstrip(b"\n").split(b"\n")
                if len(lines) > 1 or pos == 0:
                    last = lines[-1]
                    if not last:
                        return None
                    try:
                        parsed = json.loads(last)
                    except json.JSONDecodeError:
                        return {"seq": -1, "hash": "corrupt"}  # appends go on; verify reports the bad line
                    return parsed if isinstance(parsed, dict) else {"seq": -1, "hash": "corrupt"}
        return None

    # ---- reading ----------------------------------------------------------------------------------------
    def lines(self) -> list[str]:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def verify(self, head: tuple[int, str] | None) -> Verification:
        """Check the whole chain, and that the head the token store recorded is in it."""
        result = Verification()
        prev, expected_seq, head_seen = GENESIS, 1, head is None
        for number, line in enumerate(self.lines(), start=1):
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError
            except ValueError:
                result.problems.append(f"line {number}: not a JSON record")
                continue
            seq = record.get("seq")
            if seq != expected_seq:
                result.problems.append(f"line {number}: sequence {seq}, expected {expected_seq} "
                                       "(a record was removed, inserted or moved)")
            if record.get("prev") != prev:
                result.problems.append(f"line {number}: does not chain to the record before it")
            if record_hash(record) != record.get("hash"):
                result.problems.append(f"line {number}: contents were altered (hash mismatch)")
            if head is not None and seq == head[0]:
                head_seen = record.get("hash") == head[1]
                if not head_seen:
                    result.problems.append(f"line {number}: differs from the head recorded in the token store")
                    head_seen = True  # reported once
            prev = str(record.get("hash"))
            expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
            result.records += 1
            result.last = (int(seq) if isinstance(seq, int) else -1, prev)
        if not head_seen and head is not None:
            result.problems.append(f"the log ends before record {head[0]}, the head recorded in the token store "
                                   "(records were removed from the end, or the log was replaced)")
        return result

    def tail(self, count: int) -> tuple[list[str], int]:
        """The last `count` lines and the byte offset where the log ended when they were read (for `follow`)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return [], 0
        end = data.rfind(b"\n") + 1  # a line still being written is left for follow()
        lines = data[:end].decode("utf-8", "replace").splitlines()
        return (lines[-count:] if count else []), end

    def follow(self, offset: int, poll_seconds: float = 0.2,
               keep_going: Callable[[], bool] = lambda: True) -> Iterator[dict[str, Any]]:
        """Records appended after byte `offset`, as they come (`tail -f`)."""
        pending = b""
        while keep_going():
            try:
                with open(self.path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            offset += len(data)
            pending += data
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                try:
                    yield json.loads(raw)
                except json.JSONDecodeError:
                    yield {"event": "unreadable-line", "line": raw.decode("utf-8", "replace")}
            if not data:
                time.sleep(poll_seconds)

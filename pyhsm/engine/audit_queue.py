"""How one process writes a token's audit log: session-object events in batches, everything else at once.

Writing a record takes the log's flock, reads its last line, writes, and records the new head in the token store
(an SQLite transaction): about 150 us, several times the cost of generating an AES key. Session objects are made
and dropped at that rate by hosts that use them as scratch keys, and they die with their session, so the successful
creation, change and destruction of a session object (HELD_EVENTS) is held in memory and written as one batch - one
lock, one write, one head - when

- any other event is recorded by this process (the held events go first, so the log keeps this process's order),
- MAX_HELD events are held, or the oldest has waited MAX_DELAY seconds (a timer thread writes them),
- a session closes, or the library is finalised (C_CloseSession, C_CloseAllSessions, C_Finalize), or a Python host
  exits.

What this gives up, and only for session objects: for up to MAX_DELAY seconds after the event, a record is not in
the log yet (`audit tail -f` shows it late, `audit verify` does not know it), and a process that is killed or exits
without C_Finalize loses the records it held - the objects they describe died with it. A record's `time` is when
the event happened; `seq` is the order of writing. Token objects, logins, users, sharing, wrapping (export) and
every failed call are written before the call returns, as before.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from pyhsm import constants as ck
from pyhsm.audit import AuditLog
from pyhsm.errors import CKRError

HELD_EVENTS = frozenset({"object.create", "object.copy", "object.destroy", "object.set-attribute",
                         "key.generate", "key.derive", "key.unwrap"})
MAX_HELD = 1024
MAX_DELAY = 1.0  # seconds

_holding: weakref.WeakSet[AuditQueue] = weakref.WeakSet()


class AuditQueue:
    def __init__(self, log: AuditLog, record_head: Callable[[int, str], None]) -> None:
        self.log = log
        self.record_head = record_head
        self._lock = threading.Lock()
        self._held: list[dict[str, Any]] = []
        self._timer: threading.Timer | None = None
        self._pid = os.getpid()

    def hold(self, entry: dict[str, Any]) -> None:
        """Keep a session-object event for the next batch."""
        self._forget_parent()
        with self._lock:
            self._held.append(entry)
            full = len(self._held) >= MAX_HELD
            if not full and self._timer is None:
                self._timer = threading.Timer(MAX_DELAY, self._write_in_background)
                self._timer.daemon = True  # never keeps a host from exiting
                self._timer.start()
                _holding.add(self)
        if full:
            self.write()

    def write(self, entry: dict[str, Any] | None = None) -> None:
        """Write the held events, then `entry`, as consecutive records; CKR_DEVICE_ERROR if the log cannot be
        written (the held events stay held, to be tried again with the next write)."""
        self._forget_parent()
        with self._lock:
            batch = self._held + [entry] if entry is not None else self._held
            if not batch:
                return
            try:
                self.log.append_all(batch, self.record_head)
            except OSError as exc:
                # Fail loudly rather than lose the record; by now the event itself has happened.
                raise CKRError(ck.CKR_DEVICE_ERROR, f"the audit log {self.log.path} cannot be written: {exc}") from None
            self._held = []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _write_in_background(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self.write()
        except CKRError:
            pass  # still held: the next call that writes reports the failure to its caller

    def _forget_parent(self) -> None:
        """In a forked child the held events, the timer and the lock's state are the parent's."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._held = []
            self._timer = None


@atexit.register
def _write_all_held() -> None:
    """A Python host exiting (a C host exits without running Python's atexit: C_Finalize writes them)."""
    for queue in list(_holding):
        try:
            queue.write()
        except CKRError:
            pass

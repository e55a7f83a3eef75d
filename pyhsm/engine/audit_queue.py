"""How one process writes a token's audit log: session-object events in batches, everything else at once.

Writing a record takes the log's flock, reads its last line, writes, and records the new head in the token store
(an SQLite transaction): about 150 us, several times the cost of generating an AES key. Session objects are made
and dropped at that rate by hosts that use them as scratch keys, and they die with their session, so the successful
creation, change and destruction of a session object (HELD_EVENTS) is held in memory and written as one batch - one
lock, one write, one head - when

- any other event is recorded by this process (the held events go first, so the log keeps this process's order),
- MAX_HELD events are held, or the oldest has waited MAX_DELAY seconds (a writer thread writes them),
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
import time
import weakref
from collections.abc import Callable
from typing import Any

from pyhsm import constants as ck
from pyhsm.audit import AuditLog, check_entry
from pyhsm.errors import CKRError

HELD_EVENTS = frozenset({"object.create", "object.copy", "object.destroy", "object.set-attribute",
                         "key.generate", "key.derive", "key.unwrap"})
MAX_HELD = 1024
MAX_DELAY = 1.0  # seconds
WRITER_IDLE = 10.0  # seconds

_holding: weakref.WeakSet[AuditQueue] = weakref.WeakSet()


class AuditQueue:
    _lock: threading.Lock
    _woken: threading.Condition  # on _lock: the queue stopped being empty
    _held: list[dict[str, Any]]
    _since: float  # time.monotonic() of the oldest held event
    _writer: threading.Thread | None

    def __init__(self, log: AuditLog, record_head: Callable[[int, str], None]) -> None:
        self.log = log
        self.record_head = record_head
        self._pid = -1
        self._forget_parent()

    def hold(self, entry: dict[str, Any]) -> None:
        """Keep a session-object event for the next batch."""
        check_entry(entry)  # refused here, in the call that made it, not in whichever call writes the batch
        self._forget_parent()
        with self._lock:
            self._held.append(entry)
            count = len(self._held)
            if count == 1:
                self._since = time.monotonic()
                self._start_writer()
                self._woken.notify()
        if count >= MAX_HELD:
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

    def _start_writer(self) -> None:
        """A daemon thread (it never keeps a host from exiting), started by the first held event, writes what is
        held MAX_DELAY seconds after the queue stops being empty, and leaves after WRITER_IDLE seconds without."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_when_due, name="pyhsm-audit", daemon=True)
            self._writer.start()
            _holding.add(self)

    def _write_when_due(self) -> None:
        while True:
            with self._lock:
                idle_until = time.monotonic() + WRITER_IDLE
                while not self._held:
                    if (idle := idle_until - time.monotonic()) <= 0:
                        self._writer = None
                        return
                    self._woken.wait(idle)
                while self._held and (due := self._since + MAX_DELAY - time.monotonic()) > 0:
                    self._woken.wait(due)
            try:
                self.write()
            except CKRError:
                pass  # still held: the next call that writes reports the failure to its caller

    def _forget_parent(self) -> None:
        """In a forked child the held events, the writer thread and the lock's state are the parent's."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._woken = threading.Condition(self._lock)
            self._held = []
            self._since = 0.0
            self._writer = None


@atexit.register
def _write_all_held() -> None:
    """A Python host exiting (a C host exits without running Python's atexit: C_Finalize writes them)."""
    for queue in list(_holding):
        try:
            queue.write()
        except CKRError:
            pass

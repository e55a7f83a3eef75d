"""Library, slot, token, session and login functions (PKCS#11 v3.0 sections 5.4–5.6)."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path
from typing import NamedTuple

from pyhsm import __version__
from pyhsm import constants as ck
from pyhsm.audit import AuditLog
from pyhsm.engine import policy
from pyhsm.engine.accounts import role_of
from pyhsm.engine.clock import Clock, now
from pyhsm.engine.session import Session
from pyhsm.engine.token import Token
from pyhsm.engine.token_users import MAX_PIN_LEN, MIN_PIN_LEN
from pyhsm.errors import CKRError
from pyhsm.mechanisms import registry
from pyhsm.store.directory import TokenDirectory

MANUFACTURER = b"pyhsm"
# Per-process bounds, so that a host (or a bug in one) looping on C_OpenSession or C_CreateObject gets a clear
# error instead of exhausting the process's memory: CKR_SESSION_COUNT, CKR_DEVICE_MEMORY.
MAX_SESSIONS = 4096
MAX_SESSION_OBJECTS = 16384
_VERSION = tuple(int(p) for p in __version__.split(".")[:2])


class TokenInfo(NamedTuple):  # not a dataclass: its generated code is compiled at every start-up
    label: bytes
    manufacturer: bytes
    model: bytes
    serial: bytes
    flags: int
    session_count: int
    rw_session_count: int
    max_pin_len: int
    min_pin_len: int


class EngineCore:
    def __init__(self, store_dir: Path | None = None, clock: Clock = now) -> None:
        self._store_dir = store_dir
        self.clock = clock  # quorum expiry and audit times (tests move it forward)
        self._lock = threading.RLock()
        self._initialized = False
        self._directory: TokenDirectory | None = None
        self._tokens: dict[int, Token] = {}
        self._sessions: dict[int, Session] = {}
        self._handles = itertools.count(1)
        self._pid = os.getpid()

    # ---- library ---------------------------------------------------------------------------------
    def initialize(self, flags: int = ck.CKF_OS_LOCKING_OK) -> None:
        with self._lock:
            if self._initialized:
                raise CKRError(ck.CKR_CRYPTOKI_ALREADY_INITIALIZED)
            from pyhsm.config import store_dir

            self._directory = TokenDirectory(self._store_dir or store_dir())
            self._initialized = True

    def finalize(self) -> None:
        with self._lock:
            self._require_initialized()
            self._close_everything()
            self._initialized = False

    def reset_after_fork(self) -> None:
        """In a forked child: inherited sessions, logins and store connections belong to the parent."""
        self._lock = threading.RLock()
        self._sessions.clear()
        self._tokens.clear()
        self._directory = None
        self._initialized = False
        self._pid = os.getpid()

    def _close_everything(self) -> None:
        for session in list(self._sessions.values()):
            self._drop_session(session)
        for token in self._tokens.values():
            token.logout_state()
            token.store.close()
        self._tokens.clear()

    def _require_initialized(self) -> TokenDirectory:
        if not self._initialized or self._directory is None:
            raise CKRError(ck.CKR_CRYPTOKI_NOT_INITIALIZED)
        return self._directory

    def token_directory(self) -> TokenDirectory:
        """The token databases, for operations on whole tokens (backup, restore)."""
        return self._require_initialized()

    @property
    def initialized(self) -> bool:
        return self._initialized

    def get_info(self) -> tuple[tuple[int, int], bytes, int, bytes, tuple[int, int]]:
        self._require_initialized()
        return ck.CRYPTOKI_VERSION, MANUFACTURER, 0, b"pyhsm software HSM", (_VERSION[0], _VERSION[1])

    # ---- slots and tokens ------------------------------------------------------------------------
    def get_slot_list(self, token_present: bool) -> list[int]:
        directory = self._require_initialized()
        # Every initialised token has a slot, plus one slot holding a fresh token to initialise.
        return sorted({*directory.slots(), directory.next_free_slot()})

    def _check_slot(self, slot_id: int) -> TokenDirectory:
        directory = self._require_initialized()
        if slot_id not in directory.slots() and slot_id != directory.next_free_slot():
            raise CKRError(ck.CKR_SLOT_ID_INVALID)
        return directory

    def get_slot_info(self, slot_id: int) -> tuple[bytes, bytes, int]:
        self._check_slot(slot_id)
        return f"pyhsm slot {slot_id}".encode(), MANUFACTURER, ck.CKF_TOKEN_PRESENT

    def token(self, slot_id: int) -> Token | None:
        """The token in a slot, or None while the slot's token is not initialised."""
        directory = self._check_slot(slot_id)
        with self._lock:
            token = self._tokens.get(slot_id)
            if token is None and slot_id in directory.slots():
                token = self._tokens[slot_id] = self._open_token(directory, slot_id)
            if token is not None:
                token.sync()
            return token

    def _open_token(self, directory: TokenDirectory, slot_id: int) -> Token:
        return Token(slot_id, directory.open(slot_id), directory.audit_path(slot_id), self.clock)

    def get_token_info(self, slot_id: int) -> TokenInfo:
        token = self.token(slot_id)
        sessions = [s for s in self._sessions.values() if s.token.slot_id == slot_id]
        if token is None:
            label, serial, flags = b" " * 32, b" " * 16, ck.CKF_RNG | ck.CKF_LOGIN_REQUIRED
        else:
            label, serial, flags = token.label, token.serial, token.flags()
        return TokenInfo(label, MANUFACTURER, b"pyhsm", serial, flags, len(sessions),
                         sum(1 for s in sessions if s.rw), MAX_PIN_LEN, MIN_PIN_LEN)

    def _fips(self, slot_id: int) -> bool:
        token = self.token(slot_id)
        return token is not None and token.fips

    def get_mechanism_list(self, slot_id: int) -> list[int]:
        fips = self._fips(slot_id)
        mechanisms = registry.all_mechanisms()
        return sorted(m for m in mechanisms if policy.listed(m, registry.lookup(m).info.flags, fips))

    def get_mechanism_info(self, slot_id: int, mechanism: int) -> registry.MechanismInfo:
        info = registry.lookup(mechanism).info
        flags = policy.mechanism_flags(mechanism, info.flags, self._fips(slot_id))
        if not policy.listed(mechanism, flags, False):
            raise CKRError(ck.CKR_MECHANISM_INVALID, "not allowed in this token's FIPS mode")
        return registry.MechanismInfo(info.min_key, info.max_key, flags)

    def init_token(self, slot_id: int, so_pin: bytes, label: bytes, fips: bool = False) -> None:
        """C_InitToken; `fips` (not reachable through PKCS#11, which has no such parameter) fixes the token's
        mode until it is initialised again."""
        directory = self._check_slot(slot_id)
        with self._lock:
            if any(s.token.slot_id == slot_id for s in self._sessions.values()):
                raise CKRError(ck.CKR_SESSION_EXISTS)
            token = self._tokens.get(slot_id)
            if token is None:
                if slot_id not in directory.slots():
                    directory.create(slot_id)
                token = self._tokens[slot_id] = self._open_token(directory, slot_id)
            token.initialize(so_pin, label, fips)

    def audit_log(self, slot_id: int) -> tuple[AuditLog, tuple[int, str] | None]:
        """A token's audit log and the head (seq, hash) its store recorded; needs no login."""
        token = self.token(slot_id)
        if token is None or token.audit is None:
            raise CKRError(ck.CKR_TOKEN_NOT_RECOGNIZED, "the slot holds no initialised token")
        return token.audit, token.audit_head()

    # ---- sessions -----------------------------------------------------------------------------------
    def open_session(self, slot_id: int, flags: int) -> int:
        if not flags & ck.CKF_SERIAL_SESSION:
            raise CKRError(ck.CKR_SESSION_PARALLEL_NOT_SUPPORTED)
        token = self.token(slot_id)
        if token is None or not token.initialized:
            raise CKRError(ck.CKR_TOKEN_NOT_RECOGNIZED, "initialise the token first")
        rw = bool(flags & ck.CKF_RW_SESSION)
        with self._lock:
            if not rw and token.user == ck.CKU_SO:
                raise CKRError(ck.CKR_SESSION_READ_WRITE_SO_EXISTS)
            if len(self._sessions) >= MAX_SESSIONS:
                raise CKRError(ck.CKR_SESSION_COUNT, f"this process has {MAX_SESSIONS} sessions open")
            limit = token.settings.limits.max_sessions
            if sum(1 for s in self._sessions.values() if s.token is token) >= limit:
                raise CKRError(ck.CKR_SESSION_COUNT, f"this application already has {limit} sessions on the token "
                                                     "(the token's session quota)")
            handle = next(self._handles)
            self._sessions[handle] = Session(handle, token, rw)
            return handle

    def session(self, handle: int) -> Session:
        if not self._initialized:
            raise CKRError(ck.CKR_CRYPTOKI_NOT_INITIALIZED)
        try:
            return self._sessions[handle]
        except KeyError:
            raise CKRError(ck.CKR_SESSION_HANDLE_INVALID) from None

    def close_session(self, handle: int) -> None:
        with self._lock:
            self._drop_session(self.session(handle))

    def close_all_sessions(self, slot_id: int) -> None:
        self._check_slot(slot_id)
        with self._lock:
            for session in [s for s in self._sessions.values() if s.token.slot_id == slot_id]:
                self._drop_session(session)

    def _drop_session(self, session: Session) -> None:
        self._sessions.pop(session.handle, None)
        token = session.token
        token.drop_session_objects(lambda o: o.owner_session == session.handle)
        if not any(s.token is token for s in self._sessions.values()) and token.user is not None:
            user, role = token.username, role_of(token.user)
            token.logout_state()  # the login belongs to the application's sessions: gone with the last one
            token.record("logout", session.handle, user=user, role=role, detail={"reason": "last session closed"})
        else:
            token.flush_audit()  # the held events of its session objects (pyhsm/engine/audit_queue.py)

    def get_session_info(self, handle: int) -> tuple[int, int, int]:
        session = self.session(handle)
        flags = ck.CKF_SERIAL_SESSION | (ck.CKF_RW_SESSION if session.rw else 0)
        return session.token.slot_id, session.state(), flags

    # ---- login ----------------------------------------------------------------------------------------
    def login(self, handle: int, user_type: int, pin: bytes) -> None:
        session = self.session(handle)
        token = session.token
        if user_type == ck.CKU_CONTEXT_SPECIFIC:
            self._context_login(session, pin)
            return
        if user_type not in (ck.CKU_SO, ck.CKU_USER):
            raise CKRError(ck.CKR_USER_TYPE_INVALID)
        with self._lock:
            if user_type == ck.CKU_SO and any(s.token is token and not s.rw for s in self._sessions.values()):
                raise CKRError(ck.CKR_SESSION_READ_ONLY_EXISTS)
        token.login(user_type, pin, handle)  # the PIN KDF is slow on purpose: not under the engine-wide lock

    def _context_login(self, session: Session, pin: bytes) -> None:
        if session.token.user != ck.CKU_USER:
            raise CKRError(ck.CKR_USER_NOT_LOGGED_IN)
        waiting = [op for op in session.ops.values() if op.needs_context_login]
        if not waiting:
            raise CKRError(ck.CKR_OPERATION_NOT_INITIALIZED, "no operation waits for a context-specific login")
        session.token.verify_pin(pin)
        for op in waiting:
            op.needs_context_login = False

    def logout(self, handle: int) -> None:
        session = self.session(handle)
        token = session.token
        with self._lock:
            if token.user is None:
                raise CKRError(ck.CKR_USER_NOT_LOGGED_IN)
            # Section 5.6: private session objects of the application are destroyed at logout.
            token.drop_session_objects(lambda o: o.is_private)
            user, role = token.username, token.user
            token.logout_state()
        token.record("logout", handle, user=user, role=role_of(role) if role is not None else None)

    def init_pin(self, handle: int, pin: bytes) -> None:
        session = self.session(handle)
        if session.state() != ck.CKS_RW_SO_FUNCTIONS:
            raise CKRError(ck.CKR_USER_NOT_LOGGED_IN, "C_InitPIN needs the SO logged in")
        session.token.init_user_pin(pin, handle)

    def set_pin(self, handle: int, old_pin: bytes, new_pin: bytes) -> None:
        session = self.session(handle)
        if not session.rw:
            raise CKRError(ck.CKR_SESSION_READ_ONLY)
        session.token.set_pin(old_pin, new_pin, handle)

    # ---- random ---------------------------------------------------------------------------------------
    def generate_random(self, handle: int, length: int) -> bytes:
        self.session(handle)
        return os.urandom(length)

    def seed_random(self, handle: int, seed: bytes) -> None:
        self.session(handle)
        # The OS CSPRNG is the only generator; mixing caller data into it is not possible from user space.
        raise CKRError(ck.CKR_RANDOM_SEED_NOT_SUPPORTED)

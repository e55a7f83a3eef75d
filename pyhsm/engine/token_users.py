"""A token's metadata as one process sees it: users and their credentials, login state, settings, audit log.

Login state belongs to the application (this process), is shared by all its sessions on the token and is lost when
the last session closes. The token key exists in memory only while someone is logged in; every user holds a copy
wrapped under their own password (see pyhsm/engine/accounts.py).

Lock order across processes: the audit log's flock may be taken before a store transaction, never inside one, so
events are recorded only after the transaction that made them has committed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from pyhsm import constants as ck
from pyhsm.audit import AuditLog, timestamp
from pyhsm.engine.accounts import (
    ADMIN,
    CRYPTO_USER,
    DEFAULT_USER,
    INITIAL_ADMIN,
    LAST_FAILED,
    MAX_FAILURES,
    USER_PREFIX,
    UserRecord,
    default_account,
    meta_key,
    role_of,
    split_pin,
    users_in,
)
from pyhsm.engine.audit_queue import HELD_EVENTS, AuditQueue
from pyhsm.engine.clock import Clock, now
from pyhsm.engine.policy import FIPS_KEY, SETTINGS_KEY, Settings
from pyhsm.errors import CKRError
from pyhsm.store.base import TokenStore
from pyhsm.store.sealing import TokenKey, WrongPin

MIN_PIN_LEN = 4
MAX_PIN_LEN = 255
AUDIT_HEAD = "audit_head"
_LEGACY = ("so_key", "user_key", "so_failures", "user_failures")  # single-user stores before users existed


def check_new_pin(pin: bytes) -> None:
    """A PIN being set: MIN_PIN_LEN to MAX_PIN_LEN bytes of valid UTF-8 (CK_UTF8CHAR; overlong forms, encoded
    surrogates and stray bytes are CKR_PIN_INVALID, so every host can type the PIN it was given)."""
    if not MIN_PIN_LEN <= len(pin) <= MAX_PIN_LEN:
        raise CKRError(ck.CKR_PIN_LEN_RANGE, f"PINs are {MIN_PIN_LEN} to {MAX_PIN_LEN} bytes")
    try:
        pin.decode("utf-8")
    except UnicodeDecodeError:
        raise CKRError(ck.CKR_PIN_INVALID, "a PIN must be UTF-8") from None


def result_text(exc: BaseException | None) -> str:
    return "ok" if exc is None else str(exc) if not isinstance(exc, CKRError) else _rv_name(exc.rv)


def _rv_name(rv: int) -> str:
    return next((k for k, v in vars(ck).items() if k.startswith("CKR_") and v == rv), f"CKR_0x{rv:X}")


class TokenUsers:
    def __init__(self, slot_id: int, store: TokenStore, audit_path: Path | None, clock: Clock = now) -> None:
        self.slot_id = slot_id
        self.store = store
        self.clock = clock
        self.lock = threading.RLock()
        self.user: int | None = None  # CKU_SO / CKU_USER while logged in
        self.username: str | None = None
        self.token_key: TokenKey | None = None
        self.audit = AuditLog(audit_path) if audit_path is not None else None
        self.audit_queue = AuditQueue(self.audit, self._record_head) if self.audit is not None else None
        self._meta: dict[str, bytes] = {}
        self._users: dict[str, UserRecord] | None = None

    # ---- metadata --------------------------------------------------------------------------------------------
    def set_meta_cache(self, meta: dict[str, bytes]) -> None:
        self._meta = meta
        self._users = None

    def sync_meta(self) -> None:
        self.set_meta_cache(self.store.all_meta())

    def write_meta(self, items: dict[str, bytes | None]) -> None:
        self.store.set_meta(items)
        self.sync_meta()

    def migrate_legacy_credentials(self) -> None:
        """Stores written before users existed hold the SO and user wrapped keys directly: make them accounts."""
        if not self.initialized or "so_key" not in self._meta or meta_key(INITIAL_ADMIN) in self._meta:
            return
        items: dict[str, bytes | None] = dict.fromkeys(_LEGACY)
        items[meta_key(INITIAL_ADMIN)] = UserRecord(
            INITIAL_ADMIN, ADMIN, self._meta["so_key"], int(self._meta.get("so_failures", b"0")), False).encode()
        if "user_key" in self._meta:
            items[meta_key(DEFAULT_USER)] = UserRecord(
                DEFAULT_USER, CRYPTO_USER, self._meta["user_key"], int(self._meta.get("user_failures", b"0")),
                False).encode()
        self.write_meta(items)

    @property
    def initialized(self) -> bool:
        return self._meta.get("initialized") == b"1"

    @property
    def fips(self) -> bool:
        return self._meta.get(FIPS_KEY) == b"1"

    @property
    def settings(self) -> Settings:
        return Settings.decode(self._meta.get(SETTINGS_KEY))

    def users(self) -> dict[str, UserRecord]:
        if self._users is None:
            self._users = users_in(self._meta)
        return self._users

    def user_flags(self) -> int:
        flags = ck.CKF_USER_PIN_INITIALIZED if DEFAULT_USER in self.users() else 0
        for role, low, final, locked in (
            (CRYPTO_USER, ck.CKF_USER_PIN_COUNT_LOW, ck.CKF_USER_PIN_FINAL_TRY, ck.CKF_USER_PIN_LOCKED),
            (ADMIN, ck.CKF_SO_PIN_COUNT_LOW, ck.CKF_SO_PIN_FINAL_TRY, ck.CKF_SO_PIN_LOCKED),
        ):
            # The flags describe the account that failed last (else the role's default account).
            name = self._meta.get(LAST_FAILED + role, default_account(role).encode()).decode()
            record = self.users().get(name) or self.users().get(default_account(role))
            count = record.failures if record else 0
            if count >= MAX_FAILURES:
                flags |= locked
            elif count == MAX_FAILURES - 1:
                flags |= final | low
            elif count > 0:
                flags |= low
        return flags

    # ---- accounts --------------------------------------------------------------------------------------------
    def put_user(self, record: UserRecord) -> None:
        self.write_meta({meta_key(record.name): record.encode()})

    def remove_user(self, name: str) -> None:
        self.write_meta({meta_key(name): None, LAST_FAILED + ADMIN: None, LAST_FAILED + CRYPTO_USER: None})

    def _update_user(self, name: str, change: dict[str, object], extra: dict[str, bytes | None]) -> UserRecord:
        """Read-modify-write one record inside a store transaction (other processes count failures too)."""
        with self.store.transaction():
            raw = self.store.all_meta().get(meta_key(name))
            if raw is None:
                raise CKRError(ck.CKR_USER_PIN_NOT_INITIALIZED, f"no user {name!r}")
            record = UserRecord.decode(raw)
            failures = change.get("failures")
            if failures == "+1":
                change = {**change, "failures": record.failures + 1}
            record = replace(record, **change)  # type: ignore[arg-type]
            self.store.set_meta({meta_key(name): record.encode(), **extra})
        self.sync_meta()
        return record

    def unwrap_for(self, name: str, password: bytes) -> TokenKey:
        """The password check: unwrap the token key, counting failures so an account locks after MAX_FAILURES."""
        record = self.users().get(name)
        if record is None:
            raise CKRError(ck.CKR_USER_PIN_NOT_INITIALIZED, f"no user {name!r}")
        if record.locked:
            raise CKRError(ck.CKR_PIN_LOCKED)
        try:
            key = TokenKey.unwrap_with_pin(record.wrapped_key, password)
        except WrongPin:
            record = self._update_user(name, {"failures": "+1"}, {LAST_FAILED + record.role: name.encode()})
            raise CKRError(ck.CKR_PIN_LOCKED if record.locked else ck.CKR_PIN_INCORRECT) from None
        if record.failures:
            self._update_user(name, {"failures": 0}, {})
        return key

    def set_password(self, name: str, password: bytes, key: TokenKey) -> None:
        """Give `name` a new password (resets its failure counter: this is also how an admin unlocks a user)."""
        self._update_user(name, {"wrapped_key": key.wrap_for_pin(password), "failures": 0}, {})

    def new_account(self, name: str, role: str, password: bytes, managed: bool) -> UserRecord:
        assert self.token_key is not None
        return UserRecord(name, role, self.token_key.wrap_for_pin(password), 0, managed)

    # ---- C_InitToken, C_Login, PINs -----------------------------------------------------------------------
    def initial_meta(self, so_pin: bytes, label: bytes, token_key: TokenKey, fips: bool) -> dict[str, bytes | None]:
        """Metadata of a freshly (re-)initialised token: settings back to defaults, one admin, no crypto user."""
        items: dict[str, bytes | None] = {k: None for k in self._meta
                                          if k.startswith((USER_PREFIX, LAST_FAILED, "quorum/"))}
        items.update(dict.fromkeys((*_LEGACY, SETTINGS_KEY)))
        items.update({
            "initialized": b"1",
            "label": label.rstrip(b" "),
            "serial": self._meta.get("serial") or os.urandom(8).hex().encode(),
            FIPS_KEY: b"1" if fips else b"0",
            meta_key(INITIAL_ADMIN): UserRecord(INITIAL_ADMIN, ADMIN, token_key.wrap_for_pin(so_pin), 0,
                                                False).encode(),
        })
        return items

    def login(self, user_type: int, pin: bytes, session: int) -> None:
        with self.lock:
            self.sync_meta()
            if self.user is not None:
                raise CKRError(ck.CKR_USER_ALREADY_LOGGED_IN if self.user == user_type
                               else ck.CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
            role = role_of(user_type)
            name, password = split_pin(pin, role, self.users())
            try:
                self.token_key = self.unwrap_for(name, password)
            except CKRError as exc:
                self.record("login", session, result=exc, user=name, role=role)
                raise
            self.user, self.username = user_type, name
        try:
            self.record("login", session)
        except CKRError:
            self.logout_state()  # a login that could not be recorded did not happen
            raise

    def own_password(self, pin: bytes) -> bytes:
        """A PIN the logged-in user gives for themself may carry their `name:` prefix."""
        assert self.username is not None
        prefix = self.username.encode() + b":"
        return pin[len(prefix):] if pin.startswith(prefix) else pin

    def verify_pin(self, pin: bytes) -> None:
        """CKU_CONTEXT_SPECIFIC: the logged-in user's password again, without changing the login state."""
        with self.lock:
            assert self.username is not None
            self.unwrap_for(self.username, self.own_password(pin))

    def init_user_pin(self, pin: bytes, session: int) -> None:
        """C_InitPIN by the SO: (re)set the default crypto user's password, which also unlocks it."""
        check_new_pin(pin)
        with self.lock:
            self.sync_meta()
            self.put_user(self.new_account(DEFAULT_USER, CRYPTO_USER, pin, managed=False))
        self.record("user.init-pin", session, obj=DEFAULT_USER)

    def set_pin(self, old_pin: bytes, new_pin: bytes, session: int) -> None:
        """C_SetPIN: the logged-in user's password, or the default crypto user's in a public session."""
        with self.lock:
            self.sync_meta()
            if self.username is not None:
                name, old, new = self.username, self.own_password(old_pin), self.own_password(new_pin)
            else:
                name, old = split_pin(old_pin, CRYPTO_USER, self.users())
                new = new_pin
            record = self.users().get(name)
            if record is not None and record.managed:
                self.settings.password.check(new)
            else:
                check_new_pin(new)
            key = self.unwrap_for(name, old)
            self.set_password(name, new, key)
        self.record("user.change-password", session, obj=name)

    def logout_state(self) -> None:
        """Forget the login and the token key."""
        self.user = None
        self.username = None
        if self.token_key is not None:
            self.token_key.clear()
        self.token_key = None

    # ---- audit -----------------------------------------------------------------------------------------------
    def record(self, event: str, session: int | None = None, *, obj: str | int | None = None,
               result: BaseException | None = None, detail: dict[str, object] | None = None,
               user: str | None = None, role: str | None = None, session_object: bool = False) -> None:
        """Append one event to the token's audit log (never call this inside a store transaction).

        The successful creation, change and destruction of a session object is held in memory and written with
        the next batch (see AuditQueue); every other event is written, after the held ones, before this returns."""
        queue = self.audit_queue
        if queue is None:
            return
        if role is None and self.user is not None:
            role = role_of(self.user)
        entry = {
            "time": timestamp(self.clock()), "user": user or self.username, "role": role, "session": session,
            "pid": os.getpid(), "event": event, "object": f"0x{obj:x}" if isinstance(obj, int) else obj,
            "result": result_text(result), "detail": detail,
        }
        if session_object and result is None and event in HELD_EVENTS:
            queue.hold(entry)
        else:
            queue.write(entry)

    def flush_audit(self) -> None:
        """Write the held session-object events now (a session closes, the library finalises)."""
        if self.audit_queue is not None:
            self.audit_queue.write()

    @contextmanager
    def audited(self, event: str, session: int | None, *, obj: str | int | None = None,
                detail: dict[str, object] | None = None) -> Iterator[None]:
        """Record `event` after the block, with its outcome (the CKR code when it raised CKRError)."""
        try:
            yield
        except CKRError as exc:
            self.record(event, session, obj=obj, result=exc, detail=detail)
            raise
        self.record(event, session, obj=obj, detail=detail)

    def _record_head(self, seq: int, digest: str) -> None:
        self.store.set_meta({AUDIT_HEAD: f"{self._serial()}:{seq}:{digest}".encode()})

    def _serial(self) -> str:
        return self._meta.get("serial", b"").decode()  # fixed for the token's life

    def audit_head(self) -> tuple[int, str] | None:
        """The head the store recorded, if it is this token's: a token restored from a backup (new serial, new
        slot) carries its origin's head but starts a log of its own."""
        raw = self.store.all_meta().get(AUDIT_HEAD)
        if raw is None:
            return None
        serial, seq, digest = raw.decode().split(":")
        return (int(seq), digest) if serial == self._serial() else None

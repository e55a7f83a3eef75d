"""A token as one process sees it: persistent state in its store, login state and object cache in memory.

Login state belongs to the application (this process), is shared by all its sessions on the token and is lost
when the last session closes. Sensitive attribute values are sealed under the token key, which exists in memory
only while someone is logged in (the SO and the user each hold a copy wrapped under their own PIN).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pyhsm import constants as ck
from pyhsm.engine.objects import P11Object
from pyhsm.errors import CKRError
from pyhsm.objects import codec
from pyhsm.store.base import TokenStore
from pyhsm.store.sealing import TokenKey, WrongPin

MIN_PIN_LEN = 4
MAX_PIN_LEN = 255
MAX_PIN_FAILURES = 10


class Sealed:
    """A sensitive attribute value still encrypted as it came from the store."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.blob == self.blob

    __hash__ = None  # type: ignore[assignment]


def check_new_pin(pin: bytes) -> None:
    """A PIN being set: MIN_PIN_LEN to MAX_PIN_LEN bytes of valid UTF-8 (CK_UTF8CHAR; overlong forms, encoded
    surrogates and stray bytes are CKR_PIN_INVALID, so every host can type the PIN it was given)."""
    if not MIN_PIN_LEN <= len(pin) <= MAX_PIN_LEN:
        raise CKRError(ck.CKR_PIN_LEN_RANGE, f"PINs are {MIN_PIN_LEN} to {MAX_PIN_LEN} bytes")
    try:
        pin.decode("utf-8")
    except UnicodeDecodeError:
        raise CKRError(ck.CKR_PIN_INVALID, "a PIN must be UTF-8") from None


def pad(text: bytes, size: int) -> bytes:
    return text[:size].ljust(size, b" ")


class Token:
    def __init__(self, slot_id: int, store: TokenStore) -> None:
        self.slot_id = slot_id
        self.store = store
        self.lock = threading.RLock()
        self.user: int | None = None  # CKU_SO / CKU_USER while logged in
        self.token_key: TokenKey | None = None
        self.objects: dict[int, P11Object] = {}  # token objects by handle (= store row id)
        self.session_objects: dict[int, P11Object] = {}
        self._by_label: dict[bytes, list[P11Object]] | None = None  # rebuilt lazily after any change
        self._seq = 0
        self._meta: dict[str, bytes] = {}
        self.reload()

    # ---- persistent metadata -------------------------------------------------------------
    def reload(self) -> None:
        with self.lock:
            self._meta = self.store.all_meta()
            self.objects.clear()
            self.changed()
            self._seq, changes = self.store.changes_since(0)
            self._apply(changes)

    def sync(self) -> None:
        """Pick up what other processes committed (NGINX workers, the CLI) — one cheap check when nothing did."""
        if not self.store.refresh_needed():
            return
        with self.lock:
            self._meta = self.store.all_meta()
            self._seq, changes = self.store.changes_since(self._seq)
            self._apply(changes)

    def _apply(self, changes: Mapping[int, Mapping[int, bytes] | None]) -> None:
        if changes:
            self.changed()
        for oid, raw in changes.items():
            if raw is None:
                self.objects.pop(oid, None)
                continue
            attrs = self._decode_stored(raw)
            existing = self.objects.get(oid)
            if existing is not None:
                existing.replace_attrs(attrs)
            else:
                self.objects[oid] = P11Object(oid, attrs)

    def _decode_stored(self, raw: Mapping[int, bytes]) -> dict[int, Any]:
        attrs: dict[int, Any] = {}
        for attr_type, value in raw.items():
            if attr_type & SEALED_FLAG:
                attrs[attr_type & ~SEALED_FLAG] = Sealed(value)
            else:
                attrs[attr_type] = codec.decode(attr_type, value)
        return attrs

    @property
    def initialized(self) -> bool:
        return self._meta.get("initialized") == b"1"

    @property
    def label(self) -> bytes:
        return pad(self._meta.get("label", b""), 32)

    @property
    def serial(self) -> bytes:
        return pad(self._meta.get("serial", b""), 16)

    def failures(self, who: int) -> int:
        return int(self._meta.get(_fail_key(who), b"0"))

    def flags(self) -> int:
        flags = ck.CKF_RNG | ck.CKF_LOGIN_REQUIRED
        if self.initialized:
            flags |= ck.CKF_TOKEN_INITIALIZED
        if "user_key" in self._meta:
            flags |= ck.CKF_USER_PIN_INITIALIZED
        for who, low, final, locked in (
            (ck.CKU_USER, ck.CKF_USER_PIN_COUNT_LOW, ck.CKF_USER_PIN_FINAL_TRY, ck.CKF_USER_PIN_LOCKED),
            (ck.CKU_SO, ck.CKF_SO_PIN_COUNT_LOW, ck.CKF_SO_PIN_FINAL_TRY, ck.CKF_SO_PIN_LOCKED),
        ):
            count = self.failures(who)
            if count >= MAX_PIN_FAILURES:
                flags |= locked
            elif count == MAX_PIN_FAILURES - 1:
                flags |= final | low
            elif count > 0:
                flags |= low
        return flags

    # ---- initialisation and PINs ---------------------------------------------------------------
    def initialize(self, so_pin: bytes, label: bytes) -> None:
        """C_InitToken: a new token, or the re-initialisation of an existing one (which needs its SO PIN)."""
        check_new_pin(so_pin)
        with self.lock:
            self.sync()
            if self.initialized:
                self._unwrap("so_key", ck.CKU_SO, so_pin)
            token_key = TokenKey.generate()
            with self.store.transaction():
                for oid in list(self.store.load_objects()):
                    self.store.delete_object(oid)
                self.store.set_meta({
                    "initialized": b"1",
                    "label": label.rstrip(b" "),
                    "serial": self._meta.get("serial") or os.urandom(8).hex().encode(),
                    "so_key": token_key.wrap_for_pin(so_pin),
                    "user_key": None,
                    _fail_key(ck.CKU_SO): b"0",
                    _fail_key(ck.CKU_USER): b"0",
                })
            self.logout_state()
            self.reload()

    def login(self, user: int, pin: bytes) -> None:
        with self.lock:
            self.sync()
            if self.user is not None:
                raise CKRError(ck.CKR_USER_ALREADY_LOGGED_IN if self.user == user
                               else ck.CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
            if user == ck.CKU_USER and "user_key" not in self._meta:
                raise CKRError(ck.CKR_USER_PIN_NOT_INITIALIZED)
            self.token_key = self._unwrap(_key_name(user), user, pin)
            self.user = user

    def verify_pin(self, user: int, pin: bytes) -> None:
        """Check a PIN without changing the login state (CKU_CONTEXT_SPECIFIC)."""
        with self.lock:
            self._unwrap(_key_name(user), user, pin)

    def _unwrap(self, meta_key: str, who: int, pin: bytes) -> TokenKey:
        """Unwrap the token key with a PIN, counting failures so a PIN locks after MAX_PIN_FAILURES."""
        if self.failures(who) >= MAX_PIN_FAILURES:
            raise CKRError(ck.CKR_PIN_LOCKED)
        blob = self._meta.get(meta_key)
        if blob is None:
            raise CKRError(ck.CKR_USER_PIN_NOT_INITIALIZED)
        try:
            key = TokenKey.unwrap_with_pin(blob, pin)
        except WrongPin:
            count = self.failures(who) + 1
            self.store.set_meta({_fail_key(who): str(count).encode()})
            self._meta[_fail_key(who)] = str(count).encode()
            raise CKRError(ck.CKR_PIN_LOCKED if count >= MAX_PIN_FAILURES else ck.CKR_PIN_INCORRECT) from None
        if self.failures(who):
            self.store.set_meta({_fail_key(who): b"0"})
            self._meta[_fail_key(who)] = b"0"
        return key

    def init_user_pin(self, pin: bytes) -> None:
        """C_InitPIN by the SO: (re)wrap the token key for the user and unlock the user PIN."""
        check_new_pin(pin)
        assert self.token_key is not None
        with self.lock:
            self.store.set_meta({"user_key": self.token_key.wrap_for_pin(pin), _fail_key(ck.CKU_USER): b"0"})
            self.sync_meta()

    def set_pin(self, who: int, old_pin: bytes, new_pin: bytes) -> None:
        check_new_pin(new_pin)
        with self.lock:
            self.sync()
            key = self._unwrap(_key_name(who), who, old_pin)
            self.store.set_meta({_key_name(who): key.wrap_for_pin(new_pin)})
            self.sync_meta()

    def sync_meta(self) -> None:
        self._meta = self.store.all_meta()

    def logout_state(self) -> None:
        """Forget the login and every plaintext copy of sensitive values."""
        self.user = None
        if self.token_key is not None:
            self.token_key.clear()
        self.token_key = None
        for obj in self.objects.values():
            self._reseal(obj)

    def _reseal(self, obj: P11Object) -> None:
        sealed = obj.cached("sealed", dict)
        if sealed:
            obj.attrs.update((t, Sealed(b)) for t, b in sealed.items())
        obj.forget_plaintext_cache()

    # ---- objects ---------------------------------------------------------------------------------
    def all_objects(self) -> Iterator[P11Object]:
        yield from self.objects.values()
        yield from self.session_objects.values()

    def changed(self) -> None:
        """Every change to the set of objects or their attributes goes through here: the find index is stale."""
        self._by_label = None

    def candidates(self, criteria: Mapping[int, Any]) -> Iterable[P11Object]:
        """Objects that may match a find template: by label through the index (clients mostly find by label)."""
        label = criteria.get(ck.CKA_LABEL)
        if label is None:
            return list(self.all_objects())
        if self._by_label is None:
            index: dict[bytes, list[P11Object]] = {}
            for obj in self.all_objects():
                index.setdefault(obj.attrs.get(ck.CKA_LABEL, b""), []).append(obj)
            self._by_label = index
        return self._by_label.get(label, [])

    def add_session_object(self, obj: P11Object) -> None:
        self.session_objects[obj.handle] = obj
        self.changed()

    def drop_session_objects(self, doomed: Callable[[P11Object], bool]) -> None:
        for handle in [h for h, o in self.session_objects.items() if doomed(o)]:
            del self.session_objects[handle]
        self.changed()

    def get(self, handle: int) -> P11Object | None:
        return self.objects.get(handle) or self.session_objects.get(handle)

    def unseal(self, obj: P11Object) -> P11Object:
        """Make the sensitive values of `obj` available in memory (needs a login: the token key)."""
        # Which values are sealed is cached with the object (every crypto Init asks): the cache is cleared
        # whenever its values change (store refresh, unseal, reseal at logout).
        sealed = obj.cached("sealed_types", lambda: [t for t, v in obj.attrs.items() if isinstance(v, Sealed)])
        if not sealed:
            return obj
        if self.token_key is None:
            raise CKRError(ck.CKR_USER_NOT_LOGGED_IN, "sensitive values need a login")
        kept: dict[int, bytes] = {}
        for attr_type in sealed:
            blob = obj.attrs[attr_type].blob
            kept[attr_type] = blob
            obj.attrs[attr_type] = codec.decode(attr_type, self.token_key.open(blob, _aad(obj, attr_type)))
        obj.forget_plaintext_cache()
        obj.cached("sealed", lambda: kept)
        return obj

    def store_encode(self, attrs: Mapping[int, Any], sensitive: frozenset[int]) -> dict[int, bytes]:
        if self.token_key is None and any(t in attrs for t in sensitive):
            raise CKRError(ck.CKR_USER_NOT_LOGGED_IN, "storing a secret on the token needs a login")
        out: dict[int, bytes] = {}
        for attr_type, value in attrs.items():
            if isinstance(value, Sealed):
                out[attr_type | SEALED_FLAG] = value.blob
            elif attr_type in sensitive:
                assert self.token_key is not None
                raw = codec.encode(attr_type, value)
                out[attr_type | SEALED_FLAG] = self.token_key.seal(raw, _aad_for(attrs, attr_type))
            else:
                out[attr_type] = codec.encode(attr_type, value)
        return out

    def add_token_object(self, attrs: dict[int, Any]) -> P11Object:
        with self.lock:
            encoded = self.store_encode(attrs, _schema_sensitive(attrs))
            oid = self.store.insert_object(encoded)
            # Keep only the sealed form in memory; plaintext comes back through unseal() when a key is used.
            obj = self.objects[oid] = P11Object(oid, self._decode_stored(encoded))
            self.changed()
            return obj

    def update_token_object(self, obj: P11Object, attrs: dict[int, Any]) -> None:
        with self.lock:
            encoded = self.store_encode(attrs, obj.schema.sensitive)
            self.store.update_object(obj.handle, encoded)
            obj.replace_attrs(self._decode_stored(encoded))
            self.changed()

    def destroy_token_object(self, obj: P11Object) -> None:
        with self.lock:
            self.store.delete_object(obj.handle)
            self.objects.pop(obj.handle, None)
            self.changed()


# Sealed values are stored under their attribute type with this bit set; no real attribute uses it.
SEALED_FLAG = 0x2000_0000


def _schema_sensitive(attrs: Mapping[int, Any]) -> frozenset[int]:
    from pyhsm.objects.classes import schema_for

    return schema_for(attrs).sensitive


def _aad(obj: P11Object, attr_type: int) -> bytes:
    return _aad_for(obj.attrs, attr_type)


def _aad_for(attrs: Mapping[int, Any], attr_type: int) -> bytes:
    # Bind every sealed value to its object (CKA_UNIQUE_ID) and attribute, so blobs cannot be swapped around.
    return bytes(attrs[ck.CKA_UNIQUE_ID]) + b"/" + attr_type.to_bytes(8, "big")


def _fail_key(who: int) -> str:
    return "so_failures" if who == ck.CKU_SO else "user_failures"


def _key_name(who: int) -> str:
    return "so_key" if who == ck.CKU_SO else "user_key"

"""A token as one process sees it: persistent state in its store, login state and object cache in memory.

Login state belongs to the application (this process), is shared by all its sessions on the token and is lost
when the last session closes. Sensitive attribute values are sealed under the token key, which exists in memory
only while someone is logged in (every user holds a copy wrapped under their own password).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pyhsm import constants as ck
from pyhsm.engine.accounts import ADMIN, DEFAULT_USER, INITIAL_ADMIN, split_pin
from pyhsm.engine.clock import Clock, now
from pyhsm.engine.objects import P11Object
from pyhsm.engine.token_users import TokenUsers, check_new_pin
from pyhsm.errors import CKRError
from pyhsm.objects import codec
from pyhsm.objects.classes import KEY_CLASSES
from pyhsm.store.base import TokenStore
from pyhsm.store.sealing import TokenKey


class Sealed:
    """A sensitive attribute value still encrypted as it came from the store."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.blob == self.blob

    __hash__ = None  # type: ignore[assignment]


def pad(text: bytes, size: int) -> bytes:
    return text[:size].ljust(size, b" ")


class Token(TokenUsers):
    def __init__(self, slot_id: int, store: TokenStore, audit_path: Path | None = None, clock: Clock = now) -> None:
        super().__init__(slot_id, store, audit_path, clock)
        self.objects: dict[int, P11Object] = {}  # token objects by handle (= store row id)
        self.session_objects: dict[int, P11Object] = {}
        self._by_label: dict[bytes, list[P11Object]] | None = None  # rebuilt lazily after any change
        self._seq = 0
        self.reload()

    # ---- persistent metadata -------------------------------------------------------------
    def reload(self) -> None:
        with self.lock:
            self.sync_meta()
            self.migrate_legacy_credentials()
            self.objects.clear()
            self.changed()
            self._seq, changes = self.store.changes_since(0)
            self._apply(changes)

    def sync(self) -> None:
        """Pick up what other processes committed (NGINX workers, the CLI) — one cheap check when nothing did.
        Under the lock, so that store_stamp() never names a change whose objects are not applied yet."""
        with self.lock:
            if not self.store.refresh_needed():
                return
            self.sync_meta()
            self._seq, changes = self.store.changes_since(self._seq)
            self._apply(changes)

    def store_stamp(self) -> tuple[str, bytes] | None:
        """The store's change stamp for what this process has applied (see SqliteTokenStore.change_stamp)."""
        with self.lock:
            return self.store.change_stamp()

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
        attrs.setdefault(ck.CKA_PYHSM_OWNER, DEFAULT_USER.encode())  # objects from before users existed
        return attrs

    @property
    def label(self) -> bytes:
        return pad(self._meta.get("label", b""), 32)

    @property
    def serial(self) -> bytes:
        return pad(self._meta.get("serial", b""), 16)


    def flags(self) -> int:
        flags = ck.CKF_RNG | ck.CKF_LOGIN_REQUIRED | self.user_flags()
        if self.initialized:
            flags |= ck.CKF_TOKEN_INITIALIZED
        return flags

    def initialize(self, so_pin: bytes, label: bytes, fips: bool, session: int | None = None) -> None:
        """C_InitToken: a new token, or the re-initialisation of an existing one (which needs its SO PIN)."""
        check_new_pin(so_pin)
        with self.lock:
            self.sync()
            if self.initialized:
                name, password = split_pin(so_pin, ADMIN, self.users())
                self.unwrap_for(name, password)
            token_key = TokenKey.generate()
            with self.store.transaction():
                for oid in list(self.store.load_objects()):
                    self.store.delete_object(oid)
                self.store.set_meta(self.initial_meta(so_pin, label, token_key, fips))
            self.logout_state()
            self.reload()
        self.record("token.init", session, user=INITIAL_ADMIN, role=ADMIN,
                    detail={"label": label.rstrip(b" ").decode("utf-8", "replace"), "fips": fips})

    def logout_state(self) -> None:
        """Forget the login and every plaintext copy of sensitive values."""
        super().logout_state()
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

    def drop_session_object(self, obj: P11Object) -> None:
        """C_DestroyObject of one session object: by its handle (a scan of them all made each destroy O(n))."""
        self.session_objects.pop(obj.handle, None)
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
            with self.store.transaction():
                if attrs[ck.CKA_CLASS] in KEY_CLASSES:
                    self._check_key_quota()
                oid = self.store.insert_object(encoded)
            # Keep only the sealed form in memory; plaintext comes back through unseal() when a key is used.
            obj = self.objects[oid] = P11Object(oid, self._decode_stored(encoded))
            self.changed()
            return obj

    def _check_key_quota(self) -> None:
        """Inside the insert's transaction, after catching up with other processes: the count is exact."""
        self.sync()
        limit = self.settings.limits.max_keys
        if sum(1 for o in self.objects.values() if o.object_class in KEY_CLASSES) >= limit:
            raise CKRError(ck.CKR_DEVICE_MEMORY, f"the token holds its quota of {limit} keys")

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



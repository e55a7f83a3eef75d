"""Objects as the engine holds them: decoded attribute values plus a cache for parsed key material."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from pyhsm import constants as ck
from pyhsm.objects.classes import schema_for
from pyhsm.objects.schema import ObjectSchema

SESSION_HANDLE_BASE = 0x4000_0000  # session objects live above every token object row id
_session_handles = itertools.count(SESSION_HANDLE_BASE)


def next_session_object_handle() -> int:
    return next(_session_handles)


class P11Object:
    """One PKCS#11 object. `attrs` holds every attribute, sensitive ones in plaintext only in memory."""

    __slots__ = ("handle", "attrs", "schema", "owner_session", "_cache")

    def __init__(self, handle: int, attrs: dict[int, Any], owner_session: int | None = None) -> None:
        self.handle = handle
        self.attrs = attrs
        self.schema: ObjectSchema = schema_for(attrs)
        self.owner_session = owner_session  # None for token objects
        self._cache: dict[str, Any] = {}

    @property
    def is_token(self) -> bool:
        return bool(self.attrs.get(ck.CKA_TOKEN, False))

    @property
    def is_private(self) -> bool:
        return bool(self.attrs.get(ck.CKA_PRIVATE, False))

    @property
    def object_class(self) -> int:
        return int(self.attrs[ck.CKA_CLASS])

    def cached(self, name: str, factory: Callable[[], Any]) -> Any:
        """Parsed key objects (loading an RSA key costs ~47 ms) live as long as this object version."""
        try:
            return self._cache[name]
        except KeyError:
            value = self._cache[name] = factory()
            return value

    def replace_attrs(self, attrs: dict[int, Any]) -> None:
        self.attrs = attrs
        self._cache.clear()

    def forget_plaintext_cache(self) -> None:
        self._cache.clear()

    def matches(self, criteria: Mapping[int, Any]) -> bool:
        attrs = self.attrs
        for attr_type, value in criteria.items():
            if attr_type not in attrs or attrs[attr_type] != value:
                return False
        return True

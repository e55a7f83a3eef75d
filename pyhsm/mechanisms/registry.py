"""The one mechanism registry.

Each family module (rsa, ec, aes, hmac, digest, ...) defines `Mechanism` subclasses and decorates them with
`@register`. The engine looks mechanisms up here; it performs usage and policy checks itself, mechanisms only do
cryptography. Importing `pyhsm.mechanisms` loads every family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.params import MechanismParam, ParamKind


class MechanismInfo(NamedTuple):
    min_key: int
    max_key: int
    flags: int


class KeyView(Protocol):
    """What a mechanism sees of a key object."""

    @property
    def attrs(self) -> Mapping[int, Any]: ...

    def cached(self, name: str, factory: Callable[[], Any]) -> Any: ...


class CipherOp(Protocol):
    def update(self, data: bytes) -> bytes: ...
    def final(self) -> bytes: ...
    def oneshot(self, data: bytes) -> bytes: ...


class SignOp(Protocol):
    def update(self, data: bytes) -> None: ...
    def final(self) -> bytes: ...
    def oneshot(self, data: bytes) -> bytes: ...


class VerifyOp(Protocol):
    def update(self, data: bytes) -> None: ...
    def final(self, signature: bytes) -> None: ...
    def oneshot(self, data: bytes, signature: bytes) -> None: ...


class DigestOp(Protocol):
    def update(self, data: bytes) -> None: ...
    def final(self) -> bytes: ...
    def oneshot(self, data: bytes) -> bytes: ...


Template = dict[int, Any]


def _unsupported() -> CKRError:
    return CKRError(ck.CKR_MECHANISM_INVALID)


class Mechanism:
    """Base class: every operation is refused unless a subclass implements it."""

    ckm: int
    info: MechanismInfo
    key_types: frozenset[int] = frozenset()
    param_kind: ParamKind = ParamKind.NONE
    generates: int | None = None  # the CKK_* a KEY_GEN / KEY_PAIR_GEN mechanism makes
    derives_data: bool = False  # C_DeriveKey makes a CKO_DATA object holding CKA_VALUE (CKM_HKDF_DATA)

    def check_param(self, param: MechanismParam) -> None:
        if self.param_kind is ParamKind.NONE and param not in (None, b""):
            raise CKRError(ck.CKR_MECHANISM_PARAM_INVALID)

    def encrypt(self, key: KeyView, param: MechanismParam) -> CipherOp:
        raise _unsupported()

    def decrypt(self, key: KeyView, param: MechanismParam) -> CipherOp:
        raise _unsupported()

    def sign(self, key: KeyView, param: MechanismParam) -> SignOp:
        raise _unsupported()

    def verify(self, key: KeyView, param: MechanismParam) -> VerifyOp:
        raise _unsupported()

    def digest(self, param: MechanismParam) -> DigestOp:
        raise _unsupported()

    def generate_key(self, template: Template) -> Template:
        raise _unsupported()

    def generate_key_pair(self, public: Template, private: Template) -> tuple[Template, Template]:
        raise _unsupported()

    def wrap(self, wrapping_key: KeyView, param: MechanismParam, key_material: bytes) -> bytes:
        raise _unsupported()

    def unwrap(self, unwrapping_key: KeyView, param: MechanismParam, wrapped: bytes) -> bytes:
        raise _unsupported()

    def derive(self, base_key: KeyView, param: MechanismParam, template: Template) -> Template:
        raise _unsupported()


_REGISTRY: dict[int, Mechanism] = {}
M = TypeVar("M", bound=type[Mechanism])


def register(cls: M) -> M:
    """Class decorator: instantiate and register a mechanism under its CKM_* number."""
    if cls.ckm in _REGISTRY:
        raise ValueError(f"mechanism 0x{cls.ckm:X} registered twice")
    _REGISTRY[cls.ckm] = cls()
    return cls


_loaded = False


def _load() -> None:
    """Import every family once (they register themselves). Concurrent first calls are safe: the import system
    makes a second thread wait until the module has finished importing."""
    global _loaded
    import pyhsm.mechanisms.families  # noqa: F401

    _loaded = True


def lookup(ckm: int) -> Mechanism:
    if not _loaded:
        _load()
    try:
        return _REGISTRY[ckm]
    except KeyError:
        raise CKRError(ck.CKR_MECHANISM_INVALID) from None


def all_mechanisms() -> Mapping[int, Mechanism]:
    if not _loaded:
        _load()
    return _REGISTRY

"""Connects the engine's offers (pyhsm/engine/native_offers.py) to the native data plane that is compiled into the
inner extension (csrc/dataplane.c)."""

from __future__ import annotations

from typing import Any

from pyhsm._pkcs11 import ffi, lib
from pyhsm.engine.native_offers import NativeOffers, Stamp
from pyhsm.engine.session import OpKind
from pyhsm.pkcs11.native_guards import KINDS

# The data plane's number of each operation kind (csrc/dataplane.h DP_*, listed once in native_guards.KINDS).
_CODES = {kind: KINDS[kind.value.capitalize()] for kind in OpKind if kind.value.capitalize() in KINDS}


def _grant(session: int, kind: OpKind, mechanism: int, key: int, material: bytes, stamp: Stamp | None) -> int:
    path, header = (stamp[0].encode(), stamp[1]) if stamp is not None else (ffi.NULL, ffi.NULL)
    return int(lib.dp_grant(session, _CODES[kind], mechanism, key, material, len(material), path, header))


def connect(engine: Any) -> None:
    offers = NativeOffers()
    offers.sink = _grant
    offers.supports = lambda kind, mechanism: kind in _CODES and bool(lib.dp_supports(_CODES[kind], mechanism))
    engine.native = offers


def reset() -> None:
    """In a forked child: nothing the parent granted is valid."""
    lib.dp_reset()


def native_calls() -> int:
    """How many Init and single-part calls the data plane answered by itself (for tests that must know)."""
    return int(lib.dp_native_calls())

"""Connects the engine's offers (pyhsm/engine/native_offers.py) to the native data plane that is compiled into the
inner extension (csrc/dataplane.c)."""

from __future__ import annotations

from typing import Any

from pyhsm._pkcs11 import ffi, lib
from pyhsm.engine.native_offers import NativeOffers, Stamp


def _grant(session: int, kind: int, mechanism: int, key: int, material: bytes, stamp: Stamp | None) -> int:
    path, header = (stamp[0].encode(), stamp[1]) if stamp is not None else (ffi.NULL, ffi.NULL)
    return int(lib.dp_grant(session, kind, mechanism, key, material, len(material), path, header))


def connect(engine: Any) -> None:
    offers = NativeOffers()
    offers.sink = _grant
    offers.supports = lambda kind, mechanism: bool(lib.dp_supports(kind, mechanism))
    engine.native = offers


def reset() -> None:
    """In a forked child: nothing the parent granted is valid."""
    lib.dp_reset()


def native_calls() -> int:
    """How many Init and single-part calls the data plane answered by itself (for tests that must know)."""
    return int(lib.dp_native_calls())

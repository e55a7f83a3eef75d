"""The engine's door to objects/keys.py, imported on first use.

keys.py needs cryptography's serialization, RSA, EC, X25519/X448 and cipher modules: importing them took about a
fifth of the first C_Initialize, which needs none of them (they are used when a key is created, generated,
wrapped or unwrapped).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def complete_key_material(attrs: dict[int, Any]) -> None:
    from pyhsm.objects import keys

    keys.complete_key_material(attrs)


def private_key_to_pkcs8(attrs: Mapping[int, Any]) -> bytes:
    from pyhsm.objects import keys

    return keys.private_key_to_pkcs8(attrs)


def private_key_from_pkcs8(der: bytes, key_type: int) -> dict[int, Any]:
    from pyhsm.objects import keys

    return keys.private_key_from_pkcs8(der, key_type)

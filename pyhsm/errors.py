"""The one exception type the engine raises; the ABI layer maps it to its CK_RV."""

from __future__ import annotations

from pyhsm import constants as ck


class CKRError(Exception):
    """A PKCS#11 failure carrying the exact CKR_* code to return to the caller."""

    def __init__(self, rv: int, detail: str = "") -> None:
        super().__init__(detail or _name(rv))
        self.rv = rv


def _name(rv: int) -> str:
    for key, value in vars(ck).items():
        if key.startswith("CKR_") and value == rv:
            return key
    return f"CKR_0x{rv:X}"

"""The one exception type the engine raises; the ABI layer maps it to its CK_RV."""

from __future__ import annotations

from pyhsm import constants as ck


class CKRError(Exception):
    """A PKCS#11 failure carrying the exact CKR_* code to return to the caller."""

    def __init__(self, rv: int, detail: str = "") -> None:
        # The CKR_* name is looked up only when the message is read: most errors are mapped to their code and
        # dropped, and a name search per raise made every failing call (a bad handle) cost ~10 us.
        super().__init__(detail)
        self.rv = rv
        self.detail = detail

    def __str__(self) -> str:
        return self.detail or _name(self.rv)


_NAMES: dict[int, str] = {}


def _name(rv: int) -> str:
    if not _NAMES:
        for key, value in reversed(vars(ck).items()):  # the first name of a code wins, as before
            if key.startswith("CKR_") and isinstance(value, int):
                _NAMES[value] = key
    return _NAMES.get(rv, f"CKR_0x{rv:X}")

"""What the C loader calls after starting (or joining) the interpreter.

`start()` registers a Python definition for every one of the 92 inner-table functions, each with
error=CKR_GENERAL_ERROR (cffi would otherwise answer 0 = CKR_OK when a callback fails), and returns the
address of the inner CK_FUNCTION_LIST_3_0. The loader then calls C_GetFunctionStatus through that table as a
sentinel: only a working callback answers CKR_FUNCTION_NOT_PARALLEL.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

from pyhsm import constants as ck
from pyhsm.pkcs11.cdefs import FUNCTION_NAMES

MIN_CRYPTOGRAPHY = (42, 0)
_started = False


def _check_cryptography() -> None:
    try:
        import cryptography
    except ImportError as error:
        raise RuntimeError(f"the cryptography package is not importable: {error}") from None
    version = tuple(int(p) for p in cryptography.__version__.split(".")[:2])
    if version < MIN_CRYPTOGRAPHY:
        raise RuntimeError(f"cryptography {cryptography.__version__} is too old; pyhsm needs >= 42")


def _report(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    # Traceback only: argument values (PINs, key bytes) are never printed. Imported here, not at start-up: it
    # drags in linecache and tokenize, a measurable part of the first C_Initialize.
    import traceback

    sys.stderr.write("pyhsm: internal error, answering CKR_GENERAL_ERROR\n")
    traceback.print_exception(exc_type, exc, tb, file=sys.stderr)


def _answer(rv: int) -> Callable[..., int]:
    def answer(*args: Any) -> int:
        return rv

    return answer


def start() -> int:
    global _started
    from pyhsm._pkcs11 import ffi, lib

    if not _started:
        # Importing the engine creates ~10,000 long-lived container objects (classes, functions, tables): the
        # cyclic collector ran about 25 times over them, for nothing (module-level objects live as long as the
        # process).
        collecting = gc.isenabled()
        gc.disable()
        try:
            _check_cryptography()
            from pyhsm.pkcs11 import abi
        finally:
            if collecting:
                gc.enable()
        for name in FUNCTION_NAMES:
            fallback = ck.CKR_FUNCTION_NOT_PARALLEL if name in ("C_GetFunctionStatus", "C_CancelFunction") \
                else ck.CKR_FUNCTION_NOT_SUPPORTED
            impl = abi.IMPLEMENTED.get(name, _answer(fallback))
            ffi.def_extern(name=f"pyhsm_{name}", error=ck.CKR_GENERAL_ERROR, onerror=_report)(impl)
        _started = True
    return int(ffi.cast("uintptr_t", lib.pyhsm_inner_table()))


def after_fork_child() -> None:
    from pyhsm.pkcs11 import abi

    abi.after_fork_child()

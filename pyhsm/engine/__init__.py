"""The PKCS#11 engine: library, slots, tokens, sessions, objects and operations. It never imports cffi."""

from pyhsm.engine.key_functions import KeyFunctions


class Engine(KeyFunctions):
    """One per process: the methods mirror the C_* functions with Python values and raise CKRError."""


__all__ = ["Engine"]

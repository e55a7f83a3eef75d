"""The PKCS#11 engine: library, slots, tokens, sessions, objects and operations. It never imports cffi."""

from pyhsm.engine.quorum import QuorumFunctions


class Engine(QuorumFunctions):
    """One per process: the methods mirror the C_* functions with Python values and raise CKRError; the management
    API (users, sharing, quorum, settings: pyhsm/engine/users.py and quorum.py) takes session handles the same way."""


__all__ = ["Engine"]

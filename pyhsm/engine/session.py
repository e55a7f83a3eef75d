"""Sessions and their operation state machines.

The rules of PKCS#11 v3.0 section 5.2 live here, once for every operation kind:
- an Init while that kind of operation is active is CKR_OPERATION_ACTIVE; a call without Init is
  CKR_OPERATION_NOT_INITIALIZED;
- a single-part call or a Final ends the operation, except a length query (NULL output buffer) or
  CKR_BUFFER_TOO_SMALL, which keep it and the already computed output for the next call;
- any other error ends the operation;
- a single-part call after an Update (or an Update after a length query of a single-part call) is
  CKR_OPERATION_ACTIVE, and ends the operation like any other error.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pyhsm import constants as ck
from pyhsm.engine.objects import P11Object
from pyhsm.engine.token import Token
from pyhsm.errors import CKRError


class OpKind(enum.Enum):
    # Enum's own __hash__ is Python code (hash of the name); members are singletons, so identity hashing is
    # equivalent and keeps the several dict lookups of every crypto call in C.
    __hash__ = object.__hash__

    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"
    DIGEST = "digest"
    SIGN = "sign"
    VERIFY = "verify"
    FIND = "find"


class Stage(enum.Enum):
    FRESH = "fresh"  # after Init
    SINGLE = "single"  # a single-part call has been length-queried
    MULTI = "multi"  # an Update has happened


class Operation:
    """One active operation of a session. A plain class with slots: one is made per Init, its fields are read on
    every call, and a dataclass added start-up time (this module is imported by the first C_Initialize)."""

    __slots__ = ("impl", "key", "kind", "needs_context_login", "pending", "stage")

    def __init__(self, kind: OpKind, impl: Any, key: P11Object | None = None,
                 needs_context_login: bool = False) -> None:
        self.kind = kind
        self.impl = impl  # CipherOp / SignOp / VerifyOp / DigestOp, or the list of handles of a find
        self.key = key
        self.needs_context_login = needs_context_login  # CKA_ALWAYS_AUTHENTICATE keys need CKU_CONTEXT_SPECIFIC
        self.stage = Stage.FRESH
        self.pending: bytes | None = None  # output computed for a length query / too-small buffer


T = TypeVar("T")

# What a length-convention call hands back to the ABI layer: (required length, bytes to copy or None).
Output = tuple[int, bytes | None]


class Session:
    def __init__(self, handle: int, token: Token, rw: bool) -> None:
        self.handle = handle
        self.token = token
        self.rw = rw
        self.ops: dict[OpKind, Operation] = {}
        self.lock = threading.Lock()  # threads sharing one session take turns

    def state(self) -> int:
        user = self.token.user
        if user == ck.CKU_SO:
            return ck.CKS_RW_SO_FUNCTIONS
        if user == ck.CKU_USER:
            return ck.CKS_RW_USER_FUNCTIONS if self.rw else ck.CKS_RO_USER_FUNCTIONS
        return ck.CKS_RW_PUBLIC_SESSION if self.rw else ck.CKS_RO_PUBLIC_SESSION

    # ---- operation bookkeeping -------------------------------------------------------------------
    def start(self, op: Operation) -> None:
        if op.kind in self.ops:
            raise CKRError(ck.CKR_OPERATION_ACTIVE)
        self.ops[op.kind] = op

    def active(self, kind: OpKind) -> Operation:
        op = self.ops.get(kind)
        if op is None:
            raise CKRError(ck.CKR_OPERATION_NOT_INITIALIZED)
        if op.needs_context_login:
            self.ops.pop(kind)
            raise CKRError(ck.CKR_USER_NOT_LOGGED_IN, "this key needs CKU_CONTEXT_SPECIFIC login first")
        return op

    def end(self, kind: OpKind) -> None:
        self.ops.pop(kind, None)

    def run(self, kind: OpKind, stage: Stage, work: Callable[[Operation], T]) -> T:
        """Run one step of an operation; any error ends the operation (section 5.2)."""
        op = self.active(kind)
        try:
            _check_stage(op, stage)
            result = work(op)
        except Exception:
            self.end(kind)
            raise
        return result

    def produce(self, kind: OpKind, stage: Stage, capacity: int | None,
                compute: Callable[[Operation], bytes], ends: bool) -> Output:
        """The length convention for calls that return data (Encrypt, Sign, Digest, their Final and Update).
        run() written out: every C_Encrypt / C_Sign / C_Digest comes here, and a closure per call showed up."""
        op = self.active(kind)
        try:
            if op.stage is not stage and op.stage is not Stage.FRESH:
                _check_stage(op, stage)
            out = op.pending
            if out is None:
                out = op.pending = compute(op)
                if stage is Stage.SINGLE:
                    op.stage = Stage.SINGLE
        except Exception:
            self.end(kind)
            raise
        if capacity is None or capacity < len(out):
            return len(out), None  # kept for the next call, operation stays active
        op.pending = None
        if ends:
            self.ops.pop(kind, None)
        elif stage is Stage.MULTI:
            op.stage = Stage.MULTI
        return len(out), out

    def consume(self, kind: OpKind, stage: Stage, work: Callable[[Operation], None], ends: bool) -> None:
        """Calls that return no data (SignUpdate, Verify, VerifyFinal, DigestUpdate); run() written out like
        produce(), without a closure per call."""
        op = self.active(kind)
        try:
            _check_stage(op, stage)
            if op.pending is not None:
                raise CKRError(ck.CKR_OPERATION_ACTIVE, "output of the previous call was not collected")
            work(op)
        except Exception:
            self.end(kind)
            raise
        if ends:
            self.ops.pop(kind, None)
        else:
            op.stage = Stage.MULTI


def _check_stage(op: Operation, stage: Stage) -> None:
    """Mixing single- and multi-part calls is an error like any other: it ends the operation too."""
    if stage is Stage.MULTI and op.stage is Stage.SINGLE:
        raise CKRError(ck.CKR_OPERATION_ACTIVE, "a single-part call is in progress")
    if stage is Stage.SINGLE and op.stage is Stage.MULTI:
        raise CKRError(ck.CKR_OPERATION_ACTIVE, "a multi-part operation is in progress")

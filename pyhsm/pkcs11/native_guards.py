"""Which inner-table functions the native data plane answers, and what every other one means to it.

Used at build time by build_abi.py (loaded by path, so pure Python with no imports from pyhsm) to generate one guard
per function the engine answers: csrc/dataplane.h explains the flags. The rule of thumb is conservative: a call
that could change what the engine decided for a grant is MUTATES (a bump of the epoch voids every grant); only the
calls known to change nothing an authorisation depends on are left out of it.
"""

from __future__ import annotations

# Answered first by csrc/dataplane_calls.c (dp_<name>), which forwards to the engine when it cannot.
HOT = ("C_EncryptInit", "C_Encrypt", "C_SignInit", "C_Sign", "C_VerifyInit", "C_Verify", "C_DigestInit",
       "C_Digest", "C_GetSessionInfo", "C_GenerateRandom")

KINDS = {"Encrypt": 0, "Decrypt": 1, "Digest": 2, "Sign": 3, "Verify": 4}  # csrc/dataplane.h DP_*
ALL_KINDS = (1 << len(KINDS)) - 1

MUTATES, ALL, CLOSES, OPS = 0x1, 0x2, 0x4, 0x8
UPDATE_SHIFT, STARTS_SHIFT = 8, 16

# Reads, and operations: nothing in them changes an authorisation.
_UNCHANGING = {"C_GetInfo", "C_GetFunctionList", "C_GetSlotList", "C_GetSlotInfo", "C_GetTokenInfo",
               "C_GetMechanismList", "C_GetMechanismInfo", "C_OpenSession", "C_GetOperationState",
               "C_GetAttributeValue", "C_GetObjectSize", "C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal",
               "C_SeedRandom", "C_GetFunctionStatus", "C_CancelFunction", "C_WaitForSlotEvent",
               "C_GetInterfaceList", "C_GetInterface", "C_SessionCancel"}
# Login state or every session of a slot changes: every native operation is handed back to the engine first.
_EVERY_SESSION = {"C_Initialize", "C_Finalize", "C_InitToken", "C_CloseAllSessions", "C_Login", "C_LoginUser",
                  "C_Logout"}
_SINGLE_KIND_UPDATES = {f"C_{word}{step}": kind for word, kind in KINDS.items() for step in ("Update", "Final")}
_SINGLE_KIND_UPDATES["C_DigestKey"] = KINDS["Digest"]


def _kinds_named(name: str) -> int:
    return sum(1 << kind for word, kind in KINDS.items() if word in name)


def guard_flags(name: str, session_first: bool) -> int:
    """The dataplane.h flags of a function the engine answers."""
    flags = 0 if name in _UNCHANGING or _kinds_named(name) else MUTATES
    if name in _EVERY_SESSION:
        flags |= ALL
    elif name == "C_CloseSession":
        flags |= CLOSES
    elif session_first and (_kinds_named(name) or name in ("C_GetOperationState", "C_SetOperationState",
                                                            "C_SessionCancel")):
        flags |= OPS
    if name in _SINGLE_KIND_UPDATES:
        flags |= (1 << _SINGLE_KIND_UPDATES[name]) << UPDATE_SHIFT
    if name == "C_SetOperationState":
        flags |= ALL_KINDS << STARTS_SHIFT
    elif name.endswith("Init") and _kinds_named(name):
        # C_DecryptInit starts a decryption; C_SignRecoverInit or C_MessageSignInit: assume any kind.
        single = f"C_{name[2:-4]}" in (f"C_{word}" for word in KINDS)
        flags |= (_kinds_named(name) if single else ALL_KINDS) << STARTS_SHIFT
    return flags

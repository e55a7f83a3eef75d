"""Human-readable meanings of CKR_* codes, for the CLI's one-line error messages."""

from __future__ import annotations

from pyhsm import constants as ck


class UsageError(Exception):
    """A request the CLI refuses before asking the engine (exit status 2)."""


class CliError(Exception):
    """An operation that failed for a reason the CLI states itself (exit status 1)."""

MEANINGS: dict[str, str] = {
    "CKR_CANCEL": "the operation was cancelled",
    "CKR_HOST_MEMORY": "out of memory",
    "CKR_SLOT_ID_INVALID": "no such slot",
    "CKR_GENERAL_ERROR": "an unrecoverable internal error occurred",
    "CKR_FUNCTION_FAILED": "the function could not be performed",
    "CKR_ARGUMENTS_BAD": "an argument is invalid",
    "CKR_ATTRIBUTE_READ_ONLY": "the attribute cannot be set or changed",
    "CKR_ATTRIBUTE_SENSITIVE": "the attribute is sensitive and cannot be revealed",
    "CKR_ATTRIBUTE_TYPE_INVALID": "the attribute type is not valid for this object",
    "CKR_ATTRIBUTE_VALUE_INVALID": "an attribute value is invalid",
    "CKR_ACTION_PROHIBITED": "the action is prohibited by policy",
    "CKR_DATA_INVALID": "the input data is invalid",
    "CKR_DATA_LEN_RANGE": "the input data has the wrong length",
    "CKR_DEVICE_ERROR": "the token store reported an error",
    "CKR_DEVICE_MEMORY": "the token store is out of space",
    "CKR_DEVICE_REMOVED": "the token was removed",
    "CKR_ENCRYPTED_DATA_INVALID": "the ciphertext is invalid",
    "CKR_ENCRYPTED_DATA_LEN_RANGE": "the ciphertext has the wrong length",
    "CKR_FUNCTION_NOT_SUPPORTED": "this function is not supported",
    "CKR_KEY_HANDLE_INVALID": "no such key",
    "CKR_KEY_SIZE_RANGE": "the key size is outside the supported range",
    "CKR_KEY_TYPE_INCONSISTENT": "the key type does not fit the mechanism",
    "CKR_KEY_FUNCTION_NOT_PERMITTED": "the key's attributes do not permit this use",
    "CKR_KEY_NOT_WRAPPABLE": "the key cannot be wrapped",
    "CKR_KEY_UNEXTRACTABLE": "the key is not extractable",
    "CKR_MECHANISM_INVALID": "the mechanism is not supported for this operation",
    "CKR_MECHANISM_PARAM_INVALID": "the mechanism parameters are invalid",
    "CKR_OBJECT_HANDLE_INVALID": "no such object",
    "CKR_OPERATION_ACTIVE": "another operation is already active in this session",
    "CKR_OPERATION_NOT_INITIALIZED": "no operation of this kind is active",
    "CKR_PIN_INCORRECT": "the PIN is incorrect",
    "CKR_PIN_INVALID": "the PIN contains invalid characters",
    "CKR_PIN_LEN_RANGE": "the PIN is too short or too long",
    "CKR_PIN_EXPIRED": "the PIN has expired and must be changed",
    "CKR_PIN_LOCKED": "the PIN is locked after too many failed logins",
    "CKR_SESSION_CLOSED": "the session was closed",
    "CKR_SESSION_COUNT": "too many sessions are open",
    "CKR_SESSION_HANDLE_INVALID": "no such session",
    "CKR_SESSION_PARALLEL_NOT_SUPPORTED": "parallel sessions are not supported",
    "CKR_SESSION_READ_ONLY": "the session is read-only",
    "CKR_SESSION_EXISTS": "a session is open on the token, so it cannot be initialised",
    "CKR_SESSION_READ_ONLY_EXISTS": "a read-only session exists, so the SO cannot log in",
    "CKR_SESSION_READ_WRITE_SO_EXISTS": "the SO is logged in, so a read-only session cannot be opened",
    "CKR_SIGNATURE_INVALID": "the signature is invalid",
    "CKR_SIGNATURE_LEN_RANGE": "the signature has the wrong length",
    "CKR_TEMPLATE_INCOMPLETE": "the template lacks a required attribute",
    "CKR_TEMPLATE_INCONSISTENT": "the template's attributes conflict",
    "CKR_TOKEN_NOT_PRESENT": "no token is present in the slot",
    "CKR_TOKEN_NOT_RECOGNIZED": "the token is not initialised or not recognised",
    "CKR_TOKEN_WRITE_PROTECTED": "the token is write-protected",
    "CKR_USER_ALREADY_LOGGED_IN": "a user is already logged in",
    "CKR_USER_NOT_LOGGED_IN": "the required user is not logged in",
    "CKR_USER_PIN_NOT_INITIALIZED": "the user PIN has not been set (run `pyhsm token init`)",
    "CKR_USER_TYPE_INVALID": "the user type is invalid",
    "CKR_USER_ANOTHER_ALREADY_LOGGED_IN": "another user is already logged in",
    "CKR_USER_TOO_MANY_TYPES": "too many user types are logged in",
    "CKR_WRAPPED_KEY_INVALID": "the wrapped key is invalid",
    "CKR_WRAPPED_KEY_LEN_RANGE": "the wrapped key has the wrong length",
    "CKR_RANDOM_SEED_NOT_SUPPORTED": "seeding the random generator is not supported",
    "CKR_DOMAIN_PARAMS_INVALID": "the domain parameters are invalid",
    "CKR_CURVE_NOT_SUPPORTED": "the elliptic curve is not supported",
    "CKR_BUFFER_TOO_SMALL": "the output buffer is too small",
    "CKR_CRYPTOKI_NOT_INITIALIZED": "the library is not initialised",
    "CKR_CRYPTOKI_ALREADY_INITIALIZED": "the library is already initialised",
    "CKR_PIN_TOO_WEAK": "the PIN is too weak",
    "CKR_PUBLIC_KEY_INVALID": "the public key is invalid",
    "CKR_FUNCTION_REJECTED": "the request was rejected",
    "CKR_TOKEN_RESOURCE_EXCEEDED": "the token has run out of resources",
}


def ckr_name(rv: int) -> str:
    for key, value in vars(ck).items():
        if key.startswith("CKR_") and value == rv:
            return key
    return f"CKR_0x{rv:08X}"


def describe(rv: int) -> tuple[str, str]:
    """(name, meaning) of a CK_RV."""
    name = ckr_name(rv)
    return name, MEANINGS.get(name, "PKCS#11 error")

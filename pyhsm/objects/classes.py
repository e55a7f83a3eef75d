"""The object classes pyhsm supports, as attribute tables (PKCS#11 v3.0 section 4).

Defaults chosen where the specification says "token-specific" (documented in README):
- private and secret keys are CKA_PRIVATE, CKA_SENSITIVE and not CKA_EXTRACTABLE unless the template says otherwise,
  so a key created by a careless client (Java's keytool sends an empty private template) is still safe;
- key usage flags default to TRUE for the operations the key type can do and FALSE for the rest (an EC key signs and
  derives but never decrypts; an HMAC key signs but never wraps) — see `usage` below;
- data objects, certificates and public keys are public (CKA_PRIVATE FALSE).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.objects.schema import Attr, Change, ObjectSchema, Rule

R = Rule
C = Change

STORAGE = [
    Attr(ck.CKA_CLASS, rule=R.REQUIRED_ON_CREATE),
    Attr(ck.CKA_TOKEN, default=False, change=C.ON_COPY),
    Attr(ck.CKA_PRIVATE, default=False, change=C.ON_COPY),
    Attr(ck.CKA_MODIFIABLE, default=True, change=C.ON_COPY),
    Attr(ck.CKA_LABEL, default=b"", change=C.ANY),
    Attr(ck.CKA_COPYABLE, default=True, change=C.ONLY_TO_FALSE),
    Attr(ck.CKA_DESTROYABLE, default=True, change=C.ON_COPY),
    Attr(ck.CKA_UNIQUE_ID, rule=R.TOKEN_SUPPLIED),
    # pyhsm vendor attribute: the crypto user who owns the object (pyhsm/engine/ownership.py).
    Attr(ck.CKA_PYHSM_OWNER, rule=R.TOKEN_SUPPLIED),
]

DATA = [
    Attr(ck.CKA_APPLICATION, default=b"", change=C.ANY),
    Attr(ck.CKA_OBJECT_ID, default=b"", change=C.ANY),
    Attr(ck.CKA_VALUE, default=b"", change=C.ANY),
]

CERTIFICATE = [
    Attr(ck.CKA_CERTIFICATE_TYPE, rule=R.REQUIRED_ON_CREATE),
    Attr(ck.CKA_TRUSTED, default=False, so_sets_true=True, change=C.ANY),
    Attr(ck.CKA_CERTIFICATE_CATEGORY, default=ck.CK_CERTIFICATE_CATEGORY_UNSPECIFIED, change=C.ANY),
    Attr(ck.CKA_CHECK_VALUE, default=b""),
    Attr(ck.CKA_START_DATE, default=b"", change=C.ANY),
    Attr(ck.CKA_END_DATE, default=b"", change=C.ANY),
    Attr(ck.CKA_PUBLIC_KEY_INFO, default=b""),
]

X509_CERTIFICATE = [
    Attr(ck.CKA_SUBJECT, rule=R.REQUIRED_ON_CREATE, change=C.ANY),
    Attr(ck.CKA_ID, default=b"", change=C.ANY),
    Attr(ck.CKA_ISSUER, default=b"", change=C.ANY),
    Attr(ck.CKA_SERIAL_NUMBER, default=b"", change=C.ANY),
    Attr(ck.CKA_VALUE, rule=R.REQUIRED_ON_CREATE),
    Attr(ck.CKA_URL, default=b""),
    Attr(ck.CKA_HASH_OF_SUBJECT_PUBLIC_KEY, default=b""),
    Attr(ck.CKA_HASH_OF_ISSUER_PUBLIC_KEY, default=b""),
    Attr(ck.CKA_JAVA_MIDP_SECURITY_DOMAIN, default=0),
    Attr(ck.CKA_NAME_HASH_ALGORITHM, default=ck.CKM_SHA_1),
]

KEY = [
    Attr(ck.CKA_KEY_TYPE, rule=R.REQUIRED_ON_CREATE | R.REQUIRED_ON_UNWRAP),
    Attr(ck.CKA_ID, default=b"", change=C.ANY),
    Attr(ck.CKA_START_DATE, default=b"", change=C.ANY),
    Attr(ck.CKA_END_DATE, default=b"", change=C.ANY),
    Attr(ck.CKA_LOCAL, rule=R.TOKEN_SUPPLIED),
    Attr(ck.CKA_KEY_GEN_MECHANISM, rule=R.TOKEN_SUPPLIED),
    Attr(ck.CKA_ALLOWED_MECHANISMS, default=(), change=C.ANY),
]

# Templates a key imposes on the keys it wraps, unwraps or derives (v3.0 sections 4.8-4.10); fixed at creation.
WRAP_TEMPLATE = [Attr(ck.CKA_WRAP_TEMPLATE, default=())]
UNWRAP_TEMPLATE = [Attr(ck.CKA_UNWRAP_TEMPLATE, default=())]
DERIVE_TEMPLATE = [Attr(ck.CKA_DERIVE_TEMPLATE, default=())]

# pyhsm vendor attributes of keys kept by their owner: a template may set them when the key is made; afterwards
# sharing changes only through the engine's share/unshare API, and quorum values never.
OWNER_CONTROLS = [
    Attr(ck.CKA_PYHSM_SHARED_USERS, default=b""),
    Attr(ck.CKA_PYHSM_MANAGE_QUORUM, default=0),
    Attr(ck.CKA_PYHSM_USE_QUORUM, default=0),
]

PUBLIC_KEY = [
    Attr(ck.CKA_SUBJECT, default=b"", change=C.ANY),
    Attr(ck.CKA_VERIFY_RECOVER, default=False, change=C.ANY),
    Attr(ck.CKA_TRUSTED, default=False, so_sets_true=True, change=C.ANY),
    Attr(ck.CKA_PUBLIC_KEY_INFO, default=b""),
    *WRAP_TEMPLATE,
]

PRIVATE_KEY = [
    Attr(ck.CKA_PRIVATE, default=True, change=C.ON_COPY),
    Attr(ck.CKA_SUBJECT, default=b"", change=C.ANY),
    Attr(ck.CKA_SENSITIVE, default=True, change=C.ONLY_TO_TRUE),
    Attr(ck.CKA_SIGN_RECOVER, default=False, change=C.ANY),
    Attr(ck.CKA_EXTRACTABLE, default=False, change=C.ONLY_TO_FALSE),
    Attr(ck.CKA_ALWAYS_SENSITIVE, rule=R.TOKEN_SUPPLIED),
    Attr(ck.CKA_NEVER_EXTRACTABLE, rule=R.TOKEN_SUPPLIED),
    Attr(ck.CKA_WRAP_WITH_TRUSTED, default=False, change=C.FIXED_ONCE_TRUE),
    Attr(ck.CKA_ALWAYS_AUTHENTICATE, default=False, change=C.ANY),
    Attr(ck.CKA_PUBLIC_KEY_INFO, default=b""),
    *UNWRAP_TEMPLATE,
    *DERIVE_TEMPLATE,
    *OWNER_CONTROLS,
]

SECRET_KEY = [
    Attr(ck.CKA_PRIVATE, default=True, change=C.ON_COPY),
    Attr(ck.CKA_SENSITIVE, default=True, change=C.ONLY_TO_TRUE),
    Attr(ck.CKA_EXTRACTABLE, default=False, change=C.ONLY_TO_FALSE),
    Attr(ck.CKA_ALWAYS_SENSITIVE, rule=R.TOKEN_SUPPLIED),
    Attr(ck.CKA_NEVER_EXTRACTABLE, rule=R.TOKEN_SUPPLIED),
    Attr(ck.CKA_CHECK_VALUE, rule=R.TOKEN_SUPPLIED),
    Attr(ck.CKA_WRAP_WITH_TRUSTED, default=False, change=C.FIXED_ONCE_TRUE),
    Attr(ck.CKA_TRUSTED, default=False, so_sets_true=True, change=C.ANY),
    *WRAP_TEMPLATE,
    *UNWRAP_TEMPLATE,
    *DERIVE_TEMPLATE,
    *OWNER_CONTROLS,
]

RSA_PUBLIC = [
    Attr(ck.CKA_MODULUS, rule=R.REQUIRED_ON_CREATE | R.FORBIDDEN_ON_GENERATE),
    Attr(ck.CKA_MODULUS_BITS, rule=R.FORBIDDEN_ON_CREATE | R.REQUIRED_ON_GENERATE),
    Attr(ck.CKA_PUBLIC_EXPONENT, rule=R.REQUIRED_ON_CREATE),
]

RSA_PRIVATE = [
    Attr(ck.CKA_MODULUS, rule=R.KEY_MATERIAL),
    Attr(ck.CKA_PUBLIC_EXPONENT, rule=R.FORBIDDEN_ON_GENERATE | R.FORBIDDEN_ON_UNWRAP),
    Attr(ck.CKA_PRIVATE_EXPONENT, rule=R.KEY_MATERIAL, sensitive=True),
    *(
        Attr(t, rule=R.FORBIDDEN_ON_GENERATE | R.FORBIDDEN_ON_UNWRAP, sensitive=True)
        for t in (ck.CKA_PRIME_1, ck.CKA_PRIME_2, ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT)
    ),
]

EC_PUBLIC = [
    Attr(ck.CKA_EC_PARAMS, rule=R.REQUIRED_ON_CREATE | R.REQUIRED_ON_GENERATE),
    Attr(ck.CKA_EC_POINT, rule=R.REQUIRED_ON_CREATE | R.FORBIDDEN_ON_GENERATE),
]

EC_PRIVATE = [
    Attr(ck.CKA_EC_PARAMS, rule=R.KEY_MATERIAL),
    Attr(ck.CKA_VALUE, rule=R.KEY_MATERIAL, sensitive=True),
    # Not in the specification's table: clients (libp11, Java) read the public point from the private key.
    Attr(ck.CKA_EC_POINT, rule=R.TOKEN_SUPPLIED),
]

SECRET_VALUE = [
    Attr(ck.CKA_VALUE, rule=R.KEY_MATERIAL, sensitive=True),
    Attr(ck.CKA_VALUE_LEN, rule=R.FORBIDDEN_ON_CREATE),
]

# Usage flags each key class has (v3.0 sections 4.8-4.10), and which of them a key type can actually use.
PUBLIC_USAGE = (ck.CKA_ENCRYPT, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_DERIVE)
PRIVATE_USAGE = (ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_UNWRAP, ck.CKA_DERIVE)
SECRET_USAGE = (ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_UNWRAP, ck.CKA_DERIVE)
RSA_CAN = {ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_UNWRAP}
EC_CAN = {ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_DERIVE}
EDWARDS_CAN = {ck.CKA_SIGN, ck.CKA_VERIFY}
MONTGOMERY_CAN = {ck.CKA_DERIVE}
CIPHER_CAN = {ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_WRAP, ck.CKA_UNWRAP}
AES_CAN = CIPHER_CAN | {ck.CKA_SIGN, ck.CKA_VERIFY}  # CMAC
MAC_CAN = {ck.CKA_SIGN, ck.CKA_VERIFY}
GENERIC_CAN = MAC_CAN | {ck.CKA_DERIVE}  # HMAC, HKDF, SP800-108, CONCATENATE_BASE_AND_KEY
HKDF_CAN = {ck.CKA_DERIVE}


def usage(flags: tuple[int, ...], can: set[int]) -> list[Attr]:
    """A key type's usage flags: TRUE by default for what it can do, FALSE otherwise; clients may change them."""
    return [Attr(t, default=t in can, change=C.ANY) for t in flags]


KEY_PAIRS = (  # key type, name, public part, private part, what its keys can do
    (ck.CKK_RSA, "RSA", RSA_PUBLIC, RSA_PRIVATE, RSA_CAN),
    (ck.CKK_EC, "EC", EC_PUBLIC, EC_PRIVATE, EC_CAN),
    # Edwards (Ed25519/Ed448) and Montgomery (X25519/X448) keys have the EC tables' layout (v3.0 2.3.6-2.3.9).
    (ck.CKK_EC_EDWARDS, "Edwards", EC_PUBLIC, EC_PRIVATE, EDWARDS_CAN),
    (ck.CKK_EC_MONTGOMERY, "Montgomery", EC_PUBLIC, EC_PRIVATE, MONTGOMERY_CAN),
)
SECRET_KEYS = (
    (ck.CKK_AES, "AES key", AES_CAN),
    (ck.CKK_DES3, "DES3 key", CIPHER_CAN),
    (ck.CKK_GENERIC_SECRET, "generic secret key", GENERIC_CAN),
    (ck.CKK_SHA_1_HMAC, "SHA-1 HMAC key", MAC_CAN),
    (ck.CKK_SHA224_HMAC, "SHA-224 HMAC key", MAC_CAN),
    (ck.CKK_SHA256_HMAC, "SHA-256 HMAC key", MAC_CAN),
    (ck.CKK_SHA384_HMAC, "SHA-384 HMAC key", MAC_CAN),
    (ck.CKK_SHA512_HMAC, "SHA-512 HMAC key", MAC_CAN),
    (ck.CKK_SHA3_224_HMAC, "SHA3-224 HMAC key", MAC_CAN),
    (ck.CKK_SHA3_256_HMAC, "SHA3-256 HMAC key", MAC_CAN),
    (ck.CKK_SHA3_384_HMAC, "SHA3-384 HMAC key", MAC_CAN),
    (ck.CKK_SHA3_512_HMAC, "SHA3-512 HMAC key", MAC_CAN),
    (ck.CKK_HKDF, "HKDF key", HKDF_CAN),
)

SCHEMAS: dict[tuple[int, int | None], ObjectSchema] = {
    (ck.CKO_DATA, None): ObjectSchema("data object", STORAGE, DATA),
    (ck.CKO_CERTIFICATE, ck.CKC_X_509): ObjectSchema("X.509 certificate", STORAGE, CERTIFICATE, X509_CERTIFICATE),
    **{
        # A public key never derives: the private half does.
        (ck.CKO_PUBLIC_KEY, key_type): ObjectSchema(f"{name} public key", STORAGE, KEY, PUBLIC_KEY, public,
                                                    usage(PUBLIC_USAGE, can - {ck.CKA_DERIVE}))
        for key_type, name, public, _, can in KEY_PAIRS
    },
    **{
        (ck.CKO_PRIVATE_KEY, key_type): ObjectSchema(f"{name} private key", STORAGE, KEY, PRIVATE_KEY, private,
                                                     usage(PRIVATE_USAGE, can))
        for key_type, name, _, private, can in KEY_PAIRS
    },
    **{
        (ck.CKO_SECRET_KEY, key_type): ObjectSchema(name, STORAGE, KEY, SECRET_KEY, SECRET_VALUE,
                                                    usage(SECRET_USAGE, can))
        for key_type, name, can in SECRET_KEYS
    },
}

KEY_CLASSES = (ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY)


def subtype_attr(object_class: int) -> int | None:
    if object_class in KEY_CLASSES:
        return ck.CKA_KEY_TYPE
    if object_class == ck.CKO_CERTIFICATE:
        return ck.CKA_CERTIFICATE_TYPE
    return None


def schema_for(template: Mapping[int, Any]) -> ObjectSchema:
    """Pick the table for a template by its CKA_CLASS and key / certificate type."""
    if ck.CKA_CLASS not in template:
        raise CKRError(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS is required")
    object_class = template[ck.CKA_CLASS]
    sub_attr = subtype_attr(object_class)
    subtype = None
    if sub_attr is not None:
        if sub_attr not in template:
            raise CKRError(ck.CKR_TEMPLATE_INCOMPLETE, "the key or certificate type is required")
        subtype = template[sub_attr]
    schema = SCHEMAS.get((object_class, subtype))
    if schema is None:
        known_class = any(c == object_class for c, _ in SCHEMAS)
        raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID if known_class or sub_attr is None
                       else ck.CKR_TEMPLATE_INCONSISTENT, "unsupported object class or type")
    return schema

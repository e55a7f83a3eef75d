"""Edwards (Ed25519, Ed448) and Montgomery (X25519, X448) key material: how CKA_EC_PARAMS names the curve, how
CKA_EC_POINT carries the public key, and PKCS#8 for wrapping.

CKA_EC_PARAMS is accepted in every encoding clients use: the PKCS#11 v3.0 printable curve names ("edwards25519",
"edwards448", "curve25519", "curve448" as a DER PrintableString), the RFC 8410 OIDs (1.3.101.110-113, PKCS#11 v3.1),
the GnuPG OIDs and OpenSC 0.23 pkcs11-tool's (mis-encoded) "curve25519". Keys the token makes from PKCS#8 are labelled
with the RFC 8410 OID. CKA_EC_POINT is the DER OCTET STRING of the raw public key (v3.0); a raw public key is
accepted on import. CKA_VALUE of a private key is the raw private key (RFC 8032 / RFC 7748 byte string).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, x448, x25519

from pyhsm import constants as ck
from pyhsm.errors import CKRError


def _printable(name: str) -> bytes:
    return bytes([0x13, len(name)]) + name.encode()


@dataclass(frozen=True)
class OkpCurve:
    name: str
    key_type: int  # CKK_EC_EDWARDS or CKK_EC_MONTGOMERY
    bits: int
    private_len: int
    public_len: int
    private_class: Any  # the pyca/cryptography private key class
    public_class: Any
    oid: bytes  # DER of the RFC 8410 OID

    def load_private(self, value: bytes) -> Any:
        if len(value) != self.private_len:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, f"{self.name} private keys are {self.private_len} bytes")
        return self.private_class.from_private_bytes(value)

    def load_public(self, encoded: bytes) -> Any:
        try:
            return self.public_class.from_public_bytes(self.raw_public(encoded))
        except ValueError:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, f"not a {self.name} public key") from None

    def raw_public(self, encoded: bytes) -> bytes:
        """The raw public key from CKA_EC_POINT (DER OCTET STRING) or from the raw bytes themselves."""
        encoded = bytes(encoded)
        if len(encoded) == self.public_len + 2 and encoded[:2] == bytes([0x04, self.public_len]):
            return encoded[2:]
        if len(encoded) != self.public_len:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, f"{self.name} public keys are {self.public_len} bytes")
        return encoded


ED25519 = OkpCurve("Ed25519", ck.CKK_EC_EDWARDS, 255, 32, 32, ed25519.Ed25519PrivateKey,
                   ed25519.Ed25519PublicKey, bytes.fromhex("06032b6570"))
ED448 = OkpCurve("Ed448", ck.CKK_EC_EDWARDS, 448, 57, 57, ed448.Ed448PrivateKey, ed448.Ed448PublicKey,
                 bytes.fromhex("06032b6571"))
X25519 = OkpCurve("X25519", ck.CKK_EC_MONTGOMERY, 255, 32, 32, x25519.X25519PrivateKey, x25519.X25519PublicKey,
                  bytes.fromhex("06032b656e"))
X448 = OkpCurve("X448", ck.CKK_EC_MONTGOMERY, 448, 56, 56, x448.X448PrivateKey, x448.X448PublicKey,
                bytes.fromhex("06032b656f"))

_BY_PARAMS: dict[bytes, OkpCurve] = {
    ED25519.oid: ED25519, _printable("edwards25519"): ED25519, bytes.fromhex("06092b06010401da470f01"): ED25519,
    ED448.oid: ED448, _printable("edwards448"): ED448,
    X25519.oid: X25519, _printable("curve25519"): X25519, bytes.fromhex("060a2b060104019755010501"): X25519,
    # pkcs11-tool 0.23 sends "curve25519" with a length byte one too large (13 0B + 10 characters); accepted as
    # that client's only way to ask for an X25519 key.
    b"\x13\x0bcurve25519": X25519,
    X448.oid: X448, _printable("curve448"): X448,
}
OKP_KEY_TYPES = (ck.CKK_EC_EDWARDS, ck.CKK_EC_MONTGOMERY)


def okp_curve(params: bytes, key_type: int) -> OkpCurve:
    """CKA_EC_PARAMS of an Edwards or Montgomery key -> its curve; a curve of the other family (or an unknown one)
    is CKR_CURVE_NOT_SUPPORTED, something that is not an OID or PrintableString CKR_DOMAIN_PARAMS_INVALID."""
    params = bytes(params)
    curve = _BY_PARAMS.get(params)
    if curve is not None and curve.key_type == key_type:
        return curve
    if len(params) < 3 or params[0] not in (0x06, 0x13) or params[1] != len(params) - 2:
        raise CKRError(ck.CKR_DOMAIN_PARAMS_INVALID, "CKA_EC_PARAMS is not a curve OID or name")
    raise CKRError(ck.CKR_CURVE_NOT_SUPPORTED)


def der_octet_string(data: bytes) -> bytes:
    return bytes([0x04, len(data)]) + data  # every OKP public key is shorter than 128 bytes


def complete_okp_key(attrs: dict[int, Any]) -> None:
    """Validate imported Edwards / Montgomery keys; a private key gets its CKA_EC_POINT."""
    curve = okp_curve(attrs[ck.CKA_EC_PARAMS], attrs[ck.CKA_KEY_TYPE])
    if attrs[ck.CKA_CLASS] == ck.CKO_PRIVATE_KEY:
        key = curve.load_private(bytes(attrs[ck.CKA_VALUE]))
        attrs[ck.CKA_EC_POINT] = der_octet_string(key.public_key().public_bytes_raw())
    else:
        curve.load_public(attrs[ck.CKA_EC_POINT])


def okp_to_pkcs8(attrs: Any) -> bytes:
    curve = okp_curve(attrs[ck.CKA_EC_PARAMS], attrs[ck.CKA_KEY_TYPE])
    key = curve.load_private(bytes(attrs[ck.CKA_VALUE]))
    return bytes(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def okp_from_pkcs8(key: Any, key_type: int) -> dict[int, Any] | None:
    """Attributes of an unwrapped Edwards / Montgomery private key, or None when `key` is not one of `key_type`."""
    for curve in (ED25519, ED448, X25519, X448):
        if isinstance(key, curve.private_class) and curve.key_type == key_type:
            return {ck.CKA_EC_PARAMS: curve.oid, ck.CKA_VALUE: key.private_bytes_raw()}
    return None

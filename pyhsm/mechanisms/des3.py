"""Triple-DES mechanisms (PKCS#11 v3.0 section 6.x "Triple DES", FIPS 46-3 / SP 800-67): CKM_DES3_KEY_GEN,
CKM_DES3_ECB, CKM_DES3_CBC, CKM_DES3_CBC_PAD, for three-key (24-byte) CKK_DES3 keys.

pyca/cryptography keeps TripleDES in its `decrepit` module; its wheels carry their own OpenSSL, in which 3DES is
part of the default provider, so this works on a stock Debian 12 without enabling OpenSSL's legacy provider.
Key sizes in CK_MECHANISM_INFO are in bytes, as for AES.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.block import BlockCipher, Cbc, CbcPad, Ecb
from pyhsm.mechanisms.generic import random_bytes
from pyhsm.mechanisms.registry import KeyView, Mechanism, MechanismInfo, Template, register

BLOCK = 8
KEY_BYTES = 24
_CIPHER_FLAGS = ck.CKF_ENCRYPT | ck.CKF_DECRYPT


def with_odd_parity(key: bytes) -> bytes:
    """Each DES key byte carries 7 key bits and a parity bit making the number of 1 bits odd (FIPS 46-3)."""
    return bytes((b & 0xFE) | (1 - bin(b >> 1).count("1") % 2) for b in key)


def des3_algorithm(key: KeyView) -> TripleDES:
    def load() -> TripleDES:
        value = bytes(key.attrs.get(ck.CKA_VALUE, b""))
        if len(value) != KEY_BYTES:
            raise CKRError(ck.CKR_KEY_SIZE_RANGE, "DES3 keys are 24 bytes")
        return TripleDES(value)

    result: TripleDES = key.cached("des3.algorithm", load)
    return result


class Des3Mechanism(Mechanism):
    key_types = frozenset({ck.CKK_DES3})
    info = MechanismInfo(KEY_BYTES, KEY_BYTES, _CIPHER_FLAGS)


@register
class Des3KeyGen(Mechanism):
    """24 random bytes with odd parity; keys whose halves repeat (which would be single or two-key DES) are
    drawn again."""

    ckm = ck.CKM_DES3_KEY_GEN
    generates = ck.CKK_DES3
    info = MechanismInfo(KEY_BYTES, KEY_BYTES, ck.CKF_GENERATE)

    def generate_key(self, template: Template) -> Template:
        length = template.get(ck.CKA_VALUE_LEN)
        if length is not None and int(length) != KEY_BYTES:
            raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, "DES3 keys are 24 bytes")
        while True:
            key = with_odd_parity(random_bytes(KEY_BYTES))
            if key[:8] != key[8:16] and key[8:16] != key[16:]:
                return {ck.CKA_VALUE: key}


class Des3BlockCipher(Des3Mechanism, BlockCipher):
    block = BLOCK

    def algorithm(self, key: KeyView) -> TripleDES:
        return des3_algorithm(key)


@register
class Des3Ecb(Des3BlockCipher, Ecb):
    ckm = ck.CKM_DES3_ECB


@register
class Des3Cbc(Des3BlockCipher, Cbc):
    ckm = ck.CKM_DES3_CBC


@register
class Des3CbcPad(Des3BlockCipher, CbcPad):
    ckm = ck.CKM_DES3_CBC_PAD
    info = MechanismInfo(KEY_BYTES, KEY_BYTES, _CIPHER_FLAGS | ck.CKF_WRAP | ck.CKF_UNWRAP)

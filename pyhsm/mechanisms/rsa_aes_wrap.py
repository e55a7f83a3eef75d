"""CKM_RSA_AES_KEY_WRAP (PKCS#11 v3.0 section 2.1.21): wrap any key under an RSA public key.

Wrapping draws a temporary AES key of ulAESKeyBits, encrypts it with RSA-OAEP (the CK_RSA_PKCS_OAEP_PARAMS inside
CK_RSA_AES_KEY_WRAP_PARAMS), wraps the target key's material with it using CKM_AES_KEY_WRAP_KWP (RFC 5649) and
returns the RSA ciphertext followed by the KWP output; the temporary key is then forgotten. Unwrapping reverses
both steps with the RSA private key. A private key travels as PKCS#8 (what the engine hands to every wrap
mechanism), so `openssl pkeyutl` + `openssl enc -id-aesN-wrap-pad` can open the result.
"""

from __future__ import annotations

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.aes_wrap import kwp_decrypt, kwp_encrypt
from pyhsm.mechanisms.generic import param_invalid, random_bytes
from pyhsm.mechanisms.params import MechanismParam, ParamKind, RsaAesWrapParams
from pyhsm.mechanisms.registry import KeyView, MechanismInfo, register
from pyhsm.mechanisms.rsa import OP_MAX_BITS, OP_MIN_BITS, WRAP_UNWRAP, RsaMechanism
from pyhsm.mechanisms.rsa_keys import modulus_len, private_key, public_key
from pyhsm.mechanisms.rsa_padded import oaep_padding

AES_KEY_BITS = frozenset({128, 192, 256})


def _params(param: MechanismParam) -> RsaAesWrapParams:
    if not isinstance(param, RsaAesWrapParams):
        raise param_invalid("CK_RSA_AES_KEY_WRAP_PARAMS required")
    if param.aes_key_bits not in AES_KEY_BITS:
        raise param_invalid("ulAESKeyBits must be 128, 192 or 256")
    oaep_padding(param.oaep)
    return param


@register
class RsaAesKeyWrap(RsaMechanism):
    ckm = ck.CKM_RSA_AES_KEY_WRAP
    info = MechanismInfo(OP_MIN_BITS, OP_MAX_BITS, WRAP_UNWRAP)
    param_kind = ParamKind.RSA_AES_WRAP

    def check_param(self, param: MechanismParam) -> None:
        _params(param)

    def wrap(self, wrapping_key: KeyView, param: MechanismParam, key_material: bytes) -> bytes:
        p = _params(param)
        if wrapping_key.attrs.get(ck.CKA_CLASS) != ck.CKO_PUBLIC_KEY:
            raise CKRError(ck.CKR_WRAPPING_KEY_TYPE_INCONSISTENT, "wrapping needs the RSA public key")
        pub = public_key(wrapping_key)
        pad = oaep_padding(p.oaep)
        if modulus_len(pub) - 2 * pad.algorithm.digest_size - 2 < p.aes_key_bits // 8:
            raise CKRError(ck.CKR_WRAPPING_KEY_SIZE_RANGE, "the RSA key is too small for this OAEP hash")
        aes_key = random_bytes(p.aes_key_bits // 8)
        try:
            wrapped = kwp_encrypt(aes_key, None, key_material)
        except CKRError:
            raise CKRError(ck.CKR_KEY_SIZE_RANGE) from None
        return pub.encrypt(aes_key, pad) + wrapped

    def unwrap(self, unwrapping_key: KeyView, param: MechanismParam, wrapped: bytes) -> bytes:
        p = _params(param)
        if unwrapping_key.attrs.get(ck.CKA_CLASS) != ck.CKO_PRIVATE_KEY:
            raise CKRError(ck.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "unwrapping needs the RSA private key")
        priv = private_key(unwrapping_key)
        k = modulus_len(priv)
        if len(wrapped) < k + 16 or (len(wrapped) - k) % 8:
            raise CKRError(ck.CKR_WRAPPED_KEY_LEN_RANGE)
        try:
            aes_key = priv.decrypt(wrapped[:k], oaep_padding(p.oaep))
        except ValueError:
            raise CKRError(ck.CKR_WRAPPED_KEY_INVALID) from None
        if len(aes_key) != p.aes_key_bits // 8:
            raise CKRError(ck.CKR_WRAPPED_KEY_INVALID, "the temporary AES key has the wrong length")
        try:
            return kwp_decrypt(aes_key, None, wrapped[k:])
        except CKRError:
            raise CKRError(ck.CKR_WRAPPED_KEY_INVALID) from None

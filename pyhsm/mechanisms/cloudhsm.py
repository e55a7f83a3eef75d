"""AWS CloudHSM vendor mechanisms (numbers from CloudHSM's cloudhsm_pkcs11_vendor_defs.h; docs/shared
oracle-tde-and-cloudhsm.md part B).

- CKM_CLOUDHSM_AES_GCM (CKM_VENDOR_DEFINED | CKM_AES_GCM): AES-GCM whose 12-byte IV the token generates and
  prepends to the output (IV || ciphertext || tag) instead of writing it back into CK_GCM_PARAMS; pIv must be NULL.
  Decryption and unwrapping expect the IV in front. Usable for C_Encrypt/C_Decrypt and C_WrapKey/C_UnwrapKey.
- CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD (| CKM_AES_KEY_WRAP): RFC 3394, block-aligned keys only.
- CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD (| CKM_AES_KEY_WRAP_PAD): PKCS#5 padding to 8 bytes (always 1..8 bytes),
  then RFC 3394.
- CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD (| 0x216F): "zeros after the key bits, if necessary, to block align",
  which AWS specifies as RFC 5649 (KWP: the real length travels in the integrity check value, so unwrapping
  recovers it).

INFERRED (the shared doc gives only names and numbers; the semantics above follow AWS's "AES key wrapping in AWS
CloudHSM" page): the key wraps take the IV as CloudHSM does — NULL (the algorithm's default IV, recommended) or
exactly that default IV; any other IV is CKR_MECHANISM_PARAM_INVALID. CKM_CLOUDHSM_AES_GCM accepts any ulIvLen
with pIv NULL, and is single-part (Update calls are collected; output appears at Final), as CloudHSM lists it for
C_Encrypt/C_Decrypt only. The key wraps are advertised for wrapping only, as CloudHSM lists them.
"""

from __future__ import annotations

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.aes import AesMechanism, aes_algorithm
from pyhsm.mechanisms.aes_gcm import GcmEncryptOp, aesgcm, gcm_decrypt, gcm_params
from pyhsm.mechanisms.aes_wrap import (
    KW_IV,
    KWP_IV,
    AesKeyWrapBase,
    kw_decrypt,
    kw_encrypt,
    kwp_decrypt,
    kwp_encrypt,
    pkcs7_kw_decrypt,
    pkcs7_kw_encrypt,
)
from pyhsm.mechanisms.generic import MAX_COLLECTED, BufferedCipherOp, WrapsWithCipher, param_invalid, random_bytes
from pyhsm.mechanisms.params import GcmParams, MechanismParam, ParamKind
from pyhsm.mechanisms.registry import KeyView, MechanismInfo, register

GENERATED_IV_BYTES = 12
_WRAP_ONLY = MechanismInfo(16, 32, ck.CKF_WRAP | ck.CKF_UNWRAP)


@register
class CloudHsmAesGcm(AesMechanism, WrapsWithCipher):
    ckm = ck.CKM_CLOUDHSM_AES_GCM
    info = MechanismInfo(16, 32, ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_WRAP | ck.CKF_UNWRAP)
    param_kind = ParamKind.GCM

    def check_param(self, param: MechanismParam) -> None:
        gcm_params(param, iv_from_caller=False)

    def encrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        p, aead, algorithm = gcm_params(param, iv_from_caller=False), aesgcm(key), aes_algorithm(key)

        def encrypt(data: bytes) -> bytes:
            iv = random_bytes(GENERATED_IV_BYTES)
            op = GcmEncryptOp(aead, algorithm, GcmParams(iv, 8 * len(iv), p.aad, p.tag_bits))
            return iv + op.oneshot(data)

        return BufferedCipherOp(encrypt, MAX_COLLECTED, ck.CKR_DATA_LEN_RANGE)

    def decrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        p, aead, algorithm = gcm_params(param, iv_from_caller=False), aesgcm(key), aes_algorithm(key)

        def decrypt(data: bytes) -> bytes:
            if len(data) < GENERATED_IV_BYTES + p.tag_bits // 8:
                raise CKRError(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "the IV and the tag are missing")
            iv = data[:GENERATED_IV_BYTES]
            return gcm_decrypt(aead, algorithm, GcmParams(iv, 8 * len(iv), p.aad, p.tag_bits))(data[len(iv):])

        return BufferedCipherOp(decrypt, MAX_COLLECTED, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)


class CloudHsmKeyWrap(AesKeyWrapBase):
    info = _WRAP_ONLY
    default_iv: bytes

    def check_param(self, param: MechanismParam) -> None:
        super().check_param(param)
        if param not in (None, b"", self.default_iv):
            raise param_invalid("only the algorithm's default IV (or NULL) is accepted")


@register
class CloudHsmAesKeyWrapNoPad(CloudHsmKeyWrap):
    ckm = ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD
    default_iv = KW_IV
    functions = (kw_encrypt, kw_decrypt)


@register
class CloudHsmAesKeyWrapPkcs5Pad(CloudHsmKeyWrap):
    ckm = ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD
    default_iv = KW_IV
    functions = (pkcs7_kw_encrypt, pkcs7_kw_decrypt)


@register
class CloudHsmAesKeyWrapZeroPad(CloudHsmKeyWrap):
    ckm = ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD
    default_iv = KWP_IV
    iv_size = 4
    functions = (kwp_encrypt, kwp_decrypt)

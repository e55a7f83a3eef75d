"""AES-GCM (PKCS#11 v3.0 section 2.10.x, NIST SP 800-38D): encrypt output is ciphertext || tag; decryption
buffers everything and releases plaintext only at Final, after the tag has been checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.aes import AesMechanism, aes_algorithm
from pyhsm.mechanisms.generic import MAX_COLLECTED, BufferedCipherOp, WrapsWithCipher, param_invalid
from pyhsm.mechanisms.params import GcmParams, MechanismParam, ParamKind
from pyhsm.mechanisms.registry import KeyView, MechanismInfo, register

GCM_TAG_BITS = frozenset({32, 64, 96, 104, 112, 120, 128})  # SP 800-38D section 5.2.1.2
GCM_IV_BYTES = (8, 128)  # what pyca/cryptography accepts


# ---- GCM ------------------------------------------------------------------------------------------------------
def gcm_params(param: MechanismParam, iv_from_caller: bool = True) -> GcmParams:
    """ulIvBits is not checked (clients disagree on it; the IV length is authoritative). With `iv_from_caller`
    False the token makes the IV and the caller's pIv must be NULL (CKM_CLOUDHSM_AES_GCM)."""
    if not isinstance(param, GcmParams):
        raise param_invalid("CK_GCM_PARAMS required")
    if not iv_from_caller:
        if param.iv:
            raise param_invalid("pIv must be NULL: the token generates the IV")
    elif not GCM_IV_BYTES[0] <= len(param.iv) <= GCM_IV_BYTES[1]:
        raise param_invalid(f"the GCM IV must be {GCM_IV_BYTES[0]}..{GCM_IV_BYTES[1]} bytes")
    if param.tag_bits not in GCM_TAG_BITS:
        raise param_invalid(f"ulTagBits must be one of {sorted(GCM_TAG_BITS)}")
    return param


def aesgcm(key: KeyView) -> AESGCM:
    result: AESGCM = key.cached("aes.gcm", lambda: AESGCM(bytes(key.attrs[ck.CKA_VALUE])))
    return result


class GcmEncryptOp:
    """Output is ciphertext || tag (the tag at Final); a single-part call is one AESGCM call."""

    __slots__ = ("_aead", "_algorithm", "_ctx", "_p", "_tag_len")

    def __init__(self, aead: AESGCM, algorithm: algorithms.AES, p: GcmParams) -> None:
        self._aead, self._algorithm, self._p = aead, algorithm, p
        self._tag_len = p.tag_bits // 8
        self._ctx: Any = None

    def _context(self) -> Any:
        if self._ctx is None:
            self._ctx = Cipher(self._algorithm, modes.GCM(self._p.iv)).encryptor()
            if self._p.aad:
                self._ctx.authenticate_additional_data(self._p.aad)
        return self._ctx

    def update(self, data: bytes) -> bytes:
        return bytes(self._context().update(data))

    def final(self) -> bytes:
        ctx = self._context()
        tail = bytes(ctx.finalize())
        return tail + bytes(ctx.tag[:self._tag_len])

    def oneshot(self, data: bytes) -> bytes:
        out = self._aead.encrypt(self._p.iv, data, self._p.aad or None)
        return out if self._tag_len == 16 else out[:len(data) + self._tag_len]


def gcm_decrypt_op(aead: AESGCM, algorithm: algorithms.AES, p: GcmParams) -> BufferedCipherOp:
    return BufferedCipherOp(gcm_decrypt(aead, algorithm, p), MAX_COLLECTED, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)


def gcm_decrypt(aead: AESGCM, algorithm: algorithms.AES, p: GcmParams) -> Callable[[bytes], bytes]:
    """ciphertext || tag -> plaintext, or CKR_ENCRYPTED_DATA_INVALID when the tag does not match."""
    tag_len = p.tag_bits // 8

    def decrypt(data: bytes) -> bytes:
        if len(data) < tag_len:
            raise CKRError(ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
        try:
            if tag_len == 16:
                return aead.decrypt(p.iv, data, p.aad or None)
            ctx = Cipher(algorithm, modes.GCM(p.iv, data[-tag_len:], min_tag_length=tag_len)).decryptor()
            if p.aad:
                ctx.authenticate_additional_data(p.aad)
            return bytes(ctx.update(data[:-tag_len])) + bytes(ctx.finalize())
        except InvalidTag:
            raise CKRError(ck.CKR_ENCRYPTED_DATA_INVALID, "GCM tag mismatch") from None

    return decrypt


@register
class AesGcm(AesMechanism, WrapsWithCipher):
    """Also a wrap mechanism: the wrapped key is ciphertext || tag under the caller's IV and AAD."""

    ckm = ck.CKM_AES_GCM
    info = MechanismInfo(16, 32, ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_WRAP | ck.CKF_UNWRAP)
    param_kind = ParamKind.GCM

    def check_param(self, param: MechanismParam) -> None:
        gcm_params(param)

    def encrypt(self, key: KeyView, param: MechanismParam) -> GcmEncryptOp:
        return GcmEncryptOp(aesgcm(key), aes_algorithm(key), gcm_params(param))

    def decrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        return gcm_decrypt_op(aesgcm(key), aes_algorithm(key), gcm_params(param))

"""AES mechanisms (PKCS#11 v3.0 section 2.10): key generation, ECB, CBC, CBC_PAD, CTR, GCM, CMAC.

The key wrap mechanisms live in `aes_wrap.py`, GCM in `aes_gcm.py`, CCM and CTS in `aes_ccm_cts.py`; the block
operations shared with DES3 in `block.py`. GCM decryption releases nothing before the tag has been checked.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.block import BlockCipher, Cbc, CbcPad, Ecb
from pyhsm.mechanisms.generic import (
    MacSignOp,
    MacVerifyOp,
    param_invalid,
    random_bytes,
    required_len,
)
from pyhsm.mechanisms.params import CtrParams, MechanismParam, ParamKind
from pyhsm.mechanisms.registry import (
    KeyView,
    Mechanism,
    MechanismInfo,
    Template,
    register,
)

BLOCK = 16
KEY_SIZES = (16, 24, 32)
_CIPHER_FLAGS = ck.CKF_ENCRYPT | ck.CKF_DECRYPT


def aes_algorithm(key: KeyView) -> algorithms.AES:
    def load() -> algorithms.AES:
        try:
            return algorithms.AES(bytes(key.attrs[ck.CKA_VALUE]))
        except (KeyError, ValueError):
            raise CKRError(ck.CKR_KEY_SIZE_RANGE, "AES keys are 16, 24 or 32 bytes") from None

    result: algorithms.AES = key.cached("aes.algorithm", load)
    return result


class AesMechanism(Mechanism):
    key_types = frozenset({ck.CKK_AES})
    info = MechanismInfo(16, 32, _CIPHER_FLAGS)


@register
class AesKeyGen(Mechanism):
    """{CKA_VALUE: CKA_VALUE_LEN random bytes}."""

    ckm = ck.CKM_AES_KEY_GEN
    generates = ck.CKK_AES
    info = MechanismInfo(16, 32, ck.CKF_GENERATE)

    def generate_key(self, template: Template) -> Template:
        length = required_len(template)
        if length not in KEY_SIZES:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE_LEN must be 16, 24 or 32")
        return {ck.CKA_VALUE: random_bytes(length)}


# ---- ECB, CBC, CBC_PAD (block.py) ----------------------------------------------------------------------------
class AesBlockCipher(AesMechanism, BlockCipher):
    block = BLOCK

    def algorithm(self, key: KeyView) -> algorithms.AES:
        return aes_algorithm(key)


@register
class AesEcb(AesBlockCipher, Ecb):
    ckm = ck.CKM_AES_ECB


@register
class AesCbc(AesBlockCipher, Cbc):
    ckm = ck.CKM_AES_CBC


@register
class AesCbcPad(AesBlockCipher, CbcPad):
    ckm = ck.CKM_AES_CBC_PAD
    info = MechanismInfo(16, 32, _CIPHER_FLAGS | ck.CKF_WRAP | ck.CKF_UNWRAP)


# ---- CTR ------------------------------------------------------------------------------------------------------
class CtrOp:
    """Refuses to run the counter (its low ulCounterBits bits) past its last value instead of wrapping."""

    __slots__ = ("_ctx", "_left", "_length_error")

    def __init__(self, ctx: Any, left: int, length_error: int) -> None:
        self._ctx, self._left, self._length_error = ctx, left, length_error

    def update(self, data: bytes) -> bytes:
        self._left -= len(data)
        if self._left < 0:
            raise CKRError(self._length_error, "the counter would wrap")
        return bytes(self._ctx.update(data))

    def final(self) -> bytes:
        return bytes(self._ctx.finalize())

    def oneshot(self, data: bytes) -> bytes:
        return self.update(data) + self.final()


def _ctr(param: MechanismParam) -> CtrParams:
    if not isinstance(param, CtrParams) or not 0 < param.counter_bits <= 128 or len(param.counter_block) != BLOCK:
        raise param_invalid("CK_AES_CTR_PARAMS with 0 < ulCounterBits <= 128 required")
    return param


@register
class AesCtr(AesMechanism):
    ckm = ck.CKM_AES_CTR
    param_kind = ParamKind.CTR

    def check_param(self, param: MechanismParam) -> None:
        _ctr(param)

    def _op(self, key: KeyView, param: MechanismParam, encrypt: bool) -> CtrOp:
        p = _ctr(param)
        space = 1 << p.counter_bits
        blocks_left = space - int.from_bytes(p.counter_block, "big") % space
        cipher = Cipher(aes_algorithm(key), modes.CTR(p.counter_block))
        ctx = cipher.encryptor() if encrypt else cipher.decryptor()
        return CtrOp(ctx, blocks_left * BLOCK, ck.CKR_DATA_LEN_RANGE if encrypt else ck.CKR_ENCRYPTED_DATA_LEN_RANGE)

    def encrypt(self, key: KeyView, param: MechanismParam) -> CtrOp:
        return self._op(key, param, True)

    def decrypt(self, key: KeyView, param: MechanismParam) -> CtrOp:
        return self._op(key, param, False)


# ---- CMAC -----------------------------------------------------------------------------------------------------
def _cmac_op(algorithm: algorithms.AES) -> MacSignOp:
    def once(data: bytes) -> bytes:
        ctx = cmac.CMAC(algorithm)
        ctx.update(data)
        return ctx.finalize()

    return MacSignOp(lambda: cmac.CMAC(algorithm), lambda ctx: bytes(ctx.finalize()), once)


@register
class AesCmac(AesMechanism):
    """16-byte MAC (NIST SP 800-38B); verification compares in constant time."""

    ckm = ck.CKM_AES_CMAC
    info = MechanismInfo(16, 32, ck.CKF_SIGN | ck.CKF_VERIFY)

    def sign(self, key: KeyView, param: MechanismParam) -> MacSignOp:
        return _cmac_op(aes_algorithm(key))

    def verify(self, key: KeyView, param: MechanismParam) -> MacVerifyOp:
        return MacVerifyOp(_cmac_op(aes_algorithm(key)), BLOCK)


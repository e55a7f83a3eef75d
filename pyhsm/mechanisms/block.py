"""What the block cipher families (AES, DES3) share: ECB, CBC and CBC with PKCS#7 padding, as operations over a
pyca/cryptography cipher context and as mechanism classes a family completes with its block size and cipher.

Multi-part Update calls return every whole block that is ready (the cipher contexts buffer the remainder);
CBC_PAD decryption holds back the last block until Final, where the padding is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.generic import WrapsWithCipher, param_invalid
from pyhsm.mechanisms.params import MechanismParam, ParamKind
from pyhsm.mechanisms.registry import KeyView, Mechanism

Constructor = Callable[[Any, Any], Any]  # (algorithm, mode) -> a pyca/cryptography cipher context


def public_constructors() -> tuple[Constructor, Constructor]:
    return (lambda algorithm, mode: Cipher(algorithm, mode).encryptor(),
            lambda algorithm, mode: Cipher(algorithm, mode).decryptor())


def _context_constructors() -> tuple[Constructor, Constructor]:
    """(new encryption context, new decryption context) for (algorithm, mode).

    `Cipher(algorithm, mode).encryptor()` spends more than half of its ~4.6 us in ABC isinstance checks and mode
    validation before it calls pyca/cryptography's Rust constructor, and every C_EncryptInit / C_DecryptInit pays
    it. The modes here are checked by us first (BlockCipher.iv), so where this pyca/cryptography has the Rust
    constructors (>= 43) they are called directly, after a trial against the public API; a private API may change,
    so anything unexpected there means the public one."""
    public = public_constructors()
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        direct = rust_openssl.ciphers.create_encryption_ctx, rust_openssl.ciphers.create_decryption_ctx
        probe = algorithms.AES(bytes(range(16))), modes.CBC(bytes(16))
        block = bytes(range(16, 32))
        encrypted = direct[0](*probe).update(block)
        if encrypted != public[0](*probe).update(block) or direct[1](*probe).update(encrypted) != block:
            raise ValueError("unexpected result")
        return direct
    except Exception:  # whatever the private API does differently: see the docstring
        return public


new_encryptor, new_decryptor = _context_constructors()


class BlockCipherOp:
    """Data must be a whole number of blocks in total; `length_error` names the failure for this direction."""

    __slots__ = ("_block", "_ctx", "_length_error")

    def __init__(self, ctx: Any, length_error: int, block: int) -> None:
        self._ctx, self._length_error, self._block = ctx, length_error, block

    def update(self, data: bytes) -> bytes:
        return bytes(self._ctx.update(data))

    def final(self) -> bytes:
        try:
            return bytes(self._ctx.finalize())
        except ValueError:
            raise CKRError(self._length_error) from None

    def oneshot(self, data: bytes) -> bytes:
        if len(data) % self._block:
            raise CKRError(self._length_error)
        return bytes(self._ctx.update(data)) + bytes(self._ctx.finalize())


class PadEncryptOp:
    """PKCS#7 padding: a multi-part operation pads through pyca/cryptography's padder (made on the first Update);
    a single-part call appends the padding itself, one cipher call in all."""

    __slots__ = ("_block", "_ctx", "_padder")

    def __init__(self, ctx: Any, block: int) -> None:
        self._ctx, self._block = ctx, block
        self._padder: Any = None

    def _padding(self) -> Any:
        if self._padder is None:
            self._padder = padding.PKCS7(8 * self._block).padder()
        return self._padder

    def update(self, data: bytes) -> bytes:
        return bytes(self._ctx.update(self._padding().update(data)))

    def final(self) -> bytes:
        return bytes(self._ctx.update(self._padding().finalize())) + bytes(self._ctx.finalize())

    def oneshot(self, data: bytes) -> bytes:
        pad = self._block - len(data) % self._block
        return bytes(self._ctx.update(data + bytes((pad,)) * pad)) + bytes(self._ctx.finalize())


class UnpadDecryptOp:
    """Multi-part: the unpadder (made on the first Update) keeps the last block back until Final, where the
    padding is checked. Single-part: one cipher call, then the padding is checked and cut here."""

    __slots__ = ("_block", "_ctx", "_length", "_unpadder")

    def __init__(self, ctx: Any, block: int) -> None:
        self._ctx, self._block = ctx, block
        self._unpadder: Any = None
        self._length = 0

    def _unpadding(self) -> Any:
        if self._unpadder is None:
            self._unpadder = padding.PKCS7(8 * self._block).unpadder()
        return self._unpadder

    def update(self, data: bytes) -> bytes:
        self._length += len(data)
        return bytes(self._unpadding().update(self._ctx.update(data)))

    def final(self) -> bytes:
        if not self._length or self._length % self._block:
            raise CKRError(ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
        unpadder = self._unpadding()
        tail = unpadder.update(self._ctx.finalize())
        try:
            return bytes(tail) + bytes(unpadder.finalize())
        except ValueError:
            raise CKRError(ck.CKR_ENCRYPTED_DATA_INVALID) from None

    def oneshot(self, data: bytes) -> bytes:
        # The answer itself says whether the padding was valid, so checking it in variable time tells no more.
        if not data or len(data) % self._block:
            raise CKRError(ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
        plain = bytes(self._ctx.update(data)) + bytes(self._ctx.finalize())
        pad = plain[-1]
        if not 1 <= pad <= self._block or plain[-pad:] != bytes((pad,)) * pad:
            raise CKRError(ck.CKR_ENCRYPTED_DATA_INVALID)
        return plain[:-pad]


# ---- the modes, for any block cipher family ---------------------------------------------------------------------
class BlockCipher(Mechanism):
    """A family (AES, DES3) supplies its block size in bytes and `algorithm(key)`, the pyca/cryptography cipher."""

    block: int

    def algorithm(self, key: KeyView) -> Any:
        raise NotImplementedError

    def iv(self, param: MechanismParam) -> bytes:
        if not isinstance(param, bytes) or len(param) != self.block:
            raise param_invalid(f"a {self.block}-byte IV is required")
        return param


_ECB = modes.ECB()  # stateless


class Ecb(BlockCipher):
    def encrypt(self, key: KeyView, param: MechanismParam) -> BlockCipherOp:
        return BlockCipherOp(new_encryptor(self.algorithm(key), _ECB), ck.CKR_DATA_LEN_RANGE, self.block)

    def decrypt(self, key: KeyView, param: MechanismParam) -> BlockCipherOp:
        return BlockCipherOp(new_decryptor(self.algorithm(key), _ECB), ck.CKR_ENCRYPTED_DATA_LEN_RANGE, self.block)


class Cbc(BlockCipher):
    param_kind = ParamKind.BYTES

    def check_param(self, param: MechanismParam) -> None:
        self.iv(param)

    def encrypt(self, key: KeyView, param: MechanismParam) -> BlockCipherOp:
        ctx = new_encryptor(self.algorithm(key), modes.CBC(self.iv(param)))
        return BlockCipherOp(ctx, ck.CKR_DATA_LEN_RANGE, self.block)

    def decrypt(self, key: KeyView, param: MechanismParam) -> BlockCipherOp:
        ctx = new_decryptor(self.algorithm(key), modes.CBC(self.iv(param)))
        return BlockCipherOp(ctx, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, self.block)


class CbcPad(BlockCipher, WrapsWithCipher):
    """CBC with PKCS#7 padding; also a wrap mechanism (wrapping is single-part encryption of the key material)."""

    param_kind = ParamKind.BYTES

    def check_param(self, param: MechanismParam) -> None:
        self.iv(param)

    def encrypt(self, key: KeyView, param: MechanismParam) -> PadEncryptOp:
        return PadEncryptOp(new_encryptor(self.algorithm(key), modes.CBC(self.iv(param))), self.block)

    def decrypt(self, key: KeyView, param: MechanismParam) -> UnpadDecryptOp:
        return UnpadDecryptOp(new_decryptor(self.algorithm(key), modes.CBC(self.iv(param))), self.block)

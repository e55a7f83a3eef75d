"""AES-CCM and AES-CTS (PKCS#11 v3.0 sections 2.10.x).

CKM_AES_CCM (NIST SP 800-38C) with CK_CCM_PARAMS: ulDataLen is the message (plaintext) length, which CCM must know
before the first block — encryption input must be exactly ulDataLen bytes, decryption input ulDataLen + ulMACLen
bytes (ciphertext || MAC); anything else is CKR_DATA_LEN_RANGE / CKR_ENCRYPTED_DATA_LEN_RANGE. Nonces are 7..13
bytes, MACs 4..16 bytes (even). Both directions collect Update calls and act at Final; decryption releases nothing
before the MAC has been checked.

CKM_AES_CTS: CBC with ciphertext stealing, variant CS3 of the SP 800-38A addendum (the last two ciphertext blocks
always swapped, as Kerberos does, RFC 3962), with a 16-byte IV. Input is at least one block; exactly one block is
plain CBC. Update calls are collected (the last two blocks can only be produced at the end).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.aes import BLOCK, AesBlockCipher, AesMechanism, aes_algorithm
from pyhsm.mechanisms.generic import MAX_COLLECTED, BufferedCipherOp, param_invalid
from pyhsm.mechanisms.params import CcmParams, MechanismParam, ParamKind
from pyhsm.mechanisms.registry import KeyView, register

CCM_MAC_BYTES = frozenset({4, 6, 8, 10, 12, 14, 16})


# ---- CCM ------------------------------------------------------------------------------------------------------
def _ccm(param: MechanismParam) -> CcmParams:
    if not isinstance(param, CcmParams):
        raise param_invalid("CK_CCM_PARAMS required")
    if not 7 <= len(param.nonce) <= 13:
        raise param_invalid("the CCM nonce must be 7..13 bytes")
    if param.mac_len not in CCM_MAC_BYTES:
        raise param_invalid("ulMACLen must be 4, 6, 8, 10, 12, 14 or 16")
    if param.data_len >= 1 << (8 * (15 - len(param.nonce))):
        raise param_invalid("ulDataLen does not fit the length field this nonce leaves")
    return param


def _aesccm(key: KeyView, mac_len: int) -> AESCCM:
    return AESCCM(bytes(key.attrs[ck.CKA_VALUE]), tag_length=mac_len)


@register
class AesCcm(AesMechanism):
    ckm = ck.CKM_AES_CCM
    param_kind = ParamKind.CCM

    def check_param(self, param: MechanismParam) -> None:
        _ccm(param)

    def encrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        p = _ccm(param)
        aead = _aesccm(key, p.mac_len)

        def encrypt(data: bytes) -> bytes:
            if len(data) != p.data_len:
                raise CKRError(ck.CKR_DATA_LEN_RANGE, "the input must be ulDataLen bytes")
            return aead.encrypt(p.nonce, data, p.aad or None)

        return BufferedCipherOp(encrypt, p.data_len, ck.CKR_DATA_LEN_RANGE)

    def decrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        p = _ccm(param)
        aead = _aesccm(key, p.mac_len)

        def decrypt(data: bytes) -> bytes:
            if len(data) != p.data_len + p.mac_len:
                raise CKRError(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "the input must be ulDataLen + ulMACLen bytes")
            try:
                return aead.decrypt(p.nonce, data, p.aad or None)
            except InvalidTag:
                raise CKRError(ck.CKR_ENCRYPTED_DATA_INVALID, "CCM MAC mismatch") from None

        return BufferedCipherOp(decrypt, p.data_len + p.mac_len, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)


# ---- CTS (CBC-CS3) --------------------------------------------------------------------------------------------
def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def cts_encrypt(key: KeyView, iv: bytes, data: bytes) -> bytes:
    if len(data) < BLOCK:
        raise CKRError(ck.CKR_DATA_LEN_RANGE, "CTS needs at least one block")
    tail = len(data) % BLOCK or BLOCK
    encryptor = Cipher(aes_algorithm(key), modes.CBC(iv)).encryptor()
    ct = encryptor.update(data + bytes(BLOCK - tail)) + encryptor.finalize()
    if len(data) == BLOCK:
        return ct
    # C1 .. C(n-2) || Cn || the first `tail` bytes of C(n-1)
    return ct[:-2 * BLOCK] + ct[-BLOCK:] + ct[-2 * BLOCK:-2 * BLOCK + tail]


def cts_decrypt(key: KeyView, iv: bytes, data: bytes) -> bytes:
    if len(data) < BLOCK:
        raise CKRError(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "CTS needs at least one block")
    algorithm = aes_algorithm(key)
    if len(data) == BLOCK:
        decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
        return decryptor.update(data) + decryptor.finalize()
    tail = len(data) % BLOCK or BLOCK
    head, last_full, stolen = data[:-BLOCK - tail], data[-BLOCK - tail:-tail], data[-tail:]
    ecb = Cipher(algorithm, modes.ECB()).decryptor()
    z = ecb.update(last_full) + ecb.finalize()  # = C(n-1) XOR (Pn || zeros)
    previous = stolen + z[tail:]  # the whole C(n-1)
    decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
    front = decryptor.update(head + previous) + decryptor.finalize()
    return front + _xor(z[:tail], previous[:tail])


@register
class AesCts(AesBlockCipher):
    ckm = ck.CKM_AES_CTS
    param_kind = ParamKind.BYTES

    def check_param(self, param: MechanismParam) -> None:
        self.iv(param)

    def encrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        iv = self.iv(param)
        return BufferedCipherOp(lambda data: cts_encrypt(key, iv, data), MAX_COLLECTED, ck.CKR_DATA_LEN_RANGE)

    def decrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        iv = self.iv(param)
        return BufferedCipherOp(lambda data: cts_decrypt(key, iv, data), MAX_COLLECTED, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)

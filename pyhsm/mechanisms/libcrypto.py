"""Raw RSA through the system libcrypto (OpenSSL 3), via cffi in ABI mode.

pyca/cryptography cannot do the raw RSA private operation (CKM_RSA_X_509) nor PKCS#1 v1.5 type 1 padding over
input that is not a DigestInfo (CKM_RSA_PKCS as pkcs11-tool uses it). A Python pow() would be slow and not
constant-time, so these go to OpenSSL's EVP_PKEY API, which blinds the private operation and uses constant-time
bignum code. cffi releases the GIL around every call.

Keys are loaded once from DER (PKCS#1 RSAPrivateKey / RSAPublicKey) and cached by the caller; each operation gets
its own short-lived EVP_PKEY_CTX so concurrent threads never share a context. The OpenSSL error queue is shared
with the host process (which may itself use libcrypto.so.3), so we always clear what we leave there.
"""

from __future__ import annotations

import threading
from typing import Any

_CDEF = """
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;

EVP_PKEY *d2i_PrivateKey(int type, EVP_PKEY **a, const unsigned char **pp, long length);
EVP_PKEY *d2i_PublicKey(int type, EVP_PKEY **a, const unsigned char **pp, long length);
void EVP_PKEY_free(EVP_PKEY *pkey);

EVP_PKEY_CTX *EVP_PKEY_CTX_new(EVP_PKEY *pkey, void *e);
void EVP_PKEY_CTX_free(EVP_PKEY_CTX *ctx);
int EVP_PKEY_CTX_set_rsa_padding(EVP_PKEY_CTX *ctx, int pad_mode);

int EVP_PKEY_sign_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_sign(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen,
                  const unsigned char *tbs, size_t tbslen);
int EVP_PKEY_encrypt_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_encrypt(EVP_PKEY_CTX *ctx, unsigned char *out, size_t *outlen,
                     const unsigned char *in, size_t inlen);
int EVP_PKEY_decrypt_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_decrypt(EVP_PKEY_CTX *ctx, unsigned char *out, size_t *outlen,
                     const unsigned char *in, size_t inlen);

void ERR_clear_error(void);
unsigned long ERR_peek_error(void);
"""

EVP_PKEY_RSA = 6
RSA_PKCS1_PADDING = 1
RSA_NO_PADDING = 3

# Made on first use: parsing the declarations imports pycparser, a noticeable part of the first C_Initialize
# (baselines.md: <= 60 ms), and most hosts never need raw RSA.
_ffi: Any = None
_lib: Any = None
_lib_lock = threading.Lock()
LIBRARY_NAMES = ("libcrypto.so.3", "libcrypto.so")


class LibcryptoError(Exception):
    """An OpenSSL call failed (bad input for the key, e.g. a value not below the modulus)."""


def _load() -> Any:
    global _ffi, _lib
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                import cffi

                _ffi = cffi.FFI()
                _ffi.cdef(_CDEF)
                errors = []
                for name in LIBRARY_NAMES:
                    try:
                        _lib = _ffi.dlopen(name)
                        break
                    except OSError as exc:
                        errors.append(str(exc))
                else:
                    raise LibcryptoError("cannot load libcrypto: " + "; ".join(errors))
    return _lib


class PKey:
    """An EVP_PKEY, freed when this object is garbage collected."""

    __slots__ = ("ptr", "size")

    def __init__(self, ptr: Any, size: int) -> None:
        self.ptr = ptr
        self.size = size  # modulus length in bytes


def _d2i(private: bool, der: bytes, size: int) -> PKey:
    lib = _load()
    buf = _ffi.from_buffer(der)
    pp = _ffi.new("const unsigned char **")
    pp[0] = _ffi.cast("const unsigned char *", buf)
    loader = lib.d2i_PrivateKey if private else lib.d2i_PublicKey
    ptr = loader(EVP_PKEY_RSA, _ffi.NULL, pp, len(der))
    if ptr == _ffi.NULL:
        lib.ERR_clear_error()
        raise LibcryptoError("libcrypto could not parse the RSA key")
    return PKey(_ffi.gc(ptr, lib.EVP_PKEY_free), size)


def rsa_private_key(der: bytes, size: int) -> PKey:
    """From a PKCS#1 RSAPrivateKey DER encoding; `size` is the modulus length in bytes."""
    return _d2i(True, der, size)


def rsa_public_key(der: bytes, size: int) -> PKey:
    """From a PKCS#1 RSAPublicKey DER encoding."""
    return _d2i(False, der, size)


def _run(key: PKey, init: str, op: str, padding: int, data: bytes) -> bytes:
    lib = _load()
    ctx = lib.EVP_PKEY_CTX_new(key.ptr, _ffi.NULL)
    if ctx == _ffi.NULL:
        lib.ERR_clear_error()
        raise LibcryptoError("EVP_PKEY_CTX_new failed")
    try:
        if getattr(lib, init)(ctx) <= 0 or lib.EVP_PKEY_CTX_set_rsa_padding(ctx, padding) <= 0:
            raise LibcryptoError(f"{init} failed")
        out = _ffi.new("unsigned char[]", key.size)
        out_len = _ffi.new("size_t *", key.size)
        if getattr(lib, op)(ctx, out, out_len, data, len(data)) <= 0:
            raise LibcryptoError(f"{op} failed")
        return bytes(_ffi.buffer(out, out_len[0]))
    except LibcryptoError:
        lib.ERR_clear_error()
        raise
    finally:
        lib.EVP_PKEY_CTX_free(ctx)


def raw_private(key: PKey, data: bytes) -> bytes:
    """data^d mod n, blinded and constant-time; `data` must be exactly the modulus length and below n."""
    return _run(key, "EVP_PKEY_decrypt_init", "EVP_PKEY_decrypt", RSA_NO_PADDING, data)


def raw_public(key: PKey, data: bytes) -> bytes:
    """data^e mod n; `data` must be exactly the modulus length and below n."""
    return _run(key, "EVP_PKEY_encrypt_init", "EVP_PKEY_encrypt", RSA_NO_PADDING, data)


def error_queue_is_empty() -> bool:
    """True when this thread's OpenSSL error queue is empty (we never leave errors behind for the host)."""
    return bool(_load().ERR_peek_error() == 0)


def sign_pkcs1_type1(key: PKey, data: bytes) -> bytes:
    """PKCS#1 v1.5 block type 1 padding over `data` as given (no DigestInfo added), then the private operation."""
    return _run(key, "EVP_PKEY_sign_init", "EVP_PKEY_sign", RSA_PKCS1_PADDING, data)

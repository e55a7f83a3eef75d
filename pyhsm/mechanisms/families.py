"""Every mechanism family. Importing this module registers each of their mechanisms in `registry`, which does it
on first use (registry._load): the families and the cryptography modules they import are a large part of the
first C_Initialize, and C_Initialize itself needs none of them."""

from pyhsm.mechanisms import (
    aes,
    aes_ccm_cts,
    aes_gcm,
    aes_wrap,
    cloudhsm,
    concatenate,
    des3,
    digest,
    ec,
    eddsa,
    generic,
    hmac,
    kdf,
    montgomery,
    rsa,
    rsa_aes_wrap,
    rsa_padded,
)

__all__ = ["aes", "aes_ccm_cts", "aes_gcm", "aes_wrap", "cloudhsm", "concatenate", "des3", "digest", "ec", "eddsa",
           "generic", "hmac", "kdf", "montgomery", "rsa", "rsa_aes_wrap", "rsa_padded"]

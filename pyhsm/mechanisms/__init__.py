"""Mechanism families. Importing this package registers every mechanism in `registry`."""

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

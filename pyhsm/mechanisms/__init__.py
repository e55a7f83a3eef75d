"""Mechanism families. Importing this package registers every mechanism in `registry`."""

from pyhsm.mechanisms import aes, aes_wrap, digest, ec, generic, hmac, rsa

__all__ = ["aes", "aes_wrap", "digest", "ec", "generic", "hmac", "rsa"]

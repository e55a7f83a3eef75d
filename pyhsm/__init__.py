"""pyhsm: a software HSM exposed as a PKCS#11 module."""

__version__ = "0.1.0"

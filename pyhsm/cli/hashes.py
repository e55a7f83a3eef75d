"""The hash functions the CLI offers (--hash-function, --mgf) and the PKCS#11 numbers each one implies."""

from __future__ import annotations

from dataclasses import dataclass

from pyhsm import constants as ck


@dataclass(frozen=True)
class Hash:
    size: int
    mechanism: int  # CKM_SHA256 ... (OAEP and PSS parameters name the hash by it)
    mgf: int  # CKG_MGF1_SHA256 ...
    digest_info: bytes  # DER prefix of a DigestInfo, for RSA PKCS#1 v1.5 over a digest
    rsa_pkcs: int
    rsa_pss: int
    ecdsa: int
    hmac: int


HASHES = {
    "sha1": Hash(20, ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, bytes.fromhex("3021300906052b0e03021a05000414"),
                 ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA1_RSA_PKCS_PSS, ck.CKM_ECDSA_SHA1, ck.CKM_SHA_1_HMAC),
    "sha224": Hash(28, ck.CKM_SHA224, ck.CKG_MGF1_SHA224, bytes.fromhex("302d300d06096086480165030402040500041c"),
                   ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA224_RSA_PKCS_PSS, ck.CKM_ECDSA_SHA224, ck.CKM_SHA224_HMAC),
    "sha256": Hash(32, ck.CKM_SHA256, ck.CKG_MGF1_SHA256, bytes.fromhex("3031300d060960864801650304020105000420"),
                   ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA256_RSA_PKCS_PSS, ck.CKM_ECDSA_SHA256, ck.CKM_SHA256_HMAC),
    "sha384": Hash(48, ck.CKM_SHA384, ck.CKG_MGF1_SHA384, bytes.fromhex("3041300d060960864801650304020205000430"),
                   ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA384_RSA_PKCS_PSS, ck.CKM_ECDSA_SHA384, ck.CKM_SHA384_HMAC),
    "sha512": Hash(64, ck.CKM_SHA512, ck.CKG_MGF1_SHA512, bytes.fromhex("3051300d060960864801650304020305000440"),
                   ck.CKM_SHA512_RSA_PKCS, ck.CKM_SHA512_RSA_PKCS_PSS, ck.CKM_ECDSA_SHA512, ck.CKM_SHA512_HMAC),
}
MGFS = {f"mgf1-{name}": h.mgf for name, h in HASHES.items()}

"""Montgomery-curve mechanisms (PKCS#11 v3.0 sections 2.3.8-2.3.9, RFC 7748): CKM_EC_MONTGOMERY_KEY_PAIR_GEN for
X25519 and X448. Their key agreement is CKM_ECDH1_DERIVE (in `ec.py`, which calls `shared_secret` here), with the
same CKD_NULL / X9.63 KDFs as for Weierstrass curves.
"""

from __future__ import annotations

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.eddsa import OKP_FLAGS, key_curve, okp_key_pair, okp_private_key
from pyhsm.mechanisms.generic import param_invalid
from pyhsm.mechanisms.registry import KeyView, Mechanism, MechanismInfo, Template, register


@register
class MontgomeryKeyPairGen(Mechanism):
    ckm = ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN
    generates = ck.CKK_EC_MONTGOMERY
    info = MechanismInfo(255, 448, ck.CKF_GENERATE_KEY_PAIR | OKP_FLAGS)

    def generate_key_pair(self, public: Template, private: Template) -> tuple[Template, Template]:
        return okp_key_pair(public, private, ck.CKK_EC_MONTGOMERY)


def shared_secret(base_key: KeyView, public_data: bytes) -> bytes:
    """X25519 / X448 with the peer's public key (raw, or as a DER OCTET STRING). An all-zero result (a
    small-order peer point, RFC 7748 section 6) is refused as an invalid parameter."""
    curve = key_curve(base_key)
    try:
        peer = curve.load_public(public_data)
    except CKRError:
        raise param_invalid(f"the peer's public key is not a {curve.name} key") from None
    try:
        return bytes(okp_private_key(base_key).exchange(peer))
    except ValueError:
        raise param_invalid("the peer's public key has small order") from None

"""Montgomery-curve mechanisms (PKCS#11 v3.0 sections 2.3.8-2.3.9) through the module: X25519 / X448 key pairs and
CKM_ECDH1_DERIVE with them, checked against the RFC 7748 vector and pyca/cryptography."""

from __future__ import annotations

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x448, x25519
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from mech_params import (
    key_type,
    mechanism,
    shared_session,  # noqa: F401  (one token per module)
)
from pkcs11 import KDF, Attribute, KeyType, Mechanism, ObjectClass

from pyhsm import constants as ck

CURVE25519 = b"\x13\x0acurve25519"
X448_OID = bytes.fromhex("06032b656f")
EC_MONTGOMERY = key_type(ck.CKK_EC_MONTGOMERY, "EC_MONTGOMERY")
MONTGOMERY_KEY_PAIR_GEN = mechanism(ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN, "EC_MONTGOMERY_KEY_PAIR_GEN")
CLEAR = {Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True}
# RFC 7748 section 6.1.
ALICE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


@pytest.fixture
def alice(session):  # type: ignore[no-untyped-def]
    return session.create_object({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                  Attribute.KEY_TYPE: EC_MONTGOMERY, Attribute.EC_PARAMS: CURVE25519,
                                  Attribute.VALUE: ALICE, Attribute.DERIVE: True})


def _derive(priv, peer: bytes, kdf: KDF = KDF.NULL, shared_data: bytes | None = None,  # type: ignore[no-untyped-def]
            bits: int = 256):
    return priv.derive_key(KeyType.GENERIC_SECRET, bits, mechanism=Mechanism.ECDH1_DERIVE,
                           mechanism_param=(kdf, shared_data, peer), template=CLEAR)


def test_rfc7748_x25519_shared_secret(alice) -> None:
    assert alice[Attribute.EC_POINT] == b"\x04\x20" + ALICE_PUBLIC
    assert _derive(alice, BOB_PUBLIC)[Attribute.VALUE] == SHARED
    assert _derive(alice, b"\x04\x20" + BOB_PUBLIC)[Attribute.VALUE] == SHARED  # DER OCTET STRING form too


def test_x963_kdf_over_the_x25519_secret(alice) -> None:
    derived = _derive(alice, BOB_PUBLIC, KDF.SHA256, b"shared info", 128)
    assert derived[Attribute.VALUE] == X963KDF(hashes.SHA256(), 16, b"shared info").derive(SHARED)


@pytest.mark.parametrize("params,cls,public_cls", [(CURVE25519, x25519.X25519PrivateKey, x25519.X25519PublicKey),
                                                   (X448_OID, x448.X448PrivateKey, x448.X448PublicKey)])
def test_generated_pair_agrees_with_cryptography(session, params, cls, public_cls) -> None:
    pub, priv = session.generate_keypair(EC_MONTGOMERY, mechanism=MONTGOMERY_KEY_PAIR_GEN,
                                         public_template={Attribute.EC_PARAMS: params},
                                         private_template={Attribute.DERIVE: True},
                                         capabilities=pkcs11.MechanismFlag.DERIVE)
    assert pub[Attribute.EC_PARAMS] == params
    peer = cls.generate()
    ours = pub[Attribute.EC_POINT][2:]
    expected = peer.exchange(public_cls.from_public_bytes(ours))
    peer_raw = peer.public_key().public_bytes_raw()
    assert _derive(priv, peer_raw, bits=8 * len(expected))[Attribute.VALUE] == expected


def test_peer_key_of_the_wrong_length_is_mechanism_param_invalid(alice) -> None:
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        _derive(alice, BOB_PUBLIC[:31])


def test_small_order_peer_is_mechanism_param_invalid(alice) -> None:
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        _derive(alice, bytes(32))  # u = 0: the shared secret would be all zeros


def test_edwards_curve_for_a_montgomery_key_is_refused(session) -> None:
    with pytest.raises(pkcs11.exceptions.PKCS11Error):
        session.generate_keypair(EC_MONTGOMERY, mechanism=MONTGOMERY_KEY_PAIR_GEN,
                                 public_template={Attribute.EC_PARAMS: b"\x13\x0cedwards25519"})

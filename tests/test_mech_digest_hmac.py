"""Digest (section 2.x SHA) and HMAC mechanisms through the module, checked against hashlib / hmac."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

DIGESTS = [(Mechanism.SHA_1, "sha1"), (Mechanism.SHA224, "sha224"), (Mechanism.SHA256, "sha256"),
           (Mechanism.SHA384, "sha384"), (Mechanism.SHA512, "sha512")]


@pytest.mark.parametrize("mech,name", DIGESTS)
def test_digest_matches_hashlib_single_and_multi_part(session, mech, name) -> None:
    assert session.digest(b"abc", mechanism=mech) == hashlib.new(name, b"abc").digest()
    assert session.digest((b"a", b"b", b"c"), mechanism=mech) == hashlib.new(name, b"abc").digest()


@pytest.mark.parametrize("mech,name", [(Mechanism.SHA256_HMAC, "sha256"), (Mechanism.SHA512_HMAC, "sha512"),
                                       (Mechanism.SHA_1_HMAC, "sha1")])
def test_hmac_matches_the_standard_library(session, mech, name) -> None:
    secret = b"k" * 32
    key = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                                 Attribute.VALUE: secret, Attribute.SIGN: True, Attribute.VERIFY: True})
    mac = key.sign(b"data", mechanism=mech)
    assert mac == hmac.new(secret, b"data", name).digest()
    assert key.verify(b"data", mac, mechanism=mech)
    assert not key.verify(b"data!", mac, mechanism=mech)


def test_generic_secret_generation_honours_value_len(session) -> None:
    key = session.generate_key(KeyType.GENERIC_SECRET, 8 * 48)
    assert key[Attribute.VALUE_LEN] == 48


def test_random_has_the_requested_length(session) -> None:
    assert len(session.generate_random(256)) == 32
    assert session.generate_random(256) != session.generate_random(256)


def test_digest_key_digests_a_sensitive_key_without_revealing_it(session) -> None:
    secret = b"s" * 32
    key = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                 Attribute.VALUE: secret, Attribute.SENSITIVE: True})
    assert session.digest(key, mechanism=Mechanism.SHA256) == hashlib.sha256(secret).digest()
    assert session.digest((b"prefix", key), mechanism=Mechanism.SHA256) == hashlib.sha256(b"prefix" + secret).digest()

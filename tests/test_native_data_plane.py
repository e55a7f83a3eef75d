"""The native data plane (csrc/dataplane.c): operations the engine authorised, repeated, run in C.

tests/c_host/native.c drives it from a non-Python host; its outputs are checked here with pyca/cryptography,
hashlib and hmac. The in-process tests use python-pkcs11, whose calls go through the same C function table, and
read the data plane's own counter to know that the native path really ran.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import subprocess
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from p11_helpers import USER_PIN, assert_rule_passed, build_c_host, c_rules, init_token, module_path

from pyhsm.pkcs11 import native

SOURCE = Path(__file__).with_name("c_host") / "native.c"
RULES = c_rules(SOURCE)
TOKEN = "native"
ROUNDS = 5
AES_KEY = b"0123456789abcdef0123456789abcdef"
HMAC_KEY = b"hmac-key-hmac-key-hmac-key-hmac!"
MESSAGE = b"the message the native data plane signs, digests and encrypts in its later rounds".ljust(100, b"\0")


def _revoke_from_this_process(label: str) -> None:
    """What another process (an administrator) does while the C host waits: CKA_SIGN to FALSE on its key."""
    token = pkcs11.lib(module_path()).get_token(token_label=label)
    with token.open(rw=True, user_pin=USER_PIN) as session:
        key = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="native-shared")
        key[pkcs11.Attribute.SIGN] = False


Report = tuple[dict[str, list[str]], dict[str, bytes]]


@pytest.fixture(scope="module", params=["native", "engine only"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """The C host once with the data plane and once without it (PYHSM_NATIVE=0): the same rules hold for both."""
    label = f"{TOKEN}-{request.param.split()[0]}"
    init_token(label)
    binary = build_c_host(SOURCE, tmp_path_factory.mktemp("native"))
    env = dict(os.environ, PYHSM_NATIVE="1" if request.param == "native" else "0")
    host = subprocess.Popen([str(binary), module_path(), USER_PIN, label], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert host.stdout is not None and host.stdin is not None
    out = []
    for line in host.stdout:
        out.append(line)
        if line.strip() == "waiting":
            _revoke_from_this_process(label)
            host.stdin.write("changed\n")
            host.stdin.flush()
    host.wait(timeout=300)
    stderr = host.stderr.read() if host.stderr else ""
    assert host.returncode in (0, 1), f"the host died ({host.returncode}): {stderr[-2000:]}"
    lines: dict[str, list[str]] = {rule: [] for rule in RULES}
    values: dict[str, bytes] = {}
    for line in out:
        if match := re.match(r"(ok|FAIL) (\w+): ", line):
            lines.setdefault(match.group(2), []).append(line.strip())
        elif match := re.match(r"value (\w+) ([0-9a-f]*)$", line.strip()):
            values[match.group(1)] = bytes.fromhex(match.group(2))
    return lines, values


@pytest.mark.parametrize("rule", RULES)
def test_rule_from_a_c_host(run: Report, rule: str) -> None:
    assert_rule_passed(run[0][rule], rule)


def test_native_rounds_match_independent_implementations(run: Report) -> None:
    values = run[1]
    x962 = values["ec_point0"][2:]  # CKA_EC_POINT is a DER OCTET STRING around the X9.62 point
    ec_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), x962)
    rsa_public = rsa.RSAPublicNumbers(65537, int.from_bytes(values["rsa_modulus0"], "big")).public_key()
    for r in range(ROUNDS):
        data = MESSAGE[:10 + r * 20]
        iv = bytes([ord("a") + r]) + b"v-iv-iv-iv-iv-i"
        assert values[f"gcm{r}"] == AESGCM(AES_KEY).encrypt(iv[:12], data, b"header")
        padder = padding.PKCS7(128).padder()
        encryptor = Cipher(algorithms.AES(AES_KEY), modes.CBC(iv)).encryptor()
        assert values[f"cbc{r}"] == encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()
        assert values[f"sha256_{r}"] == hashlib.sha256(data).digest()
        assert values[f"hmac{r}"] == hmac.new(HMAC_KEY, data, "sha256").digest()
        signature = values[f"ecdsa{r}"]
        ec_public.verify(encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                              int.from_bytes(signature[32:], "big")),
                         MESSAGE[:32], ec.ECDSA(Prehashed(hashes.SHA256())))
        signature = values[f"ecdsa_sha256_{r}"]
        ec_public.verify(encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                              int.from_bytes(signature[32:], "big")), data, ec.ECDSA(hashes.SHA256()))
        rsa_public.verify(values[f"rsa{r}"], data, rsa_padding.PKCS1v15(), hashes.SHA256())
        rsa_public.verify(values[f"pss{r}"], data, rsa_padding.PSS(rsa_padding.MGF1(hashes.SHA256()), 32),
                          hashes.SHA256())
    randoms = {values[f"random{r}"] for r in range(ROUNDS)}
    assert len(randoms) == ROUNDS and all(len(v) == 64 and any(v) for v in randoms)
    iv16 = b"sixteen-byte-iv!"
    assert values["gcm16_0"] == AESGCM(AES_KEY).encrypt(iv16, MESSAGE[:16], None)



# ---- in this process (python-pkcs11): the native path really runs -----------------------------------------------
@pytest.fixture(scope="module")
def session() -> pkcs11.Session:
    init_token("native-inproc")
    token = pkcs11.lib(module_path()).get_token(token_label="native-inproc")
    with token.open(rw=True, user_pin=USER_PIN) as opened:
        yield opened


def _native_signatures(session: pkcs11.Session, rounds: int = 10) -> int:
    """Sign `rounds` times with a new P-256 key after a first signature; every signature must verify. Returns how
    many calls the data plane answered (each native signature is at least C_SignInit and C_Sign). A commit to the
    token in between (the audit queue's writer, say) sends one Init back to the engine, which grants anew."""
    public, private = _ec_pair(session, "secp256r1")
    digest = hashlib.sha256(b"data").digest()
    first = private.sign(digest, mechanism=pkcs11.Mechanism.ECDSA)  # the engine answers, and grants
    before = native.native_calls()
    signatures = [private.sign(digest, mechanism=pkcs11.Mechanism.ECDSA) for _ in range(rounds)]
    answered = native.native_calls() - before
    for signature in [first, *signatures]:
        assert public.verify(digest, signature, mechanism=pkcs11.Mechanism.ECDSA)
    return answered


def test_a_repeated_operation_runs_natively_from_its_second_init(session: pkcs11.Session) -> None:
    assert _native_signatures(session) >= 10


def test_sessions_whose_handles_share_a_bucket_both_run_natively() -> None:
    """The data plane keeps sessions in 1,024 chains by handle: a session whose handle is 1,024 above that of a
    session still open (both with a native state) runs natively too. The engine gives out handles in sequence."""
    token = pkcs11.lib(module_path()).get_token(token_label="native-inproc")
    first = token.open()
    first.generate_random(16)  # a native state for first's handle
    for _ in range(1023):
        token.open().close()
    second = token.open()  # first's handle + 1,024
    try:
        assert _native_signatures(second) >= 10
    finally:
        second.close()
        first.close()


def test_a_key_the_engine_keeps_never_runs_natively(session: pkcs11.Session) -> None:
    """P-384 stays with the engine (pyca's libcrypto is faster there); so do keys needing a login per use."""
    _, private = _ec_pair(session, "secp384r1")
    digest = hashlib.sha384(b"data").digest()
    private.sign(digest, mechanism=pkcs11.Mechanism.ECDSA)
    before = native.native_calls()
    for _ in range(3):
        private.sign(digest, mechanism=pkcs11.Mechanism.ECDSA)
    assert native.native_calls() == before


def _ec_pair(session: pkcs11.Session, curve: str) -> tuple[pkcs11.PublicKey, pkcs11.PrivateKey]:
    from pkcs11.util.ec import encode_named_curve_parameters

    params = session.create_domain_parameters(
        pkcs11.KeyType.EC, {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True)
    public, private = params.generate_keypair(store=False)
    return public, private

"""`pyhsm key replicate`: keys copy between tokens of one lineage with every attribute, sealed as they are,
idempotently; tokens of different lineages refuse; and the blue/green switch of a signing client loses nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest
from backup_helpers import DATA, check_same_keys, create_backup, make_keys, ok, pkcs11_tool_sign, refused, restore
from p11_helpers import USER_PIN, init_token, module_path
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

KEPT = (Attribute.LABEL, Attribute.ID, Attribute.KEY_TYPE, Attribute.SENSITIVE, Attribute.EXTRACTABLE,
        Attribute.ALWAYS_SENSITIVE, Attribute.NEVER_EXTRACTABLE, Attribute.LOCAL, Attribute.PRIVATE,
        Attribute.KEY_GEN_MECHANISM, Attribute.SIGN, Attribute.ENCRYPT, Attribute.DECRYPT)


def _replicate(label: str, source: str, destination: str, *extra: str) -> dict:  # type: ignore[type-arg]
    result: dict = ok("key", "replicate", "--filter", f"attr.label={label}", *extra,  # type: ignore[type-arg]
                      "--source", source, "--destination", destination, "--pin", USER_PIN)
    return result


@pytest.fixture
def blue_green(lib, tmp_path):  # type: ignore[no-untyped-def]
    """Token blue with keys, and green restored from blue's backup."""
    blue, green = f"blue-{uuid.uuid4().hex[:6]}", f"green-{uuid.uuid4().hex[:6]}"
    init_token(blue)
    with lib.get_token(token_label=blue).open(rw=True, user_pin=USER_PIN) as s:
        make_keys(s)
    restore(create_backup(blue, tmp_path), green)
    return lib.get_token(token_label=blue), lib.get_token(token_label=green)


def test_replicate_refuses_tokens_of_different_lineages(lib) -> None:
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    init_token(a)
    init_token(b)
    with lib.get_token(token_label=a).open(rw=True, user_pin=USER_PIN) as s:
        s.generate_key(KeyType.AES, 256, store=True, label="k")
    message = refused("key", "replicate", "--filter", "attr.label=k", "--source", a, "--destination", b,
                      "--pin", USER_PIN)
    assert "different lineages" in message
    with lib.get_token(token_label=b).open(user_pin=USER_PIN) as s:
        assert list(s.get_objects({Attribute.LABEL: "k"})) == []


def test_a_replicated_key_keeps_its_attributes_and_its_material(blue_green) -> None:
    blue, green = blue_green
    with blue.open(rw=True, user_pin=USER_PIN) as s:
        key = s.generate_key(KeyType.AES, 256, store=True, label="late", id=b"\x42",
                             template={Attribute.EXTRACTABLE: False, Attribute.SIGN: False})
        before = {a: key[a] for a in KEPT if a != Attribute.KEY_GEN_MECHANISM}
        ciphertext = key.encrypt(DATA, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=bytes(16))
    result = _replicate("late", blue.label, green.label)
    assert [k["replicated"] for k in result["keys"]] == [True]
    assert result["keys"][0]["attributes"]["id"] == "0x42"
    with green.open(user_pin=USER_PIN) as s:
        copy = s.get_key(object_class=ObjectClass.SECRET_KEY, label="late")
        assert {a: copy[a] for a in before} == before
        assert copy.decrypt(ciphertext, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=bytes(16)) == DATA


def test_replicating_again_copies_nothing(blue_green) -> None:
    blue, green = blue_green
    result = _replicate("aes", blue.label, green.label)  # green has it from the backup already
    assert [k["replicated"] for k in result["keys"]] == [False]
    with green.open(user_pin=USER_PIN) as s:
        assert len(list(s.get_objects({Attribute.LABEL: "aes"}))) == 1


def test_a_filter_matching_several_keys_needs_all(blue_green) -> None:
    blue, green = blue_green
    with blue.open(rw=True, user_pin=USER_PIN) as s:
        s.generate_keypair(KeyType.RSA, 2048, store=True, label="pair")
    assert "matches 2 keys" in refused("key", "replicate", "--filter", "attr.label=pair", "--source", blue.label,
                                       "--destination", green.label, "--pin", USER_PIN)
    one = ok("key", "replicate", "--filter", "attr.label=pair", "attr.class=private-key", "--source", blue.label,
             "--destination", green.label, "--pin", USER_PIN)
    assert [k["attributes"]["class"] for k in one["keys"]] == ["private-key"]
    both = _replicate("pair", blue.label, green.label, "--all")
    assert sorted(k["replicated"] for k in both["keys"]) == [False, True]


SIGNER = """
import sys, pkcs11
from pkcs11 import Mechanism, ObjectClass
lib = pkcs11.lib({module!r})
session = None
for line in sys.stdin:
    command, arg = line.split()
    if command == "use":  # move to another token: the client's only change in a blue/green switch
        if session is not None:
            session.close()
        session = lib.get_token(token_label=arg).open(user_pin={pin!r})
        print("using", arg, flush=True)
    else:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=arg)
        print(key.sign({data!r}, mechanism=Mechanism.SHA256_RSA_PKCS).hex(), flush=True)
"""


class Signer:
    def __init__(self) -> None:
        code = textwrap.dedent(SIGNER.format(module=module_path(), pin=USER_PIN, data=DATA))
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def ask(self, command: str, arg: str) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{command} {arg}\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0


def _inventory(token) -> set[tuple[int, str]]:  # type: ignore[no-untyped-def]
    with token.open(user_pin=USER_PIN) as s:
        return {(int(o[Attribute.CLASS]), o[Attribute.LABEL]) for o in s.get_objects()}


def test_blue_green_switch_loses_nothing(lib, tmp_path) -> None:
    blue = f"blue-{uuid.uuid4().hex[:6]}"
    init_token(blue)
    with lib.get_token(token_label=blue).open(rw=True, user_pin=USER_PIN) as s:
        make_keys(s)
    signer = Signer()
    try:
        assert signer.ask("use", blue) == f"using {blue}"
        on_blue = signer.ask("sign", "rsa")
        # 1. green is restored from blue's backup while the client keeps signing on blue
        backup = create_backup(blue, tmp_path)
        assert signer.ask("sign", "rsa") == on_blue
        green = f"green-{uuid.uuid4().hex[:6]}"
        restore(backup, green)
        # 2. keys created on blue during the switch, after the backup
        with lib.get_token(token_label=blue).open(rw=True, user_pin=USER_PIN) as s:
            make_keys(s, prefix="new-")
        new_on_blue = signer.ask("sign", "new-rsa")
        # 3. replicated to green (both halves of each pair: --all)
        for label in sorted({label for _, label in _inventory(lib.get_token(token_label=blue))
                             if label.startswith("new-")}):
            _replicate(label, blue, green, "--all")
        # 4. the client moves to green and signs with the old and the new keys as before
        assert signer.ask("use", green) == f"using {green}"
        assert signer.ask("sign", "rsa") == on_blue
        assert signer.ask("sign", "new-rsa") == new_on_blue
    finally:
        signer.close()
    # 5. nothing was lost: green holds every object of blue, and each key computes what blue's does
    blue_token, green_token = lib.get_token(token_label=blue), lib.get_token(token_label=green)
    assert _inventory(green_token) == _inventory(blue_token)
    with blue_token.open(user_pin=USER_PIN) as b, green_token.open(user_pin=USER_PIN) as g:
        check_same_keys(b, g)
        check_same_keys(b, g, prefix="new-")
    # and a non-Python host signs with a replicated key as blue does
    assert pkcs11_tool_sign(green, "new-rsa", tmp_path).hex() == new_on_blue

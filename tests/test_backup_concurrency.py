"""Backups taken while another process signs and creates objects through the module: the client never stops or
fails, and each backup is one consistent state of the token (a prefix of the client's acknowledged objects, at
least those acknowledged before the backup began), restorable and usable."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid

from backup_helpers import DATA, create_backup, restore
from p11_helpers import USER_PIN, module_path
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

CLIENT = """
import sys, pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass
tok = pkcs11.lib({module!r}).get_token(token_label={label!r})
signed = 0
with tok.open(rw=True, user_pin={pin!r}) as s:
    key = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label="rsa")
    i = 0
    while sys.stdin.readline().strip() == "go":
        for _ in range(5):
            key.sign(b"load", mechanism=Mechanism.SHA256_RSA_PKCS)
            signed += 1
        s.create_object({{Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True, Attribute.LABEL: f"c-{{i}}"}})
        print("ack", i, flush=True)
        i += 1
print("signed", signed, flush=True)
"""


class Client:
    """The signing client: it works one round per 'go' line, so the test can keep it busy without a clock."""

    def __init__(self, label: str) -> None:
        code = textwrap.dedent(CLIENT.format(module=module_path(), label=label, pin=USER_PIN))
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.acked = -1
        self.lines: list[str] = []
        self.busy = True
        self.thread = threading.Thread(target=self._drive, daemon=True)
        self.thread.start()

    def _drive(self) -> None:
        assert self.proc.stdin and self.proc.stdout
        while self.busy:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                return
            self.lines.append(line)
            self.acked = int(line.split()[1])

    def wait_for(self, count: int) -> None:
        while self.acked < count and self.proc.poll() is None:
            time.sleep(0.05)

    def stop(self) -> str:
        self.busy = False
        self.thread.join(timeout=60)
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write("stop\n")
        self.proc.stdin.close()
        rest = self.proc.stdout.read()
        assert self.proc.wait(timeout=60) == 0
        return rest


def test_backups_under_signing_load_are_consistent_and_the_client_never_stops(lib, token, tmp_path) -> None:
    with token.open(rw=True, user_pin=USER_PIN) as s:
        s.generate_keypair(KeyType.RSA, 2048, store=True, label="rsa")
        expected = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label="rsa").sign(
            DATA, mechanism=Mechanism.SHA256_RSA_PKCS)
    client = Client(token.label)
    try:
        taken = []
        for _ in range(2):
            client.wait_for(len(taken) * 10 + 10)
            acked_before = client.acked
            path = create_backup(token.label, tmp_path)
            taken.append((acked_before, path, client.acked))
    finally:
        tail = client.stop()
    assert re.fullmatch(r"signed \d+\n", tail), tail  # no call of the client failed
    assert client.acked > taken[-1][2]  # it kept working after the last backup too

    for acked_before, path, acked_after in taken:
        label = f"c-{uuid.uuid4().hex[:8]}"
        restore(path, label)
        with lib.get_token(token_label=label).open(user_pin=USER_PIN) as s:
            seen = sorted(int(o[Attribute.LABEL][2:]) for o in s.get_objects({Attribute.CLASS: ObjectClass.DATA}))
            assert seen == list(range(len(seen)))  # a prefix: no object missing in the middle, none half-written
            # Everything acknowledged before the backup began; at most one round beyond the last acknowledgement
            # seen when it ended (committed, its "ack" not yet read).
            assert acked_before + 1 <= len(seen) <= acked_after + 2
            assert s.get_key(object_class=ObjectClass.PRIVATE_KEY, label="rsa").sign(
                DATA, mechanism=Mechanism.SHA256_RSA_PKCS) == expected

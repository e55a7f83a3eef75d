"""A token writer for tests/test_crash_consistency.py, run as its own process (and SIGKILLed at random points).

    python crash_writer.py MODULE TOKEN PIN NAME SEED COUNT

Through the module (python-pkcs11), it creates token data objects and AES keys, changes one of their attributes
(changeable_attribute()) and destroys some, COUNT steps chosen by SEED. Before each call it prints
"TRY <op> <label> <value>" and after CKR_OK "OK <op> <label> <value>", each line written at once, so the parent
knows what was acknowledged when the kill came. The values are derived from the label, so whoever reads the token
back can check them without this process.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass


def data_value(label: str) -> bytes:
    return hashlib.sha256(b"data/" + label.encode()).digest()


def key_value(label: str) -> bytes:
    return hashlib.sha256(b"key/" + label.encode()).digest()[:16]


def changeable_attribute(kind: str) -> Attribute:
    return Attribute.ID if kind == "KEY" else Attribute.APPLICATION


def changeable_value(kind: str, text: str) -> bytes | str:
    return text.encode() if kind == "KEY" else text  # python-pkcs11 types CKA_APPLICATION as a string


def say(*words: object) -> None:
    os.write(1, (" ".join(map(str, words)) + "\n").encode())  # one write(2) per line: a kill never splits one


def main() -> None:
    module, token_label, pin, name, seed, count = sys.argv[1:7]
    rng = random.Random(int(seed))
    token = pkcs11.lib(module).get_token(token_label=token_label)
    with token.open(rw=True, user_pin=pin) as session:
        say("READY")
        mine: dict[str, tuple[str, pkcs11.Object]] = {}
        for i in range(int(count)):
            action = rng.random()
            if action < 0.6 or not mine:
                label = f"{name}-{i}"
                is_key = rng.random() < 0.5
                kind = "KEY" if is_key else "DATA"
                say("TRY", f"CREATE_{kind}", label, "-")
                template = {Attribute.TOKEN: True, Attribute.LABEL: label,
                            changeable_attribute(kind): changeable_value(kind, "v0")}
                if is_key:
                    template |= {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                 Attribute.VALUE: key_value(label), Attribute.ENCRYPT: True}
                else:
                    template |= {Attribute.CLASS: ObjectClass.DATA, Attribute.VALUE: data_value(label)}
                mine[label] = kind, session.create_object(template)
                say("OK", f"CREATE_{kind}", label, "-")
            elif action < 0.85:
                label = rng.choice(sorted(mine))
                new_id = f"v{i}"
                say("TRY", "SET_ID", label, new_id)
                kind, obj = mine[label]
                obj[changeable_attribute(kind)] = changeable_value(kind, new_id)
                say("OK", "SET_ID", label, new_id)
            else:
                label = rng.choice(sorted(mine))
                say("TRY", "DESTROY", label, "-")
                mine.pop(label)[1].destroy()
                say("OK", "DESTROY", label, "-")
        say("DONE")


if __name__ == "__main__":
    main()

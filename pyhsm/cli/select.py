"""`--filter key-reference=0xHEX attr.NAME=VALUE ...`: which keys a command acts on (cloudhsm-cli's syntax).

Terms are ANDed. They run over the keys the login may see (its own, those shared with it, and every public key):
CKA_LABEL, CKA_CLASS and CKA_KEY_TYPE go into the find template (labels are indexed), every term is then checked
against the key's attributes as `key list` shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyhsm import constants as ck
from pyhsm.cli import attributes
from pyhsm.cli.errors import CliError, UsageError
from pyhsm.cli.hsm import Hsm

PUSHED_DOWN = {ck.CKA_LABEL, ck.CKA_CLASS, ck.CKA_KEY_TYPE}


@dataclass
class KeyFilter:
    reference: int | None = None
    template: dict[int, Any] = field(default_factory=dict)  # typed PKCS#11 values
    shown: dict[str, Any] = field(default_factory=dict)  # computed names (curve, modulus-size-bits)


def parse(terms: list[str] | None) -> KeyFilter:
    result = KeyFilter()
    for term in terms or []:
        name, sep, text = term.partition("=")
        if not sep:
            raise UsageError(f"filter terms are key-reference=0xHEX or attr.NAME=VALUE, not {term!r}")
        if name == "key-reference":
            try:
                result.reference = int(text, 16)
            except ValueError:
                raise UsageError(f"key-reference is hexadecimal (0x...), not {text!r}") from None
        elif name.startswith("attr."):
            spec = attributes.spec(name[5:])
            value = spec.parse(text)
            if spec.cka is None:
                result.shown[spec.name] = spec.show(value)
            else:
                result.template[spec.cka] = value
        else:
            raise UsageError(f"unknown filter term {name!r}: use key-reference=0xHEX or attr.NAME=VALUE")
    return result


def matching(hsm: Hsm, terms: list[str] | None) -> list[int]:
    """Handles of the visible keys that match every term, in key-reference order."""
    flt = parse(terms)
    pushed = {t: v for t, v in flt.template.items() if t in PUSHED_DOWN}
    if flt.reference is not None:
        candidates = [h for h in hsm.keys(pushed) if h == flt.reference]
    else:
        candidates = hsm.keys(pushed)
    rest = {t: v for t, v in flt.template.items() if t not in PUSHED_DOWN}
    found = []
    for handle in candidates:
        if rest:
            values = hsm.attributes(handle, rest)
            if any(values.get(t) != v for t, v in rest.items()):
                continue
        if flt.shown:
            shown = attributes.render(hsm.attributes(handle, attributes.READ_TYPES))
            if any(shown.get(k) != v for k, v in flt.shown.items()):
                continue
        found.append(handle)
    return found


def one(hsm: Hsm, terms: list[str] | None, what: str = "key") -> int:
    """The single key a filter selects; none or several is an error, as in cloudhsm-cli."""
    found = matching(hsm, terms)
    if not found:
        raise CliError(f"Key selection criteria matched 0 keys. Refine selection criteria to select a single {what}.")
    if len(found) > 1:
        raise CliError(f"Key selection criteria matched {len(found)} keys. "
                       f"Refine selection criteria to select a single {what}.")
    return found[0]

"""Declarative attribute rules and the generic code that enforces them.

Each object class / key type is an `ObjectSchema`: a table of `Attr` rows taken from the PKCS#11 attribute tables
(the numbered footnotes of v2.40/v3.0 section 4: required on create, forbidden on generate, sensitive, modifiable,
...). `build`, `check_set` and `readable` are the only places those footnotes are interpreted.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from pyhsm import constants as ck
from pyhsm.errors import CKRError


class Rule(enum.Flag):
    NONE = 0
    REQUIRED_ON_CREATE = enum.auto()  # footnote 1
    FORBIDDEN_ON_CREATE = enum.auto()  # footnote 2
    REQUIRED_ON_GENERATE = enum.auto()  # footnote 3
    FORBIDDEN_ON_GENERATE = enum.auto()  # footnote 4
    REQUIRED_ON_UNWRAP = enum.auto()  # footnote 5
    FORBIDDEN_ON_UNWRAP = enum.auto()  # footnote 6
    TOKEN_SUPPLIED = FORBIDDEN_ON_CREATE | FORBIDDEN_ON_GENERATE | FORBIDDEN_ON_UNWRAP
    KEY_MATERIAL = REQUIRED_ON_CREATE | FORBIDDEN_ON_GENERATE | FORBIDDEN_ON_UNWRAP


class Change(enum.Enum):
    NEVER = "never"  # read-only once the object exists
    ANY = "any"  # footnote 8: C_SetAttributeValue / C_CopyObject may change it
    ONLY_TO_TRUE = "only-to-true"  # CKA_SENSITIVE
    ONLY_TO_FALSE = "only-to-false"  # CKA_EXTRACTABLE, CKA_COPYABLE
    FIXED_ONCE_TRUE = "fixed-once-true"  # footnote 11: CKA_WRAP_WITH_TRUSTED
    ON_COPY = "on-copy"  # only in C_CopyObject (CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE, CKA_DESTROYABLE)


class How(enum.Enum):
    CREATE = "create"
    GENERATE = "generate"
    UNWRAP = "unwrap"
    DERIVE = "derive"


NO_DEFAULT = object()
Default = Any  # a value, a callable(attrs) -> value, or NO_DEFAULT


@dataclass(frozen=True)
class Attr:
    type: int
    default: Default = NO_DEFAULT
    rule: Rule = Rule.NONE
    change: Change = Change.NEVER
    sensitive: bool = False  # footnote 7: hidden when CKA_SENSITIVE or not CKA_EXTRACTABLE
    so_sets_true: bool = False  # footnote 10: only the SO may set it to CK_TRUE


_REQUIRED = {
    How.CREATE: Rule.REQUIRED_ON_CREATE,
    How.GENERATE: Rule.REQUIRED_ON_GENERATE,
    How.UNWRAP: Rule.REQUIRED_ON_UNWRAP,
    How.DERIVE: Rule.REQUIRED_ON_UNWRAP,
}
_FORBIDDEN = {
    How.CREATE: Rule.FORBIDDEN_ON_CREATE,
    How.GENERATE: Rule.FORBIDDEN_ON_GENERATE,
    How.UNWRAP: Rule.FORBIDDEN_ON_UNWRAP,
    How.DERIVE: Rule.FORBIDDEN_ON_UNWRAP,
}


class _BuildRules(NamedTuple):
    required: dict[How, tuple[int, ...]]
    forbidden: dict[How, frozenset[int]]
    so_sets_true: frozenset[int]
    static_defaults: dict[int, Any]
    computed_defaults: tuple[tuple[int, Callable[[Mapping[int, Any]], Any]], ...]


class ObjectSchema:
    """The attribute table of one object class (and key/certificate type)."""

    def __init__(self, name: str, *parts: Iterable[Attr]) -> None:
        self.name = name
        self.attrs: dict[int, Attr] = {}
        for part in parts:
            for attr in part:  # later rows (more specific tables) override earlier ones
                self.attrs[attr.type] = attr
        self.sensitive = frozenset(t for t, a in self.attrs.items() if a.sensitive)

    @cached_property
    def _build_rules(self) -> _BuildRules:
        """What `build` asks of a template, worked out on a schema's first use (not at import: start-up builds
        every schema): Flag arithmetic per attribute per call was a quarter of a session C_GenerateKey."""
        attrs = self.attrs.items()
        return _BuildRules(
            required={how: tuple(t for t, a in attrs if a.rule & rule) for how, rule in _REQUIRED.items()},
            forbidden={how: frozenset(t for t, a in attrs if a.rule & rule) for how, rule in _FORBIDDEN.items()},
            so_sets_true=frozenset(t for t, a in attrs if a.so_sets_true),
            static_defaults={t: a.default for t, a in attrs if a.default is not NO_DEFAULT and not callable(a.default)},
            computed_defaults=tuple((t, a.default) for t, a in attrs if callable(a.default)),
        )

    def build(self, template: Mapping[int, Any], how: How, is_so: bool = False) -> dict[int, Any]:
        """Validate a caller's template for a new object and complete it with defaults."""
        rules = self._build_rules
        forbidden = rules.forbidden[how]
        for attr_type, value in template.items():
            if attr_type not in self.attrs:
                raise CKRError(ck.CKR_ATTRIBUTE_TYPE_INVALID, f"{self.name} has no attribute 0x{attr_type:X}")
            if attr_type in forbidden:
                raise CKRError(ck.CKR_ATTRIBUTE_READ_ONLY, f"0x{attr_type:X} is set by the token")
            if value is True and not is_so and attr_type in rules.so_sets_true:
                raise CKRError(ck.CKR_ATTRIBUTE_READ_ONLY, f"only the SO may set 0x{attr_type:X}")
        missing = [t for t in rules.required[how] if t not in template]
        if missing:
            raise CKRError(ck.CKR_TEMPLATE_INCOMPLETE, f"{self.name} needs 0x{missing[0]:X}")
        values = dict(template)
        values.update(rules.static_defaults)
        values.update(template)  # the caller's values win; the template's attributes keep coming first
        for attr_type, default in rules.computed_defaults:  # computed defaults see the static ones
            if attr_type not in values:
                values[attr_type] = default(values)
        return values

    def check_set(self, current: Mapping[int, Any], changes: Mapping[int, Any], copying: bool,
                  is_so: bool) -> None:
        """C_SetAttributeValue / C_CopyObject rules for each changed attribute."""
        for attr_type, new in changes.items():
            attr = self.attrs.get(attr_type)
            if attr is None:
                raise CKRError(ck.CKR_ATTRIBUTE_TYPE_INVALID, f"{self.name} has no attribute 0x{attr_type:X}")
            old = current.get(attr_type)
            if new == old:
                continue
            if attr.so_sets_true and new is True and not is_so:
                raise CKRError(ck.CKR_ATTRIBUTE_READ_ONLY, f"only the SO may set 0x{attr_type:X}")
            allowed = {
                Change.NEVER: False,
                Change.ANY: True,
                Change.ONLY_TO_TRUE: new is True,
                Change.ONLY_TO_FALSE: new is False,
                Change.FIXED_ONCE_TRUE: old is not True,
                Change.ON_COPY: copying,
            }[attr.change]
            if not allowed:
                raise CKRError(ck.CKR_ATTRIBUTE_READ_ONLY, f"0x{attr_type:X} cannot be changed to that value")

    def hidden(self, values: Mapping[int, Any], attr_type: int) -> bool:
        """Footnote 7: a sensitive attribute is never revealed while the key is sensitive or unextractable."""
        return attr_type in self.sensitive and (
            values.get(ck.CKA_SENSITIVE, False) or not values.get(ck.CKA_EXTRACTABLE, True)
        )


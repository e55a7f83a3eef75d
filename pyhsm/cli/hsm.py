"""The CLI's handle on one token: an Engine (in-process, like any PKCS#11 host would use the module), one
read-write session and its login, with the C_* calls wrapped into Python-valued helpers.

Keys live in the token store, so what the CLI creates is visible to every other process using the module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pyhsm import constants as ck
from pyhsm.cli.errors import CliError, UsageError
from pyhsm.engine import Engine
from pyhsm.engine.session import OpKind
from pyhsm.errors import CKRError
from pyhsm.mechanisms import registry
from pyhsm.mechanisms.params import MechanismParam
from pyhsm.objects import codec

ROLES = {"admin": ck.CKU_SO, "crypto-user": ck.CKU_USER}
KEY_CLASSES = (ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY)


def raw_template(values: Mapping[int, Any]) -> list[tuple[int, bytes]]:
    return [(attr_type, codec.encode(attr_type, value)) for attr_type, value in values.items()]


def key_reference(handle: int) -> str:
    """cloudhsm-cli names keys by a 64-bit reference; ours is the object handle, stable across processes."""
    return f"0x{handle:016x}"


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace").rstrip(" \0")


def token_labels(eng: Engine) -> dict[str, int]:
    labels: dict[str, int] = {}
    for slot in eng.get_slot_list(True):
        info = eng.get_token_info(slot)
        if info.flags & ck.CKF_TOKEN_INITIALIZED:
            labels.setdefault(_text(info.label), slot)
    return labels


class Hsm:
    def __init__(self, token_label: str | None) -> None:
        self.eng = Engine()
        self.eng.initialize(0)
        try:
            self.slot, self.token_label = self._select(token_label)
            self.session = self.eng.open_session(self.slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION)
        except BaseException:
            self.eng.finalize()
            raise
        self.username: str | None = None
        self.role: str | None = None

    def _select(self, label: str | None) -> tuple[int, str]:
        labels = token_labels(self.eng)
        if label is not None:
            if label not in labels:
                raise CliError(f"no token labelled {label!r} (tokens: {', '.join(sorted(labels)) or 'none'})")
            return labels[label], label
        if len(labels) == 1:
            ((only, slot),) = labels.items()
            return slot, only
        if not labels:
            raise CliError("no token is initialised: run `pyhsm token init --label LABEL` first")
        raise UsageError(f"several tokens exist ({', '.join(sorted(labels))}): choose one with --token LABEL "
                         "or $PYHSM_TOKEN")

    def close(self) -> None:
        try:
            self.eng.finalize()
        except CKRError:
            pass

    # ---- login ---------------------------------------------------------------------------------------
    @property
    def logged_in(self) -> bool:
        return self.role is not None

    def login(self, username: str | None, role: str, password: str) -> None:
        pin = f"{username}:{password}" if username else password
        self.eng.login(self.session, ROLES[role], pin.encode("utf-8"))
        self.username, self.role = username, role

    def logout(self) -> None:
        if self.role is None:
            raise CliError("not logged in")
        self.eng.logout(self.session)
        self.username = self.role = None

    # ---- objects -------------------------------------------------------------------------------------
    def find(self, template: Mapping[int, Any]) -> list[int]:
        self.eng.find_objects_init(self.session, raw_template(template))
        try:
            found: list[int] = []
            while batch := self.eng.find_objects(self.session, 256):
                found.extend(batch)
            return found
        finally:
            self.eng.find_objects_final(self.session)

    def keys(self, template: Mapping[int, Any]) -> list[int]:
        """Handles of the keys the login may see that match the template, in handle order."""
        if ck.CKA_CLASS in template:
            return sorted(self.find(template))
        return sorted(h for c in KEY_CLASSES for h in self.find({**template, ck.CKA_CLASS: c}))

    def attributes(self, handle: int, types: Iterable[int]) -> dict[int, Any]:
        """The readable attributes among `types` (absent and sensitive ones are left out)."""
        types = list(types)
        answers = self.eng.get_attribute_value(self.session, handle, types)
        return {t: codec.decode(t, a) for t, a in zip(types, answers, strict=True) if isinstance(a, bytes)}

    def create(self, template: Mapping[int, Any]) -> int:
        return self.eng.create_object(self.session, raw_template(template))

    def destroy(self, handle: int) -> None:
        self.eng.destroy_object(self.session, handle)

    def set_attributes(self, handle: int, template: Mapping[int, Any]) -> None:
        self.eng.set_attribute_value(self.session, handle, raw_template(template))

    # ---- key management and crypto ------------------------------------------------------------------
    def generate_key(self, mechanism: int, template: Mapping[int, Any]) -> int:
        require_mechanism(mechanism, ck.CKF_GENERATE)
        return self.eng.generate_key(self.session, mechanism, None, raw_template(template))

    def generate_key_pair(self, mechanism: int, public: Mapping[int, Any],
                          private: Mapping[int, Any]) -> tuple[int, int]:
        require_mechanism(mechanism, ck.CKF_GENERATE_KEY_PAIR)
        return self.eng.generate_key_pair(self.session, mechanism, None, raw_template(public), raw_template(private))

    def wrap(self, mechanism: int, param: MechanismParam, wrapping: int, key: int) -> bytes:
        require_mechanism(mechanism, ck.CKF_WRAP)
        return self.eng.wrap_key(self.session, mechanism, param, wrapping, key)

    def unwrap(self, mechanism: int, param: MechanismParam, unwrapping: int, wrapped: bytes,
               template: Mapping[int, Any]) -> int:
        require_mechanism(mechanism, ck.CKF_UNWRAP)
        return self.eng.unwrap_key(self.session, mechanism, param, unwrapping, wrapped, raw_template(template))

    def sign(self, mechanism: int, param: MechanismParam, key: int, data: bytes) -> bytes:
        require_mechanism(mechanism, ck.CKF_SIGN)
        self.eng.crypto_init(OpKind.SIGN, self.session, mechanism, param, key)
        _, signature = self.eng.single(OpKind.SIGN, self.session, data, 1 << 16)
        assert signature is not None
        return signature

    def verify(self, mechanism: int, param: MechanismParam, key: int, data: bytes, signature: bytes) -> None:
        require_mechanism(mechanism, ck.CKF_VERIFY)
        self.eng.crypto_init(OpKind.VERIFY, self.session, mechanism, param, key)
        self.eng.verify(self.session, data, signature)


USES = {ck.CKF_GENERATE: "generate keys", ck.CKF_GENERATE_KEY_PAIR: "generate key pairs", ck.CKF_WRAP: "wrap keys",
        ck.CKF_UNWRAP: "unwrap keys", ck.CKF_SIGN: "sign", ck.CKF_VERIFY: "verify"}


def require_mechanism(mechanism: int, use: int) -> None:
    """A clear message, rather than a bare CKR_MECHANISM_INVALID, when pyhsm lacks a mechanism for this use."""
    mech = registry.all_mechanisms().get(mechanism)
    if mech is None or not mech.info.flags & use:
        names = [k for k, v in vars(ck).items() if k.startswith("CKM_") and v == mechanism]
        name = f"{names[0]} " if names else ""
        raise CliError(f"{name}(0x{mechanism:08x}) is not implemented to {USES[use]} by this pyhsm build")

"""Key management functions: generate, generate pair, wrap, unwrap, derive (PKCS#11 v3.0 section 5.14)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any

from pyhsm import constants as ck
from pyhsm.engine import approvals, ownership, policy
from pyhsm.engine.crypto_functions import CryptoFunctions
from pyhsm.engine.object_functions import RawTemplate, decode_template
from pyhsm.engine.objects import P11Object
from pyhsm.engine.session import Session
from pyhsm.errors import CKRError
from pyhsm.mechanisms import registry
from pyhsm.mechanisms.params import KeyHandle, MechanismParam
from pyhsm.objects.classes import schema_for
from pyhsm.objects.key_material import complete_key_material, private_key_from_pkcs8, private_key_to_pkcs8
from pyhsm.objects.schema import How


def _fixed(values: dict[int, Any], attr_type: int, value: int) -> None:
    if values.setdefault(attr_type, value) != value:
        raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, f"attribute 0x{attr_type:X} conflicts with the mechanism")


def _apply_template(imposed: tuple[tuple[int, Any], ...], values: dict[int, Any]) -> dict[int, Any]:
    """CKA_UNWRAP_TEMPLATE / CKA_DERIVE_TEMPLATE: the key's template first, then the caller's, which must agree."""
    merged = dict(imposed)
    for attr_type, value in values.items():
        if merged.setdefault(attr_type, value) != value:
            raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, f"0x{attr_type:X} conflicts with the key's template")
    return merged


def _sensitivity(attrs: dict[int, Any], generated: bool, base: dict[int, Any] | None = None) -> None:
    """CKA_LOCAL, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE as sections 4.9/4.10 define them."""
    attrs[ck.CKA_LOCAL] = generated
    if attrs[ck.CKA_CLASS] == ck.CKO_PUBLIC_KEY:
        return
    always, never = generated, generated
    if base is not None:  # derived: inherits the base key's history
        always = bool(base.get(ck.CKA_ALWAYS_SENSITIVE))
        never = bool(base.get(ck.CKA_NEVER_EXTRACTABLE))
    attrs[ck.CKA_ALWAYS_SENSITIVE] = always and bool(attrs[ck.CKA_SENSITIVE])
    attrs[ck.CKA_NEVER_EXTRACTABLE] = never and not attrs[ck.CKA_EXTRACTABLE]


class KeyFunctions(CryptoFunctions):
    def _gen_mechanism(self, session: Session, mechanism: int, flag: int,
                       param: MechanismParam) -> tuple[registry.Mechanism, int]:
        mech = self._mechanism(session, mechanism, flag, param)
        if mech.generates is None:
            raise CKRError(ck.CKR_MECHANISM_INVALID)
        return mech, mech.generates

    def generate_key(self, handle: int, mechanism: int, param: MechanismParam, template: RawTemplate) -> int:
        session = self.session(handle)
        mech, key_type = self._gen_mechanism(session, mechanism, ck.CKF_GENERATE, param)
        values = decode_template(template)
        _fixed(values, ck.CKA_CLASS, ck.CKO_SECRET_KEY)
        _fixed(values, ck.CKA_KEY_TYPE, key_type)
        attrs = schema_for(values).build(values, How.GENERATE, is_so=session.token.user == ck.CKU_SO)
        self._check_may_store(session, attrs)
        attrs.update(mech.generate_key(attrs))
        attrs[ck.CKA_KEY_GEN_MECHANISM] = mechanism
        _sensitivity(attrs, generated=True)
        complete_key_material(attrs)
        return self.store_new_object(session, attrs, "key.generate").handle

    def generate_key_pair(self, handle: int, mechanism: int, param: MechanismParam,
                          public_template: RawTemplate, private_template: RawTemplate) -> tuple[int, int]:
        session = self.session(handle)
        mech, key_type = self._gen_mechanism(session, mechanism, ck.CKF_GENERATE_KEY_PAIR, param)
        is_so = session.token.user == ck.CKU_SO
        pub_values, priv_values = decode_template(public_template), decode_template(private_template)
        _fixed(pub_values, ck.CKA_CLASS, ck.CKO_PUBLIC_KEY)
        _fixed(priv_values, ck.CKA_CLASS, ck.CKO_PRIVATE_KEY)
        _fixed(pub_values, ck.CKA_KEY_TYPE, key_type)
        _fixed(priv_values, ck.CKA_KEY_TYPE, key_type)
        public = schema_for(pub_values).build(pub_values, How.GENERATE, is_so)
        private = schema_for(priv_values).build(priv_values, How.GENERATE, is_so)
        self._check_may_store(session, public)
        self._check_may_store(session, private)
        pub_material, priv_material = mech.generate_key_pair(public, private)
        for attrs, material in ((public, pub_material), (private, priv_material)):
            attrs.update(material)
            attrs[ck.CKA_KEY_GEN_MECHANISM] = mechanism
            _sensitivity(attrs, generated=True)
        complete_key_material(public)
        pub_obj = self.store_new_object(session, public, "key.generate")
        try:
            priv_obj = self.store_new_object(session, private, "key.generate")
        except Exception:
            self.destroy_object(handle, pub_obj.handle)  # never leave half a key pair behind
            raise
        return pub_obj.handle, priv_obj.handle

    # ---- wrapping -------------------------------------------------------------------------------------------
    def wrap_key(self, handle: int, mechanism: int, param: MechanismParam, wrapping_handle: int,
                 key_handle: int) -> bytes:
        session = self.session(handle)
        mech = self._mechanism(session, mechanism, ck.CKF_WRAP, param)
        wrapping_key = self.usable_key(session, mech, wrapping_handle, ck.CKA_WRAP,
                                       ck.CKR_WRAPPING_KEY_HANDLE_INVALID)
        key = self.object(session, key_handle, ck.CKR_KEY_HANDLE_INVALID)
        if key.object_class not in (ck.CKO_SECRET_KEY, ck.CKO_PRIVATE_KEY):
            raise CKRError(ck.CKR_KEY_NOT_WRAPPABLE)
        ownership.require_manager(session.token, key, ck.CKR_KEY_NOT_WRAPPABLE, "wrap (export)")
        if not key.attrs.get(ck.CKA_EXTRACTABLE, False):
            raise CKRError(ck.CKR_KEY_UNEXTRACTABLE)
        if key.attrs.get(ck.CKA_WRAP_WITH_TRUSTED) and not wrapping_key.attrs.get(ck.CKA_TRUSTED):
            raise CKRError(ck.CKR_KEY_NOT_WRAPPABLE, "the key may only be wrapped with a trusted key")
        if not key.matches(dict(wrapping_key.attrs.get(ck.CKA_WRAP_TEMPLATE, ()))):
            raise CKRError(ck.CKR_KEY_NOT_WRAPPABLE, "the key does not match the wrapping key's CKA_WRAP_TEMPLATE")
        approvals.require_key_quorum(session.token, key, policy.SERVICE_KEY_MANAGEMENT, ck.CKR_KEY_NOT_WRAPPABLE,
                                     session.handle)
        session.token.unseal(key)
        if key.object_class == ck.CKO_SECRET_KEY:
            material = bytes(key.attrs[ck.CKA_VALUE])
        else:
            material = private_key_to_pkcs8(key.attrs)
        wrapped = mech.wrap(wrapping_key, param, material)
        self.audit_object(session, "key.wrap", key, detail={"wrapping_key": f"0x{wrapping_handle:x}",
                                                            "mechanism": f"0x{mechanism:x}"})
        return wrapped

    def unwrap_key(self, handle: int, mechanism: int, param: MechanismParam, unwrapping_handle: int,
                   wrapped: bytes, template: RawTemplate) -> int:
        session = self.session(handle)
        mech = self._mechanism(session, mechanism, ck.CKF_UNWRAP, param)
        unwrapping_key = self.usable_key(session, mech, unwrapping_handle, ck.CKA_UNWRAP,
                                         ck.CKR_UNWRAPPING_KEY_HANDLE_INVALID)
        values = _apply_template(unwrapping_key.attrs.get(ck.CKA_UNWRAP_TEMPLATE, ()), decode_template(template))
        attrs = schema_for(values).build(values, How.UNWRAP, is_so=session.token.user == ck.CKU_SO)
        self._check_may_store(session, attrs)
        material = mech.unwrap(unwrapping_key, param, wrapped)
        if attrs[ck.CKA_CLASS] == ck.CKO_SECRET_KEY:
            attrs[ck.CKA_VALUE] = material
        elif attrs[ck.CKA_CLASS] == ck.CKO_PRIVATE_KEY:
            attrs.update(private_key_from_pkcs8(material, attrs[ck.CKA_KEY_TYPE]))
        else:
            raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, "only secret and private keys can be unwrapped")
        attrs[ck.CKA_KEY_GEN_MECHANISM] = ck.CK_UNAVAILABLE_INFORMATION
        _sensitivity(attrs, generated=False)
        complete_key_material(attrs)
        return self.store_new_object(session, attrs, "key.unwrap").handle

    # ---- derivation -----------------------------------------------------------------------------------------
    def derive_key(self, handle: int, mechanism: int, param: MechanismParam, base_handle: int,
                   template: RawTemplate) -> int:
        session = self.session(handle)
        mech = self._mechanism(session, mechanism, ck.CKF_DERIVE, param)
        base = self.usable_key(session, mech, base_handle, ck.CKA_DERIVE)
        # The derived key would be the deriver's own (and could be made extractable): deriving is exporting.
        ownership.require_manager(session.token, base, ck.CKR_KEY_FUNCTION_NOT_PERMITTED, "derive from")
        param, others = self._resolve_key_handles(session, param)
        values = _apply_template(base.attrs.get(ck.CKA_DERIVE_TEMPLATE, ()), decode_template(template))
        if mech.derives_data:
            return self._derive_data(session, mech, base, param, values)
        values.setdefault(ck.CKA_CLASS, ck.CKO_SECRET_KEY)
        values.setdefault(ck.CKA_KEY_TYPE, ck.CKK_GENERIC_SECRET)
        value_len = values.pop(ck.CKA_VALUE_LEN, None)
        attrs = schema_for(values).build(values, How.DERIVE, is_so=session.token.user == ck.CKU_SO)
        if value_len is not None:
            attrs[ck.CKA_VALUE_LEN] = value_len
        self._check_may_store(session, attrs)
        attrs.update(mech.derive(base, param, attrs))
        attrs[ck.CKA_KEY_GEN_MECHANISM] = ck.CK_UNAVAILABLE_INFORMATION
        history = {  # a derived key is only as "always sensitive" as every key it came from
            ck.CKA_ALWAYS_SENSITIVE: all(k.attrs.get(ck.CKA_ALWAYS_SENSITIVE) for k in (base, *others)),
            ck.CKA_NEVER_EXTRACTABLE: all(k.attrs.get(ck.CKA_NEVER_EXTRACTABLE) for k in (base, *others)),
        }
        _sensitivity(attrs, generated=False, base=history)
        complete_key_material(attrs)
        return self.store_new_object(session, attrs, "key.derive").handle

    def _derive_data(self, session: Session, mech: registry.Mechanism, base: P11Object, param: MechanismParam,
                     values: dict[int, Any]) -> int:
        """A data object whose CKA_VALUE is the derived bytes (CKM_HKDF_DATA); CKA_VALUE_LEN says how many."""
        if values.setdefault(ck.CKA_CLASS, ck.CKO_DATA) != ck.CKO_DATA:
            raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, "this mechanism derives a data object")
        length = values.pop(ck.CKA_VALUE_LEN, None)
        attrs = schema_for(values).build(values, How.DERIVE, is_so=session.token.user == ck.CKU_SO)
        self._check_may_store(session, attrs)
        attrs.update(mech.derive(base, param, {} if length is None else {ck.CKA_VALUE_LEN: length}))
        return self.store_new_object(session, attrs).handle

    def _resolve_key_handles(self, session: Session, param: MechanismParam) -> tuple[MechanismParam, list[P11Object]]:
        """Fill in the keys a mechanism parameter names by handle (see KeyHandle), checking the caller may see them."""
        resolved: list[P11Object] = []

        def resolve(ref: KeyHandle) -> KeyHandle:
            key = self.object(session, ref.handle, ck.CKR_KEY_HANDLE_INVALID)
            if key.object_class != ck.CKO_SECRET_KEY:
                raise CKRError(ck.CKR_KEY_TYPE_INCONSISTENT, "the parameter must name a secret key")
            ownership.require_manager(session.token, key, ck.CKR_KEY_FUNCTION_NOT_PERMITTED, "derive from")
            resolved.append(session.token.unseal(key))
            return replace(ref, key=resolved[-1])

        if isinstance(param, KeyHandle):
            return resolve(param), resolved
        if is_dataclass(param) and not isinstance(param, type):
            refs = {f.name: resolve(v) for f in fields(param) if isinstance(v := getattr(param, f.name), KeyHandle)}
            return (replace(param, **refs) if refs else param), resolved  # type: ignore[arg-type]
        return param, resolved


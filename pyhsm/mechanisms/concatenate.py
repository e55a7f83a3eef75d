"""CKM_CONCATENATE_BASE_AND_KEY (PKCS#11 v3.0 section 2.43.2): the base key's value followed by another key's.

The parameter names the second key by handle; the engine resolves it (with its visibility checks) and hands the
key itself to `derive`.
"""

from __future__ import annotations

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.params import KeyHandle, MechanismParam, ParamKind
from pyhsm.mechanisms.registry import KeyView, Mechanism, MechanismInfo, Template, register

SECRET_KEY_TYPES = frozenset({
    ck.CKK_GENERIC_SECRET, ck.CKK_AES, ck.CKK_DES3, ck.CKK_SHA_1_HMAC, ck.CKK_SHA224_HMAC, ck.CKK_SHA256_HMAC,
    ck.CKK_SHA384_HMAC, ck.CKK_SHA512_HMAC, ck.CKK_HKDF,
})


@register
class ConcatenateBaseAndKey(Mechanism):
    ckm = ck.CKM_CONCATENATE_BASE_AND_KEY
    info = MechanismInfo(0, 0, ck.CKF_DERIVE)
    key_types = SECRET_KEY_TYPES
    param_kind = ParamKind.KEY_HANDLE

    def check_param(self, param: MechanismParam) -> None:
        if not isinstance(param, KeyHandle):
            raise CKRError(ck.CKR_MECHANISM_PARAM_INVALID, "expected the handle of the second key")

    def derive(self, base_key: KeyView, param: MechanismParam, template: Template) -> Template:
        if not isinstance(param, KeyHandle) or param.key is None:
            raise CKRError(ck.CKR_KEY_HANDLE_INVALID, "the second key was not resolved")
        other: KeyView = param.key
        if other.attrs.get(ck.CKA_CLASS) != ck.CKO_SECRET_KEY:
            raise CKRError(ck.CKR_KEY_TYPE_INCONSISTENT, "only secret keys can be concatenated")
        value = bytes(base_key.attrs[ck.CKA_VALUE]) + bytes(other.attrs[ck.CKA_VALUE])
        length = template.get(ck.CKA_VALUE_LEN)
        if length is not None:
            if not 0 < int(length) <= len(value):
                raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN exceeds the concatenation")
            value = value[:int(length)]
        return {ck.CKA_VALUE: value}

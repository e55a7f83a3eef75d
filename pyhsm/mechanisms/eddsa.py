"""Edwards-curve mechanisms (PKCS#11 v3.0 sections 2.3.6-2.3.7, RFC 8032): CKM_EC_EDWARDS_KEY_PAIR_GEN and
CKM_EDDSA for Ed25519 and Ed448.

EdDSA signs the whole message (it hashes it twice), so Update calls are collected up to a limit. CK_EDDSA_PARAMS is
optional: without it, or with phFlag FALSE and no context, the signature is pure Ed25519 / Ed448 (Ed448's context
is then empty). pyca/cryptography implements neither the prehash variants (Ed25519ph, Ed448ph) nor contexts
(Ed25519ctx, Ed448 with a context), so those parameters are CKR_MECHANISM_PARAM_INVALID at init.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.generic import BufferedSignOp, BufferedVerifyOp, pair_params, param_invalid
from pyhsm.mechanisms.params import EddsaParams, MechanismParam, ParamKind
from pyhsm.mechanisms.registry import KeyView, Mechanism, MechanismInfo, Template, register
from pyhsm.objects.okp_keys import OkpCurve, der_octet_string, okp_curve

MESSAGE_LIMIT = 16 << 20  # what a multi-part EdDSA operation may collect
OKP_FLAGS = ck.CKF_EC_F_P | ck.CKF_EC_OID | ck.CKF_EC_CURVENAME


def okp_key_pair(public: Template, private: Template, key_type: int) -> tuple[Template, Template]:
    """Key pair generation shared with the Montgomery family: the curve comes from CKA_EC_PARAMS."""
    params = pair_params(public, private)
    curve = okp_curve(params, key_type)
    key = curve.private_class.generate()
    point = der_octet_string(key.public_key().public_bytes_raw())
    return ({ck.CKA_EC_PARAMS: params, ck.CKA_EC_POINT: point},
            {ck.CKA_EC_PARAMS: params, ck.CKA_VALUE: key.private_bytes_raw(), ck.CKA_EC_POINT: point})


def key_curve(key: KeyView) -> OkpCurve:
    return okp_curve(key.attrs[ck.CKA_EC_PARAMS], key.attrs[ck.CKA_KEY_TYPE])


def okp_private_key(key: KeyView) -> Any:
    return key.cached("okp.private", lambda: key_curve(key).load_private(bytes(key.attrs[ck.CKA_VALUE])))


def okp_public_key(key: KeyView) -> Any:
    return key.cached("okp.public", lambda: key_curve(key).load_public(key.attrs[ck.CKA_EC_POINT]))


@register
class EdwardsKeyPairGen(Mechanism):
    ckm = ck.CKM_EC_EDWARDS_KEY_PAIR_GEN
    generates = ck.CKK_EC_EDWARDS
    info = MechanismInfo(255, 448, ck.CKF_GENERATE_KEY_PAIR | OKP_FLAGS)

    def generate_key_pair(self, public: Template, private: Template) -> tuple[Template, Template]:
        return okp_key_pair(public, private, ck.CKK_EC_EDWARDS)


def _pure(param: MechanismParam) -> None:
    if param is None or param == EddsaParams(False, b""):
        return
    if not isinstance(param, EddsaParams):
        raise param_invalid("CK_EDDSA_PARAMS or no parameter expected")
    raise param_invalid("Ed25519ph/Ed448ph and EdDSA contexts are not supported")


@register
class Eddsa(Mechanism):
    ckm = ck.CKM_EDDSA
    key_types = frozenset({ck.CKK_EC_EDWARDS})
    info = MechanismInfo(255, 448, ck.CKF_SIGN | ck.CKF_VERIFY | OKP_FLAGS)
    param_kind = ParamKind.EDDSA

    def check_param(self, param: MechanismParam) -> None:
        _pure(param)

    def sign(self, key: KeyView, param: MechanismParam) -> BufferedSignOp:
        _pure(param)
        return BufferedSignOp(okp_private_key(key).sign, MESSAGE_LIMIT)

    def verify(self, key: KeyView, param: MechanismParam) -> BufferedVerifyOp:
        _pure(param)
        pub, size = okp_public_key(key), 2 * key_curve(key).public_len

        def verify(data: bytes, signature: bytes) -> None:
            if len(signature) != size:
                raise CKRError(ck.CKR_SIGNATURE_LEN_RANGE)
            try:
                pub.verify(signature, data)
            except InvalidSignature:
                raise CKRError(ck.CKR_SIGNATURE_INVALID) from None

        return BufferedVerifyOp(verify, MESSAGE_LIMIT)

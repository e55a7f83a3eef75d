"""Object management and search functions (PKCS#11 v3.0 sections 5.7 and 4)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from pyhsm import constants as ck
from pyhsm.engine import approvals, ownership, policy
from pyhsm.engine.core import MAX_SESSION_OBJECTS, EngineCore
from pyhsm.engine.objects import P11Object, next_session_object_handle
from pyhsm.engine.session import Operation, OpKind, Session
from pyhsm.engine.token import Sealed
from pyhsm.errors import CKRError
from pyhsm.objects import codec
from pyhsm.objects.classes import schema_for
from pyhsm.objects.key_material import complete_key_material
from pyhsm.objects.schema import How

RawTemplate = Iterable[tuple[int, bytes]]

# One answer per requested attribute of C_GetAttributeValue: the encoded value, or the CKR_* that applies.
AttributeAnswer = bytes | int


def decode_template(template: RawTemplate) -> dict[int, Any]:
    """Caller template -> typed values; the same attribute twice with different values is inconsistent."""
    values: dict[int, Any] = {}
    for attr_type, raw in template:
        value = codec.decode(attr_type, raw)
        if attr_type in values and values[attr_type] != value:
            raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, f"attribute 0x{attr_type:X} given twice")
        values[attr_type] = value
    return values


def unique_id() -> bytes:
    return os.urandom(16).hex().encode()


class ObjectFunctions(EngineCore):
    # ---- visibility and access ----------------------------------------------------------------------
    def object(self, session: Session, handle: int, invalid: int = ck.CKR_OBJECT_HANDLE_INVALID) -> P11Object:
        """An object this session's user may see (pyhsm/engine/ownership.py); others do not exist for them."""
        session.token.sync()
        obj = session.token.get(handle)
        if obj is None or not ownership.visible(session.token, obj):
            raise CKRError(invalid)
        return obj

    def _check_may_store(self, session: Session, attrs: Mapping[int, Any]) -> None:
        """Who may create or modify an object of this kind in this session."""
        if attrs.get(ck.CKA_TOKEN) and not session.rw:
            raise CKRError(ck.CKR_SESSION_READ_ONLY)
        if attrs.get(ck.CKA_PRIVATE) and session.token.user != ck.CKU_USER:
            raise CKRError(ck.CKR_USER_NOT_LOGGED_IN)

    def store_new_object(self, session: Session, attrs: dict[int, Any], event: str = "object.create") -> P11Object:
        """Every new object comes through here: owner, quota, storage, audit."""
        self._check_may_store(session, attrs)
        ownership.stamp_new_object(session.token, attrs)
        attrs[ck.CKA_UNIQUE_ID] = unique_id()
        if attrs.get(ck.CKA_TOKEN):
            obj = session.token.add_token_object(attrs)
        else:
            if sum(len(t.session_objects) for t in self._tokens.values()) >= MAX_SESSION_OBJECTS:
                raise CKRError(ck.CKR_DEVICE_MEMORY, f"this process holds {MAX_SESSION_OBJECTS} session objects")
            obj = P11Object(next_session_object_handle(), attrs, owner_session=session.handle)
            session.token.add_session_object(obj)
        self.audit_object(session, event, obj)
        return obj

    def audit_object(self, session: Session, event: str, obj: P11Object, result: BaseException | None = None,
                     detail: dict[str, Any] | None = None) -> None:
        facts: dict[str, Any] = {"class": obj.object_class, "token": obj.is_token,
                                    "label": bytes(obj.attrs.get(ck.CKA_LABEL, b"")).decode("utf-8", "replace")}
        session.token.record(event, session.handle, obj=obj.handle, result=result, detail=facts | (detail or {}),
                             session_object=not obj.is_token)

    # ---- C_CreateObject / C_CopyObject / C_DestroyObject ----------------------------------------------
    def create_object(self, handle: int, template: RawTemplate) -> int:
        session = self.session(handle)
        values = decode_template(template)
        schema = schema_for(values)
        attrs = schema.build(values, How.CREATE, is_so=session.token.user == ck.CKU_SO)
        if attrs[ck.CKA_CLASS] in (ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY):
            # Section 4.9/4.10: material that came from outside was never sensitive nor unextractable.
            attrs[ck.CKA_LOCAL] = False
            attrs[ck.CKA_ALWAYS_SENSITIVE] = False
            attrs[ck.CKA_NEVER_EXTRACTABLE] = False
            attrs[ck.CKA_KEY_GEN_MECHANISM] = ck.CK_UNAVAILABLE_INFORMATION
        elif attrs[ck.CKA_CLASS] == ck.CKO_PUBLIC_KEY:
            attrs[ck.CKA_LOCAL] = False
            attrs[ck.CKA_KEY_GEN_MECHANISM] = ck.CK_UNAVAILABLE_INFORMATION
        complete_key_material(attrs)
        return self.store_new_object(session, attrs).handle

    def copy_object(self, handle: int, obj_handle: int, template: RawTemplate) -> int:
        session = self.session(handle)
        obj = self.object(session, obj_handle)
        ownership.require_manager(session.token, obj, ck.CKR_ACTION_PROHIBITED, "copy")
        if not obj.attrs.get(ck.CKA_COPYABLE, True):
            raise CKRError(ck.CKR_ACTION_PROHIBITED, "the object is not copyable")
        changes = decode_template(template)
        obj.schema.check_set(obj.attrs, changes, copying=True, is_so=session.token.user == ck.CKU_SO)
        session.token.unseal(obj)
        attrs = {t: v for t, v in obj.attrs.items() if not isinstance(v, Sealed)} | changes
        return self.store_new_object(session, attrs, "object.copy").handle

    def destroy_object(self, handle: int, obj_handle: int) -> None:
        session = self.session(handle)
        obj = self.object(session, obj_handle)
        self._check_may_store(session, obj.attrs)
        ownership.require_manager(session.token, obj, ck.CKR_ACTION_PROHIBITED, "destroy")
        if not obj.attrs.get(ck.CKA_DESTROYABLE, True):
            raise CKRError(ck.CKR_ACTION_PROHIBITED, "the object is not destroyable")
        if obj.is_token:
            session.token.destroy_token_object(obj)
        else:
            session.token.drop_session_object(obj)
        self.audit_object(session, "object.destroy", obj)

    def get_object_size(self, handle: int, obj_handle: int) -> int:
        session = self.session(handle)
        obj = self.object(session, obj_handle)
        return sum(len(v.blob) if isinstance(v, Sealed) else len(codec.encode(t, v)) for t, v in obj.attrs.items())

    # ---- attributes --------------------------------------------------------------------------------------
    def get_attribute_value(self, handle: int, obj_handle: int, types: Iterable[int]) -> list[AttributeAnswer]:
        session = self.session(handle)
        obj = self.object(session, obj_handle)
        answers: list[AttributeAnswer] = []
        for attr_type in types:
            if attr_type not in obj.attrs:
                answers.append(ck.CKR_ATTRIBUTE_TYPE_INVALID)
            elif obj.schema.hidden(obj.attrs, attr_type):
                answers.append(ck.CKR_ATTRIBUTE_SENSITIVE)
            else:
                value = obj.attrs[attr_type]
                if isinstance(value, Sealed):
                    value = session.token.unseal(obj).attrs[attr_type]
                answers.append(codec.encode(attr_type, value))
        return answers

    def set_attribute_value(self, handle: int, obj_handle: int, template: RawTemplate) -> None:
        session = self.session(handle)
        obj = self.object(session, obj_handle)
        self._check_may_store(session, obj.attrs)
        changes = decode_template(template)
        self._check_may_modify(session, obj, changes)
        obj.schema.check_set(obj.attrs, changes, copying=False, is_so=session.token.user == ck.CKU_SO)
        approvals.require_key_quorum(session.token, obj, policy.SERVICE_KEY_MANAGEMENT, ck.CKR_ACTION_PROHIBITED,
                                     session.handle)
        self.save_attributes(session, obj, changes)
        self.audit_object(session, "object.set-attribute", obj,
                          detail={"attributes": [f"0x{t:x}" for t in sorted(changes)]})

    def _check_may_modify(self, session: Session, obj: P11Object, changes: Mapping[int, Any]) -> None:
        # CKA_TRUSTED is the SO's to set (footnote 10) on any object it can see; every other change is the owner's.
        if session.token.user != ck.CKU_SO or set(changes) != {ck.CKA_TRUSTED}:
            ownership.require_manager(session.token, obj, ck.CKR_ACTION_PROHIBITED, "modify")
        if not obj.attrs.get(ck.CKA_MODIFIABLE, True):
            raise CKRError(ck.CKR_ACTION_PROHIBITED, "the object is not modifiable")

    def save_attributes(self, session: Session, obj: P11Object, changes: Mapping[int, Any]) -> None:
        if obj.is_token:
            session.token.update_token_object(obj, obj.attrs | dict(changes))
        else:
            obj.replace_attrs(obj.attrs | dict(changes))
            session.token.changed()

    # ---- search --------------------------------------------------------------------------------------------
    def find_objects_init(self, handle: int, template: RawTemplate) -> None:
        session = self.session(handle)
        criteria = decode_template(template)
        token = session.token
        with token.lock:
            token.sync()
            found = [o.handle for o in token.candidates(criteria)
                     if ownership.visible(token, o) and o.matches(criteria)]
        found.reverse()  # popped from the end, so the caller sees them in store order
        session.start(Operation(OpKind.FIND, found))

    def find_objects(self, handle: int, max_count: int) -> list[int]:
        session = self.session(handle)
        found: list[int] = session.active(OpKind.FIND).impl
        batch = found[-max_count:] if max_count else []
        del found[len(found) - len(batch):]
        batch.reverse()
        return batch

    def find_objects_final(self, handle: int) -> None:
        session = self.session(handle)
        session.active(OpKind.FIND)
        session.end(OpKind.FIND)

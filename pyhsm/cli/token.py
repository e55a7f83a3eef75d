"""`pyhsm token ...`: initialise and list tokens, following the PKCS#11 call sequence a host would use."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyhsm import constants as ck
from pyhsm.cli import pins
from pyhsm.cli.context import Context
from pyhsm.cli.errors import UsageError
from pyhsm.cli.output import print_table
from pyhsm.cli.tree import command, group
from pyhsm.errors import CKRError

if TYPE_CHECKING:
    from pyhsm.engine import Engine

LABEL_SIZE = 32

TOKEN_FLAGS: tuple[tuple[int, str], ...] = (
    (ck.CKF_RNG, "rng"),
    (ck.CKF_WRITE_PROTECTED, "write-protected"),
    (ck.CKF_LOGIN_REQUIRED, "login-required"),
    (ck.CKF_USER_PIN_INITIALIZED, "user-pin-initialized"),
    (ck.CKF_RESTORE_KEY_NOT_NEEDED, "restore-key-not-needed"),
    (ck.CKF_CLOCK_ON_TOKEN, "clock-on-token"),
    (ck.CKF_PROTECTED_AUTHENTICATION_PATH, "protected-authentication-path"),
    (ck.CKF_DUAL_CRYPTO_OPERATIONS, "dual-crypto-operations"),
    (ck.CKF_TOKEN_INITIALIZED, "token-initialized"),
    (ck.CKF_SECONDARY_AUTHENTICATION, "secondary-authentication"),
    (ck.CKF_USER_PIN_COUNT_LOW, "user-pin-count-low"),
    (ck.CKF_USER_PIN_FINAL_TRY, "user-pin-final-try"),
    (ck.CKF_USER_PIN_LOCKED, "user-pin-locked"),
    (ck.CKF_USER_PIN_TO_BE_CHANGED, "user-pin-to-be-changed"),
    (ck.CKF_SO_PIN_COUNT_LOW, "so-pin-count-low"),
    (ck.CKF_SO_PIN_FINAL_TRY, "so-pin-final-try"),
    (ck.CKF_SO_PIN_LOCKED, "so-pin-locked"),
    (ck.CKF_SO_PIN_TO_BE_CHANGED, "so-pin-to-be-changed"),
    (ck.CKF_ERROR_STATE, "error-state"),
)


def flag_names(flags: int) -> list[str]:
    names = [name for bit, name in TOKEN_FLAGS if flags & bit]
    rest = flags & ~sum(bit for bit, _ in TOKEN_FLAGS)
    if rest:
        names.append(f"0x{rest:x}")
    return names


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace").rstrip(" \0")


@dataclass
class SlotView:
    slot: int
    label: str
    serial: str
    manufacturer: str
    model: str
    flags: int

    @property
    def initialized(self) -> bool:
        return bool(self.flags & ck.CKF_TOKEN_INITIALIZED)

    def as_json(self) -> dict[str, object]:
        return {"slot": self.slot, "label": self.label, "serial": self.serial, "manufacturer": self.manufacturer,
                "model": self.model, "initialized": self.initialized, "flags": self.flags,
                "flag_names": flag_names(self.flags)}


def _slots(eng: Engine) -> list[SlotView]:
    views = []
    for slot in eng.get_slot_list(False):
        info = eng.get_token_info(slot)
        views.append(SlotView(slot, _text(info.label), _text(info.serial), _text(info.manufacturer),
                              _text(info.model), info.flags))
    return views


class _Library:
    """C_Initialize ... C_Finalize around a block, like any host."""

    def __enter__(self) -> Engine:
        from pyhsm.engine import Engine

        self.eng = Engine()
        self.eng.initialize(0)
        return self.eng

    def __exit__(self, *exc: object) -> None:
        try:
            self.eng.finalize()
        except CKRError:
            if exc[0] is None:
                raise


def cmd_init(ctx: Context, args: argparse.Namespace) -> dict[str, object]:
    label = args.label.encode("utf-8")
    if not label or len(label) > LABEL_SIZE:
        raise UsageError(f"the label must be 1 to {LABEL_SIZE} bytes of UTF-8")
    so_pin = pins.resolve(args.so_pin, args.so_pin_file, "PYHSM_SO_PIN", "SO PIN", confirm=True)
    pin = pins.resolve(args.pin, args.pin_file, "PYHSM_PIN", "PIN", confirm=True)
    ctx.close()  # C_InitToken refuses while this process has a session on the token
    with _Library() as eng:
        views = _slots(eng)
        same_label = [v for v in views if v.initialized and v.label == args.label]
        if args.slot is not None:
            slot = args.slot
        elif same_label and args.reinit:
            slot = same_label[0].slot
        elif same_label:
            raise UsageError(f"a token labelled {args.label!r} already exists in slot {same_label[0].slot}; "
                             "pass --reinit (or --slot N) to re-initialise it, which erases its objects")
        else:
            free = [v.slot for v in views if not v.initialized]
            if not free:
                raise CKRError(ck.CKR_TOKEN_NOT_PRESENT, "no slot holds an uninitialised token")
            slot = free[0]
        eng.init_token(slot, so_pin, label.ljust(LABEL_SIZE, b" "), fips=args.fips)
        handle = eng.open_session(slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION)
        try:
            eng.login(handle, ck.CKU_SO, so_pin)
            eng.init_pin(handle, pin)
            eng.logout(handle)
        finally:
            eng.close_session(handle)
        serial = _text(eng.get_token_info(slot).serial)
    return {"slot": slot, "label": args.label, "serial": serial, "fips": args.fips}


def cmd_list(ctx: Context, args: argparse.Namespace) -> list[dict[str, object]]:
    with _Library() as eng:
        return [v.as_json() for v in _slots(eng)]


def table(slots: list[dict[str, Any]]) -> None:
    rows = [[str(v["slot"]), v["label"] if v["initialized"] else "(uninitialised)", str(v["serial"]),
             ", ".join(v["flag_names"])] for v in slots]
    print_table("pyhsm tokens", ["Slot", "Label", "Serial", "Flags"], rows)


def cmd_status(ctx: Context, args: argparse.Namespace) -> dict[str, object]:
    hsm = ctx.hsm(args, login=False)
    info = hsm.eng.get_token_info(hsm.slot)
    view = SlotView(hsm.slot, _text(info.label), _text(info.serial), _text(info.manufacturer), _text(info.model),
                    info.flags)
    return {**view.as_json(), "session_count": info.session_count, "min_pin_len": info.min_pin_len,
            "max_pin_len": info.max_pin_len}


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tsub = group(sub, "token", "initialise, list and inspect tokens")
    init = command(tsub, "init", "initialise a token and set its SO and user PINs", cmd_init,
                   description="Initialise the token in the first free slot (or --slot N), then set the "
                               "user PIN. PINs may come from --so-pin/--pin, --so-pin-file/--pin-file "
                               "(first line; '-' for stdin), $PYHSM_SO_PIN/$PYHSM_PIN, or a prompt.")
    init.add_argument("--label", required=True, help="token label (at most 32 bytes of UTF-8)")
    init.add_argument("--so-pin", help="Security Officer PIN (visible in ps: prefer --so-pin-file)")
    init.add_argument("--so-pin-file", metavar="FILE", help="read the SO PIN from the first line of FILE")
    init.add_argument("--pin", help="user PIN (visible in ps: prefer --pin-file)")
    init.add_argument("--pin-file", metavar="FILE", help="read the user PIN from the first line of FILE")
    init.add_argument("--slot", type=int, help="slot to initialise (re-initialising needs that token's SO PIN)")
    init.add_argument("--reinit", action="store_true",
                      help="re-initialise the token with this label if it exists (erases its objects)")
    init.add_argument("--fips", action="store_true",
                      help="FIPS mode, fixed until the token is initialised again: no DES3 generation or encryption, "
                           "no RSA PKCS#1 v1.5 encryption or wrapping (default: non-FIPS)")
    lst = command(tsub, "list", "list slots and their tokens", cmd_list)
    lst.set_defaults(table=table)
    status = command(tsub, "status", "show the selected token's state and flags (no login needed)", cmd_status)
    for parser in (init, lst, status):
        parser.add_argument("--json", action="store_true",
                            help="print the data alone, without the envelope (for scripts predating it)")

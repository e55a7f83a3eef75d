"""`pyhsm audit verify` and `pyhsm audit tail [-f]`: a token's hash-chained audit log (pyhsm/audit.py).

Neither needs a login: the log holds no secrets, and reading it is a matter of file permissions (0600, the store's
owner).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pyhsm.audit import AuditLog
from pyhsm.cli import output
from pyhsm.cli.errors import UsageError

EXIT_TAMPERED = 3  # verify found problems (1 is any PKCS#11 failure, 2 a refused request)


def _open_log(args: argparse.Namespace) -> tuple[AuditLog, tuple[int, str] | None]:
    from pyhsm.engine import Engine

    eng = Engine()
    eng.initialize(0)
    try:
        if args.slot is not None:
            return eng.audit_log(args.slot)
        for slot in eng.get_slot_list(False):
            info = eng.get_token_info(slot)
            if info.label.decode("utf-8", "replace").rstrip(" ") == args.token:
                return eng.audit_log(slot)
        raise UsageError(f"no token labelled {args.token!r}")
    finally:
        eng.finalize()


def _line(record: dict[str, Any]) -> str:
    who = f"{record.get('user') or '-'}({record.get('role') or 'public'})"
    obj = f" {record['object']}" if record.get("object") else ""
    detail = f" {json.dumps(record['detail'], sort_keys=True)}" if record.get("detail") else ""
    return (f"{record.get('seq', '?'):>6} {record.get('time', '?')} {who} pid={record.get('pid')} "
            f"session={record.get('session')} {record.get('event')}{obj} -> {record.get('result')}{detail}")


def cmd_verify(args: argparse.Namespace) -> int:
    log, head = _open_log(args)
    result = log.verify(head)
    if args.json:
        output.print_json({"ok": result.ok, "records": result.records, "problems": result.problems,
                           "head": {"seq": head[0], "hash": head[1]} if head else None})
    elif result.ok:
        output.info(f"audit log intact: {result.records} records, chained and ending at the head the token "
                    f"recorded ({log.path})")
    else:
        for problem in result.problems:
            output.error(problem)
        output.error(f"audit log TAMPERED: {len(result.problems)} problem(s) in {log.path}")
    return 0 if result.ok else EXIT_TAMPERED


def cmd_tail(args: argparse.Namespace) -> int:
    log, _ = _open_log(args)
    if args.lines < 0:
        raise UsageError("-n takes a number of records >= 0")
    lines, offset = log.tail(args.lines)
    for raw in lines:
        print(raw if args.json else _line(json.loads(raw)), flush=True)
    if args.follow:
        for record in log.follow(offset):
            print(json.dumps(record, sort_keys=True) if args.json else _line(record), flush=True)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="verify and follow a token's audit log",
                           description="Every login, logout, user change, quorum event and key change is appended "
                                       "to a hash-chained JSON-lines log per token.")
    asub = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    def which_token(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument("--token", metavar="LABEL", help="the token's label")
        group.add_argument("--slot", type=int, help="the token's slot")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    verify = asub.add_parser("verify", help="check the chain: edits, deletions, reordering, a truncated tail",
                             description=f"Exit status 0 when intact, {EXIT_TAMPERED} when tampered with.")
    which_token(verify)
    verify.set_defaults(func=cmd_verify)

    tail = asub.add_parser("tail", help="print the last records; -f follows new ones")
    which_token(tail)
    tail.add_argument("-n", "--lines", type=int, default=10, help="how many of the last records (default 10)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing records as they are appended")
    tail.set_defaults(func=cmd_tail)

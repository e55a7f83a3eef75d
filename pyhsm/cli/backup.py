"""`pyhsm backup create|restore|list|delete` and `pyhsm key replicate`: whole-token backups, restores as new
tokens of the same lineage, retention, and copying keys between tokens of one lineage.

Results print as the envelope {"error_code": 0, "data": ...} with --json, else as text; failures print
`pyhsm: <message>` on stderr (with --json also the envelope {"error_code": 1, "data": "<message>"} on stdout) and
exit 1. Progress bars go to stderr, and only when it is a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyhsm.cli import output, pins
from pyhsm.cli.errors import UsageError
from pyhsm.store.backup_file import BackupError, Progress

Handler = Callable[[argparse.Namespace], Any]


@contextmanager
def _library() -> Iterator[Any]:
    """C_Initialize ... C_Finalize around a block, like any host."""
    from pyhsm.engine import Engine

    eng = Engine()
    eng.initialize(0)
    try:
        yield eng
    finally:
        eng.finalize()


@contextmanager
def _progress() -> Iterator[Callable[[str], Progress | None]]:
    """Makes rich progress bars on stderr, each fed with (done, total); none when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield lambda _description: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bars

    with Bars(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
              console=Console(stderr=True), transient=True) as bars:

        def bar(description: str) -> Progress:
            task = bars.add_task(description, total=None)
            return lambda done, total: bars.update(task, completed=done, total=total)

        yield bar


def _so_pin(args: argparse.Namespace) -> bytes:
    return pins.resolve(args.so_pin, args.so_pin_file, "PYHSM_SO_PIN", "SO PIN")


def _backup_dir(args: argparse.Namespace) -> Path:
    if args.dir:
        path = Path(args.dir).expanduser()
        if not path.is_dir():
            raise UsageError(f"{path} is not a directory")
        return path
    from pyhsm.config import backup_dir

    return backup_dir()


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--before takes an ISO 8601 date or time (2026-12-01, 2026-12-01T12:00:00Z), "
                         f"not {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cutoff(args: argparse.Namespace) -> datetime | None:
    if getattr(args, "keep_days", None) is not None:
        if args.keep_days < 0:
            raise UsageError("--keep-days is a number of days, 0 or more")
        return datetime.now(UTC) - timedelta(days=args.keep_days)
    if getattr(args, "before", None):
        return _parse_time(args.before)
    return None


def _prune(directory: Path, before: datetime, dry_run: bool) -> list[dict[str, Any]]:
    from pyhsm.store.backup_catalog import expired, scan

    doomed = expired(scan(directory), before)
    if not dry_run:
        for entry in doomed:
            entry.path.unlink(missing_ok=True)
    return [{"file": str(e.path), **(e.header.as_json() if e.header else {})} for e in doomed]


# ---- commands --------------------------------------------------------------------------------------------
def cmd_create(args: argparse.Namespace) -> dict[str, Any]:
    from pyhsm.engine.backup import create_backup, slot_of

    so_pin = _so_pin(args)
    target = Path(args.out).expanduser() if args.out else _backup_dir(args)
    with _library() as eng:
        slot = slot_of(eng, args.token)
        with _progress() as bar:
            path, header = create_backup(eng, slot, so_pin, target, bar("Snapshot (pages)"), bar("Encrypt (bytes)"))
    result: dict[str, Any] = {"file": str(path), **header.as_json()}
    if args.keep_days is not None:
        result["deleted"] = _prune(path.parent, _cutoff(args) or datetime.min, dry_run=False)
    return result


def cmd_restore(args: argparse.Namespace) -> dict[str, Any]:
    from pyhsm.engine.backup import restore_backup

    label = args.label
    if not label or len(label.encode()) > 32:
        raise UsageError("the label must be 1 to 32 bytes of UTF-8")
    so_pin = _so_pin(args)
    with _library() as eng, _progress() as bar:
        restored = restore_backup(eng, Path(args.file).expanduser(), so_pin, label, args.fips, bar("Verify (bytes)"))
    return {"slot": restored.slot, "label": restored.label, "serial": restored.serial,
            "backup": restored.header.as_json()}


def cmd_list(args: argparse.Namespace) -> dict[str, Any]:
    from pyhsm.store.backup_catalog import scan

    directory = _backup_dir(args)
    backups = []
    for entry in scan(directory):
        item: dict[str, Any] = {"file": str(entry.path), "size": entry.path.stat().st_size}
        item.update(entry.header.as_json() if entry.header else {"problem": entry.problem})
        backups.append(item)
    return {"directory": str(directory), "backups": backups}


def cmd_delete(args: argparse.Namespace) -> dict[str, Any]:
    before = _cutoff(args)
    if before is None or (args.before and args.keep_days is not None):
        raise UsageError("give exactly one of --before TIME and --keep-days N")
    deleted = _prune(_backup_dir(args), before, args.dry_run)
    return {"dry_run": args.dry_run, "before": before.isoformat(timespec="seconds"),
            ("would_delete" if args.dry_run else "deleted"): deleted}


# ---- printing ----------------------------------------------------------------------------------------------
def _text(data: dict[str, Any]) -> None:
    if "backups" in data:
        rows = [[Path(b["file"]).name, b.get("created", ""), b.get("lineage", ""), b.get("source", {}).get("label", ""),
                 str(b.get("fips_mode", "")), str(b["size"]), b.get("problem", "")] for b in data["backups"]]
        output.print_table(f"Backups in {data['directory']}",
                           ["File", "Created", "Lineage", "Token", "FIPS", "Bytes", "Problem"], rows)
        return
    for key, value in data.items():
        if isinstance(value, list):
            output.info(f"{key}: {len(value)}")
            for item in value:
                output.info(f"  {item.get('file', item)}")
        else:
            output.info(f"{key}: {value}")


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            data = handler(args)
        except BackupError as exc:
            if args.json:
                output.print_json({"error_code": 1, "data": str(exc)})
            output.error(str(exc))
            return 1
        if args.json:
            output.print_json({"error_code": 0, "data": data})
        else:
            _text(data)
        return 0

    return run


def _pin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--so-pin", help="the token's SO PIN (visible in ps: prefer --so-pin-file)")
    parser.add_argument("--so-pin-file", metavar="FILE", help="read the SO PIN from the first line of FILE")


def _dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", metavar="DIR",
                        help="backup directory (default $PYHSM_BACKUP_DIR, the config's backup_dir, else "
                             "backups/ in the token store)")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    backup = sub.add_parser("backup", help="back up, restore and prune whole tokens")
    bsub = backup.add_subparsers(dest="backup_command", metavar="COMMAND", required=True)

    create = bsub.add_parser("create", help="write one authenticated, encrypted file holding the whole token",
                             description="Back up everything the token holds, consistently, while clients keep "
                                         "using it. Needs the SO PIN; restoring needs the same SO PIN.")
    create.add_argument("--token", required=True, metavar="LABEL", help="the token to back up")
    create.add_argument("--out", metavar="FILE", help="write this file (default: a new file in the backup dir)")
    create.add_argument("--keep-days", type=int, metavar="N",
                        help="then delete backups older than N days (never the newest of a lineage)")
    _dir_option(create)
    _pin_options(create)
    create.set_defaults(func=_run(cmd_create))

    restore = bsub.add_parser("restore", help="create a new token from a backup (same lineage, users and keys)",
                              description="Verify the whole file, then install it as a new token labelled LABEL. "
                                          "Users log in with their old PINs; keys work at once.")
    restore.add_argument("file", metavar="FILE", help="the backup file")
    restore.add_argument("--label", required=True, help="label of the new token (at most 32 bytes)")
    fips = restore.add_mutually_exclusive_group()
    fips.add_argument("--fips", dest="fips", action="store_const", const=True, default=None,
                      help="the new token must be in FIPS mode (refuse a non-FIPS backup)")
    fips.add_argument("--no-fips", dest="fips", action="store_const", const=False,
                      help="the new token must not be in FIPS mode (refuse a FIPS-mode backup)")
    _pin_options(restore)
    restore.set_defaults(func=_run(cmd_restore))

    lst = bsub.add_parser("list", help="list the backups in the backup directory (headers, not verified)")
    _dir_option(lst)
    lst.set_defaults(func=_run(cmd_list))

    delete = bsub.add_parser("delete", help="delete old backups, never the newest of a lineage")
    when = delete.add_mutually_exclusive_group(required=True)
    when.add_argument("--before", metavar="TIME", help="delete backups created before TIME (ISO 8601, UTC if no "
                                                        "zone)")
    when.add_argument("--keep-days", type=int, metavar="N", help="delete backups older than N days")
    delete.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    _dir_option(delete)
    delete.set_defaults(func=_run(cmd_delete))

    for parser in (create, restore, lst, delete):
        parser.add_argument("--json", action="store_true", help='print {"error_code": 0, "data": ...}')

"""`pyhsm backup create|restore|list|delete` and `pyhsm key replicate`: whole-token backups, restores as new
tokens of the same lineage, retention, and copying keys between tokens of one lineage.

Results and failures print like every command (the {"error_code": 0|1, "data": ...} envelope, or --format table).
Progress bars go to stderr, and only when it is a terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyhsm.cli import attributes, output, pins
from pyhsm.cli.context import Context
from pyhsm.cli.errors import CliError, UsageError
from pyhsm.cli.hsm import key_reference, token_labels
from pyhsm.cli.tree import SubParsers, add_filter, command, group
from pyhsm.store.backup_file import BackupError, Progress

Handler = Callable[[Context, argparse.Namespace], Any]



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


def _slot_of(eng: Any, label: str) -> int:
    slots = token_labels(eng)
    if label not in slots:
        raise CliError(f"no token labelled {label!r} (tokens: {', '.join(sorted(slots)) or 'none'})")
    return slots[label]


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
def cmd_create(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from pyhsm.engine.backup import create_backup

    label = ctx.token_label(args)
    if label is None:
        raise UsageError("name the token to back up: --token LABEL (or $PYHSM_TOKEN)")
    cutoff = _cutoff(args)  # checked before the backup is made
    so_pin = _so_pin(args)
    target = Path(args.out).expanduser() if args.out else _backup_dir(args)
    with _library() as eng:
        slot = _slot_of(eng, label)
        with _progress() as bar:
            path, header = create_backup(eng, slot, so_pin, target, bar("Snapshot (pages)"), bar("Encrypt (bytes)"))
    result: dict[str, Any] = {"file": str(path), **header.as_json()}
    if cutoff is not None:
        result["deleted"] = _prune(path.parent, cutoff, dry_run=False)
    return result


def cmd_restore(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from pyhsm.engine.backup import restore_backup

    label = args.label
    if not label or len(label.encode()) > 32:
        raise UsageError("the label must be 1 to 32 bytes of UTF-8")
    so_pin = _so_pin(args)
    with _library() as eng, _progress() as bar:
        if label in token_labels(eng):
            raise CliError(f"a token labelled {label!r} exists already: restore under a new label")
        restored = restore_backup(eng, Path(args.file).expanduser(), so_pin, label, args.fips, bar("Verify (bytes)"))
    return {"slot": restored.slot, "label": restored.label, "serial": restored.serial,
            "backup": restored.header.as_json()}


def cmd_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from pyhsm.store.backup_catalog import scan

    directory = _backup_dir(args)
    backups = []
    for entry in scan(directory):
        item: dict[str, Any] = {"file": str(entry.path), "size": entry.path.stat().st_size}
        item.update(entry.header.as_json() if entry.header else {"problem": entry.problem})
        backups.append(item)
    return {"directory": str(directory), "backups": backups}


def cmd_delete(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    before = _cutoff(args)
    if before is None or (args.before and args.keep_days is not None):
        raise UsageError("give exactly one of --before TIME and --keep-days N")
    deleted = _prune(_backup_dir(args), before, args.dry_run)
    return {"dry_run": args.dry_run, "before": before.isoformat(timespec="seconds"),
            ("would_delete" if args.dry_run else "deleted"): deleted}


def _selector(terms: list[str]) -> Callable[[int, Any], bool]:
    """The `--filter` terms (pyhsm/cli/select.py's syntax) as a predicate on (handle, key)."""
    from pyhsm.cli import select

    flt = select.parse(terms)
    if flt.shown:
        raise UsageError(f"key replicate filters on stored attributes only, not {', '.join(flt.shown)}")
    return lambda handle, key: (flt.reference is None or handle == flt.reference) and key.matches(flt.template)


def cmd_replicate(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from pyhsm.engine.replication import replicate_keys

    select = _selector(args.filter)
    pin = pins.resolve(args.pin, args.pin_file, "PYHSM_PIN", "PIN")
    if args.destination_pin is None and args.destination_pin_file is None and "PYHSM_DESTINATION_PIN" not in os.environ:
        destination_pin = pin  # a restored token keeps its users' PINs
    else:
        destination_pin = pins.resolve(args.destination_pin, args.destination_pin_file, "PYHSM_DESTINATION_PIN",
                                       "destination PIN")
    with _library() as eng:
        done = replicate_keys(eng, _slot_of(eng, args.source), _slot_of(eng, args.destination), pin, destination_pin,
                              select, allow_many=args.all)
    keys = [{"key-reference": key_reference(r.destination_handle), "attributes": attributes.render(r.attrs),
             "source-key-reference": key_reference(r.source_handle), "replicated": r.copied} for r in done]
    copied = sum(r.copied for r in done)
    return {"message": f"Replicated {copied} key(s); {len(done) - copied} already present on the destination",
            "keys": keys}


# ---- wiring ------------------------------------------------------------------------------------------------
def _table(data: dict[str, Any]) -> None:
    rows = [[Path(b["file"]).name, b.get("created", ""), b.get("lineage", ""), b.get("source", {}).get("label", ""),
             str(b.get("fips_mode", "")), str(b["size"]), b.get("problem", "")] for b in data["backups"]]
    output.print_table(f"Backups in {data['directory']}",
                       ["File", "Created", "Lineage", "Token", "FIPS", "Bytes", "Problem"], rows)


def _failing_clearly(handler: Handler) -> Handler:
    """Backup and replication refusals are operation failures with their own message (exit status 1)."""
    from pyhsm.engine.replication import ReplicationError

    def run(ctx: Context, args: argparse.Namespace) -> Any:
        try:
            return handler(ctx, args)
        except (BackupError, ReplicationError) as exc:
            raise CliError(str(exc)) from None

    return run


def _pin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--so-pin", help="the token's SO PIN (visible in ps: prefer --so-pin-file)")
    parser.add_argument("--so-pin-file", metavar="FILE", help="read the SO PIN from the first line of FILE")


def _dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", metavar="DIR",
                        help="backup directory (default $PYHSM_BACKUP_DIR, the config's backup_dir, else "
                             "backups/ in the token store)")


def add_parser(sub: SubParsers) -> None:
    backup = group(sub, "backup", "back up, restore and prune whole tokens")

    create = command(backup, "create", "write one authenticated, encrypted file holding the whole token",
                     _failing_clearly(cmd_create),
                     description="Back up everything the token (--token LABEL) holds, consistently, while clients "
                                 "keep using it. Needs the SO PIN; restoring needs the same SO PIN.")
    create.add_argument("--out", metavar="FILE", help="write this file (default: a new file in the backup dir)")
    create.add_argument("--keep-days", type=int, metavar="N",
                        help="then delete backups older than N days (never the newest of a lineage)")
    _dir_option(create)
    _pin_options(create)

    restore = command(backup, "restore", "create a new token from a backup (same lineage, users and keys)",
                      _failing_clearly(cmd_restore),
                      description="Verify the whole file, then install it as a new token labelled LABEL. Users "
                                  "log in with their old PINs; keys work at once.")
    restore.add_argument("file", metavar="FILE", help="the backup file")
    restore.add_argument("--label", required=True, help="label of the new token (at most 32 bytes)")
    fips = restore.add_mutually_exclusive_group()
    fips.add_argument("--fips", dest="fips", action="store_const", const=True, default=None,
                      help="the new token must be in FIPS mode (refuse a non-FIPS backup)")
    fips.add_argument("--no-fips", dest="fips", action="store_const", const=False,
                      help="the new token must not be in FIPS mode (refuse a FIPS-mode backup)")
    _pin_options(restore)

    lst = command(backup, "list", "list the backups in the backup directory (headers, not verified)",
                  _failing_clearly(cmd_list))
    lst.set_defaults(table=_table)
    _dir_option(lst)

    delete = command(backup, "delete", "delete old backups, never the newest of a lineage",
                     _failing_clearly(cmd_delete))
    when = delete.add_mutually_exclusive_group(required=True)
    when.add_argument("--before", metavar="TIME", help="delete backups created before TIME (ISO 8601, UTC if no "
                                                        "zone)")
    when.add_argument("--keep-days", type=int, metavar="N", help="delete backups older than N days")
    delete.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    _dir_option(delete)


def add_replicate_parser(key: SubParsers) -> None:
    """`key replicate`, added to the `key` group (pyhsm/cli/keys.py)."""
    replicate = command(
        key, "replicate", "copy keys to another token of the same lineage (attributes and all)",
        _failing_clearly(cmd_replicate),
        description="Copy keys, sealed as they are, from one token to another token restored from the same backup "
                    "lineage. The user's PIN opens both tokens unless --destination-pin* says otherwise.")
    add_filter(replicate, what="the key(s) to replicate")
    replicate.add_argument("--source", required=True, metavar="LABEL", help="the token holding the key")
    replicate.add_argument("--destination", required=True, metavar="LABEL", help="the token to copy it to")
    replicate.add_argument("--all", action="store_true", help="replicate every matching key (default: exactly one)")
    replicate.add_argument("--pin", help="the user PIN (visible in ps: prefer --pin-file or $PYHSM_PIN)")
    replicate.add_argument("--pin-file", metavar="FILE", help="read the user PIN from the first line of FILE")
    replicate.add_argument("--destination-pin", help="the user PIN on the destination (default: the same)")
    replicate.add_argument("--destination-pin-file", metavar="FILE", help="read the destination PIN from FILE")

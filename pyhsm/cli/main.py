"""Entry point of the `pyhsm` command (console script `pyhsm = pyhsm.cli.main:main`)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import pyhsm
from pyhsm.cli import output
from pyhsm.cli.errors import UsageError, describe
from pyhsm.cli.pins import PinError
from pyhsm.errors import CKRError

MODULE_NAME = "libpyhsm.so"


class ModuleMissing(Exception):
    pass


def module_path() -> Path:
    """The libpyhsm.so inside the installed pyhsm package: the file hosts load."""
    path = Path(pyhsm.__file__).resolve().parent / MODULE_NAME
    if not path.is_file():
        raise ModuleMissing(f"{path} does not exist: build and install pyhsm with `pip install .`")
    return path


def cmd_module_path(args: argparse.Namespace) -> int:
    print(module_path())
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from pyhsm.config import store_dir

    try:
        module: str | None = str(module_path())
    except ModuleMissing:
        module = None
    facts = {"version": pyhsm.__version__, "module": module, "store_dir": str(store_dir()),
             "python": sys.executable}
    if args.json:
        output.print_json(facts)
    else:
        for key, value in facts.items():
            print(f"{key + ':':11} {value if value is not None else '(not built)'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from pyhsm.cli import backup, integrations, token

    parser = argparse.ArgumentParser(
        prog="pyhsm", description="Manage pyhsm, a software HSM exposed as the PKCS#11 module libpyhsm.so.",
        epilog="The token store is $PYHSM_STORE_DIR, else the configuration file's, else ~/.local/share/pyhsm.")
    parser.add_argument("--version", action="version", version=f"pyhsm {pyhsm.__version__}")
    parser.add_argument("--store-dir", metavar="DIR", help="token store directory (sets $PYHSM_STORE_DIR)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    mp = sub.add_parser("module-path", help="print the absolute path of libpyhsm.so, for --module / library=")
    mp.set_defaults(func=cmd_module_path)

    info = sub.add_parser("info", help="show the version, module path and token store directory")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    token.add_parser(sub)
    integrations.add_parser(sub)
    backup.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.store_dir:
        os.environ["PYHSM_STORE_DIR"] = str(Path(args.store_dir).expanduser().resolve())
    try:
        return int(args.func(args))
    except CKRError as exc:
        name, meaning = describe(exc.rv)
        detail = str(exc)
        extra = f" ({detail})" if detail and detail != name and detail != meaning else ""
        output.error(f"{name}: {meaning}{extra}")
        return 1
    except (UsageError, PinError) as exc:
        output.error(str(exc))
        return 2
    except ModuleMissing as exc:
        output.error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 -- never a traceback for the user, unless asked for
        if os.environ.get("PYHSM_DEBUG"):
            traceback.print_exc()
        output.error(f"internal error: {type(exc).__name__}: {exc} (set PYHSM_DEBUG=1 for the traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())

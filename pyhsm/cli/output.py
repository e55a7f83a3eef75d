"""Printing: the cloudhsm-cli JSON envelope for scripts (the default), rich tables for people.

Every command hands its result to `emit()`. `--format json` (default) prints `{"error_code": 0, "data": ...}`
exactly as cloudhsm-cli does; `--format table` renders the same data for a person. Failures print
`{"error_code": 1, "data": "<message>"}` (JSON) or `pyhsm: <message>` on stderr (table).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

FORMATS = ("json", "table")


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def envelope(data: Any, error_code: int = 0) -> dict[str, Any]:
    return {"error_code": error_code, "data": data}


def emit(data: Any, fmt: str = "json") -> None:
    """One command's successful result."""
    if fmt == "json":
        print_json(envelope(data))
    else:
        render(data)


def fail(message: str, fmt: str = "json") -> None:
    """One command's failure (the caller chooses the exit status)."""
    if fmt == "json":
        print_json(envelope(message, 1))
    else:
        error(message)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=False).print(table)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return "" if value is None else str(value)


def render(data: Any, title: str = "") -> None:
    """A readable form of any result: a list of flat records becomes a table, a record a two-column table."""
    if isinstance(data, str):
        print(data)
        return
    if isinstance(data, dict):
        lists = {k: v for k, v in data.items() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v)}
        scalars = {k: v for k, v in data.items() if k not in lists}
        if scalars:
            print_table(title, ["Field", "Value"],
                        [[k, _cell(v)] for k, v in _flatten(scalars)])
        for name, records in lists.items():
            render_records(name, records)
        return
    if isinstance(data, list) and all(isinstance(i, dict) for i in data):
        render_records(title, data)
        return
    print(_cell(data))


def _flatten(record: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in record.items():
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


WIDE = 6  # records with more fields than this print one Field/Value table each


def render_records(title: str, records: list[dict[str, Any]]) -> None:
    rows = [dict(_flatten(r)) for r in records]
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    if len(columns) <= WIDE:
        print_table(title, columns, [[_cell(row.get(c)) for c in columns] for row in rows])
        return
    for number, row in enumerate(rows, 1):
        print_table(f"{title} ({number}/{len(rows)})", ["Field", "Value"], [[k, _cell(v)] for k, v in row.items()])


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Any]:
    """A progress bar (or spinner when total is None) on stderr while long work runs; silent unless stderr is a
    terminal, so scripts reading stdout only ever see the JSON."""
    if not sys.stderr.isatty():
        yield _NoProgress()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()] if total is not None else [SpinnerColumn(), TextColumn("{task.description}"),
                                                               TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield _Progress(bar, task)


class _NoProgress:
    def advance(self, steps: int = 1) -> None:
        pass


class _Progress(_NoProgress):
    def __init__(self, bar: Any, task: Any) -> None:
        self.bar, self.task = bar, task

    def advance(self, steps: int = 1) -> None:
        self.bar.advance(self.task, steps)


def info(message: str) -> None:
    print(message)


def error(message: str) -> None:
    print(f"pyhsm: {message}", file=sys.stderr)

"""Retention: `backup delete --before/--keep-days` and `backup create --keep-days` delete old backups but never the
newest backup of a lineage, and never a file that is not a readable backup; --dry-run deletes nothing."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backup_helpers import create_backup, ok
from p11_helpers import SO_PIN, init_token, pyhsm_cli

TOMORROW = (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> tuple[Path, dict[str, list[Path]]]:  # type: ignore[no-untyped-def]
    """Three backups of one token and two of another (two lineages), oldest first."""
    directory = tmp_path_factory.mktemp("originals")
    made: dict[str, list[Path]] = {}
    for label, count in ((f"a-{uuid.uuid4().hex[:6]}", 3), (f"b-{uuid.uuid4().hex[:6]}", 2)):
        init_token(label)
        made[label] = [create_backup(label, directory) for _ in range(count)]
    return directory, made


@pytest.fixture
def backups(originals, tmp_path) -> tuple[Path, dict[str, list[Path]]]:  # type: ignore[no-untyped-def]
    """A copy of the originals for one test to prune."""
    directory, made = originals
    copy = Path(shutil.copytree(directory, tmp_path / "backups"))
    return copy, {label: [copy / p.name for p in paths] for label, paths in made.items()}


def _files(directory: Path) -> set[Path]:
    return set(directory.glob("*.pyhsm-backup"))


def test_delete_before_keeps_the_newest_backup_of_each_lineage(backups) -> None:
    directory, made = backups
    deleted = ok("backup", "delete", "--before", TOMORROW, "--dir", str(directory))["deleted"]
    assert {Path(d["file"]) for d in deleted} == {p for paths in made.values() for p in paths[:-1]}
    assert _files(directory) == {paths[-1] for paths in made.values()}
    assert ok("backup", "delete", "--before", TOMORROW, "--dir", str(directory))["deleted"] == []


def test_dry_run_deletes_nothing(backups) -> None:
    directory, made = backups
    before = _files(directory)
    would = ok("backup", "delete", "--before", TOMORROW, "--dry-run", "--dir", str(directory))["would_delete"]
    assert len(would) == 3
    assert _files(directory) == before


def test_nothing_newer_than_the_cutoff_is_deleted(backups) -> None:
    directory, _ = backups
    before = _files(directory)
    assert ok("backup", "delete", "--keep-days", "1", "--dir", str(directory))["deleted"] == []
    assert ok("backup", "delete", "--before", "2000-01-01", "--dir", str(directory))["deleted"] == []
    assert _files(directory) == before


def test_create_with_keep_days_prunes_after_backing_up(backups) -> None:
    directory, made = backups
    label = next(iter(made))
    result = ok("backup", "create", "--token", label, "--dir", str(directory), "--so-pin", SO_PIN, "--keep-days", "0")
    assert len(result["deleted"]) == 4  # 3 + 1 older backups; the new one and the other lineage's newest stay
    assert _files(directory) == {Path(result["file"]), made[list(made)[1]][-1]}


def test_unreadable_files_are_listed_and_never_deleted(backups) -> None:
    directory, _ = backups
    junk = directory / "junk.pyhsm-backup"
    junk.write_bytes(b"not a backup")
    listed = ok("backup", "list", "--dir", str(directory))["backups"]
    assert [b["problem"] for b in listed if b["file"] == str(junk)] == [f"{junk} is not a pyhsm backup file"]
    ok("backup", "delete", "--before", TOMORROW, "--dir", str(directory))
    assert junk.exists()


def test_delete_refuses_a_time_that_is_not_iso_8601(tmp_path) -> None:
    result = pyhsm_cli("backup", "delete", "--before", "yesterday", "--dir", str(tmp_path))
    assert result.returncode == 2 and "ISO 8601" in result.stderr

"""The audit log: what is recorded, that no secret is, tamper detection, concurrent appenders, the CLI."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pkcs11
import pytest
from p11_helpers import SO_PIN, STORE_DIR, USER_PIN, init_token, pyhsm_cli
from pkcs11 import Attribute, KeyType
from users_helpers import build_users_host, create_users, manage, ok, run_c_host

ALICE_PASSWORD = "alice-secret-pw"
KEY_VALUE = bytes.fromhex("00112233445566778899aabbccddeeff")


def log_path(label: str) -> Path:
    listed = json.loads(pyhsm_cli("token", "list", "--json").stdout)
    slot = next(t["slot"] for t in listed if t["label"] == label)
    return Path(STORE_DIR) / f"token-{slot}.audit.jsonl"


def records(label: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in log_path(label).read_text().splitlines()]


@pytest.fixture(scope="module")
def audited(lib) -> str:  # type: ignore[no-untyped-def]
    """A token with a history: users created, failed and good logins, keys made, shared, wrapped, destroyed."""
    label = f"aud-{uuid.uuid4().hex[:8]}"
    init_token(label)
    create_users(label, SO_PIN, ("alice", ALICE_PASSWORD), ("bob", "bob-password"))
    token = lib.get_token(token_label=label)
    with pytest.raises(pkcs11.exceptions.PinIncorrect):
        token.open(user_pin="alice:wrong-password-guess")
    with token.open(rw=True, user_pin=f"alice:{ALICE_PASSWORD}") as s:
        wrapper = s.generate_key(KeyType.AES, 256, store=True, label="wrapper")
        plain = s.create_object({Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                 Attribute.VALUE: KEY_VALUE, Attribute.TOKEN: True, Attribute.EXTRACTABLE: True,
                                 Attribute.SENSITIVE: False, Attribute.LABEL: "imported"})
        wrapper.wrap_key(plain, mechanism=pkcs11.Mechanism.AES_KEY_WRAP_PAD)
        plain[Attribute.LABEL] = "renamed"
    ok(manage(label, f"alice:{ALICE_PASSWORD}", ("share_key", {"label": "wrapper"}, "bob"),
              ("destroy_object", {"label": "renamed"})))
    return label


def test_every_kind_of_event_is_recorded_with_who_and_the_outcome(audited: str) -> None:
    events = [(r["event"], r["user"], r["result"]) for r in records(audited)]
    for expected in [("token.init", "admin", "ok"), ("login", "admin", "ok"), ("user.init-pin", "admin", "ok"),
                     ("user.create", "admin", "ok"), ("login", "alice", "CKR_PIN_INCORRECT"),
                     ("login", "alice", "ok"), ("key.generate", "alice", "ok"), ("object.create", "alice", "ok"),
                     ("key.wrap", "alice", "ok"), ("object.set-attribute", "alice", "ok"),
                     ("key.share", "alice", "ok"), ("object.destroy", "alice", "ok"), ("logout", "alice", "ok")]:
        assert expected in events, expected
    share = next(r for r in records(audited) if r["event"] == "key.share")
    assert share["role"] == "crypto-user" and share["detail"]["user"] == "bob" and share["detail"]["label"] == "wrapper"
    assert all(isinstance(r["pid"], int) and r["time"].endswith("Z") for r in records(audited))


def test_no_secret_ever_reaches_the_log(audited: str) -> None:
    text = log_path(audited).read_text()
    for secret in (ALICE_PASSWORD, "wrong-password-guess", SO_PIN, USER_PIN, "bob-password", KEY_VALUE.hex(),
                   KEY_VALUE.hex().upper()):
        assert secret not in text


def test_verify_accepts_the_untouched_log(audited: str) -> None:
    result = pyhsm_cli("audit", "verify", "--token", audited)
    assert result.returncode == 0 and "intact" in result.stdout, result.stderr


def _tampered(label: str, change) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    path = log_path(label)
    original = path.read_text()
    lines = original.splitlines(keepends=True)
    path.write_text("".join(change(lines)))
    try:
        return pyhsm_cli("audit", "verify", "--token", label, "--json")
    finally:
        path.write_text(original)


def _edit(lines: list[str]) -> list[str]:
    record = json.loads(lines[4])
    record["user"] = "mallory"
    return [*lines[:4], json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n", *lines[5:]]


@pytest.mark.parametrize("change", [
    _edit,
    lambda lines: lines[:3] + lines[4:],  # a record deleted
    lambda lines: [*lines[:3], lines[4], lines[3], *lines[5:]],  # two records swapped
    lambda lines: lines[:-2],  # the tail truncated
    lambda lines: [],  # the whole log emptied
], ids=["edit", "delete", "reorder", "truncate", "empty"])
def test_verify_detects_tampering(audited: str, change) -> None:  # type: ignore[no-untyped-def]
    result = _tampered(audited, change)
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert not report["ok"] and report["problems"]


def test_concurrent_processes_keep_one_linear_chain(lib) -> None:  # type: ignore[no-untyped-def]
    label = f"conc-{uuid.uuid4().hex[:8]}"
    init_token(label)
    script = ("import sys, pkcs11\n"
              "t = pkcs11.lib(sys.argv[1]).get_token(token_label=sys.argv[2])\n"
              "for i in range(8):\n"
              "    with t.open(rw=True, user_pin=sys.argv[3]) as s:\n"
              "        s.generate_key(pkcs11.KeyType.AES, 128, store=True, label=f'p{i}')\n")
    from p11_helpers import module_path
    workers = [subprocess.Popen([sys.executable, "-c", script, module_path(), label, USER_PIN]) for _ in range(4)]
    assert all(w.wait(timeout=300) == 0 for w in workers)
    chain = records(label)
    assert [r["seq"] for r in chain] == list(range(1, len(chain) + 1))
    assert sum(r["event"] == "key.generate" for r in chain) == 32 and len({r["pid"] for r in chain}) >= 5
    assert pyhsm_cli("audit", "verify", "--token", label).returncode == 0


def test_tail_prints_the_last_records_and_follows_new_ones(audited: str, lib) -> None:  # type: ignore[no-untyped-def]
    last = pyhsm_cli("audit", "tail", "--token", audited, "-n", "2", "--json")
    assert last.returncode == 0 and [json.loads(x)["seq"] for x in last.stdout.splitlines()] == [
        r["seq"] for r in records(audited)[-2:]]
    follower = subprocess.Popen([sys.executable, "-m", "pyhsm.cli.main", "audit", "tail", "--token", audited,
                                 "-n", "1", "-f", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["seq"] == records(audited)[-1]["seq"]  # it is following now
        with pytest.raises(pkcs11.exceptions.PinIncorrect):  # a new event while it follows
            lib.get_token(token_label=audited).open(user_pin="bob:not-bobs-password")
        followed = json.loads(follower.stdout.readline())
        assert (followed["event"], followed["user"], followed["result"]) == ("login", "bob", "CKR_PIN_INCORRECT")
    finally:
        follower.terminate()
        follower.wait(timeout=30)


def test_an_unwritable_log_is_a_device_error_not_a_lost_record(lib) -> None:  # type: ignore[no-untyped-def]
    label = f"ro-{uuid.uuid4().hex[:8]}"
    init_token(label)
    path = log_path(label)
    saved = path.read_bytes()
    path.unlink()
    path.mkdir()  # cannot be opened for appending, even by root
    try:
        with pytest.raises(pkcs11.exceptions.DeviceError):
            lib.get_token(token_label=label).open(user_pin=USER_PIN)
    finally:
        path.rmdir()
        path.write_bytes(saved)
        path.chmod(0o600)  # as the module makes it: the whole store is checked for 0600 files later


# ---- session objects: their events are held and written in batches (pyhsm/engine/audit_queue.py) ----------------

def _events(label: str, name: str) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in records(label) if r["event"] == name]


def test_session_object_events_are_written_when_their_session_closes(lib) -> None:  # type: ignore[no-untyped-def]
    label = f"held-{uuid.uuid4().hex[:8]}"
    init_token(label)
    token = lib.get_token(token_label=label)
    with token.open(rw=True, user_pin=USER_PIN):  # keeps the login while the second session comes and goes
        scratch = token.open(rw=True)
        key = scratch.generate_key(KeyType.AES, 256, label="scratch")
        key[Attribute.LABEL] = "scratch-renamed"
        key.destroy()
        scratch.close()
        assert [(r["object"], r["detail"]["token"], r["user"]) for r in _events(label, "key.generate")] == [
            (f"0x{key.handle:x}", False, "default")]
        assert len(_events(label, "object.set-attribute")) == len(_events(label, "object.destroy")) == 1
    assert pyhsm_cli("audit", "verify", "--token", label).returncode == 0


def test_held_events_come_before_the_next_event_written_at_once(lib) -> None:  # type: ignore[no-untyped-def]
    label = f"order-{uuid.uuid4().hex[:8]}"
    init_token(label)
    with lib.get_token(token_label=label).open(rw=True, user_pin=USER_PIN) as s:
        s.generate_key(KeyType.AES, 128, label="session-first")
        s.generate_key(KeyType.AES, 128, store=True, label="token-second")
        generated = [r["detail"]["label"] for r in _events(label, "key.generate")]
        assert generated == ["session-first", "token-second"]  # the token key's record wrote the held one first
    chain = records(label)
    assert [r["seq"] for r in chain] == list(range(1, len(chain) + 1))


def test_held_events_reach_the_log_while_the_process_idles(lib) -> None:  # type: ignore[no-untyped-def]
    label = f"idle-{uuid.uuid4().hex[:8]}"
    init_token(label)
    with lib.get_token(token_label=label).open(rw=True, user_pin=USER_PIN) as s:
        s.generate_key(KeyType.AES, 128, label="idle")
        deadline = time.monotonic() + 60  # written by the queue's timer within a second; generous for a busy CI
        while not _events(label, "key.generate") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r["detail"]["label"] for r in _events(label, "key.generate")] == ["idle"]


def test_a_c_host_session_objects_are_audited_before_its_logout(tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    label = f"chost-{uuid.uuid4().hex[:8]}"
    init_token(label)
    run_c_host(build_users_host(tmp_path_factory), label, SO_PIN, "admin", "admin-scratch", "-")
    chain = records(label)
    made = next(r for r in chain if r["event"] == "object.create" and r["detail"]["label"] == "admin-scratch")
    gone = next(r for r in chain if r["event"] == "object.destroy" and r["object"] == made["object"])
    logout = next(r for r in chain if r["event"] == "logout" and r["pid"] == made["pid"])
    assert made["detail"]["token"] is False and made["user"] == gone["user"] == "admin"
    assert made["seq"] < gone["seq"] < logout["seq"]
    assert pyhsm_cli("audit", "verify", "--token", label).returncode == 0


def test_a_truncated_batch_is_detected_by_the_head_recorded_after_it(lib) -> None:  # type: ignore[no-untyped-def]
    label = f"batch-{uuid.uuid4().hex[:8]}"
    init_token(label)
    token = lib.get_token(token_label=label)
    with token.open(rw=True, user_pin=USER_PIN):
        scratch = token.open(rw=True)
        for i in range(5):
            scratch.generate_key(KeyType.AES, 128, label=f"batch-{i}")
        scratch.close()  # one batch of five records, and the head after it
    result = _tampered(label, lambda lines: lines[:-3])  # the logout and the batch's last two records
    assert result.returncode == 3 and "head recorded in the token store" in result.stdout, result.stdout


def test_a_python_host_that_exits_with_events_held_writes_them(lib) -> None:  # type: ignore[no-untyped-def]
    label = f"exit-{uuid.uuid4().hex[:8]}"
    init_token(label)
    script = ("import sys, pkcs11\n"
              "s = pkcs11.lib(sys.argv[1]).get_token(token_label=sys.argv[2]).open(rw=True, user_pin=sys.argv[3])\n"
              "s.generate_key(pkcs11.KeyType.AES, 128, label='left-open')\n")  # exits with the session open
    from p11_helpers import module_path
    subprocess.run([sys.executable, "-c", script, module_path(), label, USER_PIN], check=True, timeout=120)
    assert [r["detail"]["label"] for r in _events(label, "key.generate")] == ["left-open"]


def test_a_child_forked_during_an_append_does_not_keep_the_log_locked(tmp_path: Path) -> None:
    from pyhsm.audit import AuditLog

    log = AuditLog(tmp_path / "fork.audit.jsonl")
    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    children = []

    def fork_while_locked(seq: int, digest: str) -> None:  # runs under the append's flock
        pid = os.fork()
        if pid == 0:  # the child outlives the append, as a forked worker would
            os.write(ready_w, b"r")  # os.fork() has returned here: the after-fork handlers have run
            os.read(release_r, 1)
            os._exit(0)
        children.append(pid)

    log.append({"event": "fork-test"}, fork_while_locked)
    assert os.read(ready_r, 1) == b"r"
    probe = os.open(log.path, os.O_RDONLY)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if the child still held the lock
    finally:
        os.close(probe)
        os.write(release_w, b"x")
        os.waitpid(children[0], 0)

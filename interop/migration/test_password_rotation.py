"""Flow 4: rotating crypto-user passwords without downtime. Two crypto users share the signing key; a service
(rotation_client.c, through the module) signs in a loop as user 1; user 2's password changes, the service switches
to user 2, then user 1's password changes too. Not one signature fails, and the old passwords no longer log in.

The service re-reads its credentials file before each signature, as an application re-reads its configuration;
the test moves on only when the service's output shows the previous step took effect (no sleeping, no timing).
"""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


class Service:
    """The signing client, its output read line by line on a thread so that it never blocks on a full pipe."""

    def __init__(self, binary: Path, hsm: Any, credentials: Path, stop: Path) -> None:
        self.credentials, self.stop = credentials, stop
        self.process = subprocess.Popen([str(binary), hsm.module, hsm.token.label, "signer", str(credentials),
                                         str(stop)], env=hsm.token.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("")  # end of output

    def wait_for(self, wanted: Callable[[str], bool], what: str) -> None:
        while True:
            try:
                line = self.lines.get(timeout=120)  # a safety net against a hung client, not a measurement
            except queue.Empty:
                output = "\n".join(self.seen)
                raise AssertionError(f"the service never showed {what}; output so far:\n{output}") from None
            self.seen.append(line)
            assert line and not line.startswith("FAIL"), "\n".join(self.seen)
            if wanted(line):
                return

    def use(self, credentials: str) -> None:
        staged = self.credentials.with_suffix(".new")
        staged.write_text(credentials + "\n")
        staged.chmod(0o600)
        staged.replace(self.credentials)  # atomic: the service reads the old or the new file, never half

    def signs_as(self, user: str, count: int = 3) -> None:
        for _ in range(count):
            self.wait_for(lambda line: line.startswith("signed ") and line.endswith(f" as {user}"),
                          f"a signature as {user}")

    def finish(self) -> str:
        self.stop.touch()
        self.process.wait(timeout=120)
        while (line := self.lines.get(timeout=120)) != "":
            self.seen.append(line)
        return "\n".join(self.seen)


@pytest.fixture
def service(interop, make_hsm, tmp_path) -> Iterator[tuple[Any, Service]]:  # type: ignore[no-untyped-def]
    hsm = make_hsm("rotation", tmp_path)
    for user in ("app1", "app2"):
        hsm.admin("user", "create", "--username", user, "--role", "crypto-user", new_password=f"{user}-password-1")
    app1 = {"username": "app1", "password": "app1-password-1"}
    hsm.interop.cli_data(hsm.token, "key", "generate-asymmetric-pair", "ec", "--curve", "secp256r1",
                         "--public-label", "signer", "--private-label", "signer", **app1)
    hsm.interop.cli_data(hsm.token, "key", "share", "--filter", "attr.label=signer", "attr.class=private-key",
                         "--username", "app2", **app1)
    binary = interop.build_c_host([HERE / "rotation_client.c"], tmp_path)
    client = Service(binary, hsm, tmp_path / "credentials", tmp_path / "stop")
    client.use("app1:app1-password-1")
    try:
        yield hsm, client
    finally:
        if client.process.poll() is None:
            client.process.kill()


def test_passwords_rotate_while_the_service_signs_and_no_operation_fails(service: tuple[Any, Service]) -> None:
    hsm, client = service
    client.wait_for(lambda line: line == "login app1", "the login as app1")
    client.signs_as("app1")
    hsm.admin("user", "change-password", "--username", "app2", new_password="app2-password-2")
    client.signs_as("app1")  # user 1's login is untouched by user 2's new password
    client.use("app2:app2-password-2")
    client.wait_for(lambda line: line == "login app2", "the switch to app2")
    client.signs_as("app2")
    hsm.admin("user", "change-password", "--username", "app1", new_password="app1-password-2")
    client.signs_as("app2")
    output = client.finish()
    assert client.process.returncode == 0, output
    assert output.splitlines()[-1].endswith(" failed 0"), output
    for user, old in (("app1", "app1-password-1"), ("app2", "app2-password-1")):
        refused = hsm.interop.pyhsm_cli("--token", hsm.token.label, "login", "--username", user, env=dict(
            hsm.token.env, PYHSM_PASSWORD=old, PYHSM_ROLE="crypto-user"))
        assert refused.returncode != 0 and "CKR_PIN_INCORRECT" in refused.stdout + refused.stderr, refused

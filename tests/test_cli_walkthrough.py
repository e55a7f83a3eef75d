"""The README's CLI walkthrough, run word for word: its shell block is extracted from README.md and executed with
bash (installed `pyhsm`, OpenSC's pkcs11-tool, openssl); then its outcome is checked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def walkthrough() -> str:
    match = re.search(r"<!-- walkthrough -->\n```sh\n(.*?)\n```", README.read_text(), re.S)
    assert match, "README.md has no walkthrough block"
    return match.group(1)


@pytest.mark.skipif(shutil.which("pkcs11-tool") is None, reason="pkcs11-tool (opensc) missing")
def test_readme_walkthrough_runs_and_the_audit_log_shows_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYHSM_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # the installed `pyhsm`
    env["HOME"] = str(tmp_path)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", walkthrough()], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    out = done.stdout
    assert "Verified OK" in out  # openssl accepted bob's signature made with alice's key
    tail = out[out.index("token.init"):]
    for event in ("user.create alice", "user.create bob", "key.generate", "key.share", "bob(crypto-user)"):
        assert event in tail, event
    assert re.search(r"bob\(crypto-user\) .* login -> ok", tail)
    assert "audit log intact" in out
    for secret in ("alice-secret-1", "bob-secret-12", "admin-secret-1"):
        assert secret not in (tmp_path / "walkthrough-store" / "token-0.audit.jsonl").read_text()

"""The benchmark (bench/run.sh) runs: a quick pass through every code path writes its table and plot.

No timings are asserted: benchmarks are never part of the suite's pass/fail (issue 8); this only checks that the
C driver drives both modules (pyhsm and SoftHSMv2) without an error and that the report comes out.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_drives_both_modules_and_writes_its_report(tmp_path: Path) -> None:
    result = subprocess.run(["bash", str(ROOT / "bench" / "run.sh"), "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    table = (tmp_path / "latest.md").read_text()
    for operation in ("rsa2048_sign_pkcs", "ecdsa_p256_sign", "aes256_gcm_encrypt_4KiB", "find_label_among_100",
                      "keygen_aes256_token", "get_info"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {operation} |"))
        pyhsm, softhsm = row.split("|")[2:4]
        assert pyhsm.strip() and softhsm.strip(), row  # a figure for each module
    assert "| PEM file |" in table  # the NGINX section ran
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")

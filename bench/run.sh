#!/usr/bin/env bash
# The benchmark (README, "Performance"): pyhsm side by side with SoftHSMv2 and `openssl speed`.
#   bash bench/run.sh            full run, about 10 minutes on 2 cores -> bench/results/latest.md and latest.png
#   bash bench/run.sh --quick    a smoke run with tiny counts (what tests/test_bench_smoke.py runs)
# Uses the project's .venv (bash ci/install.sh makes it) plus the bench-only bench/requirements.txt (matplotlib).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/bench/requirements.txt"
exec "$ROOT/.venv/bin/python" "$ROOT/bench/run.py" "$@"

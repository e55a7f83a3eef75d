#!/usr/bin/env bash
# The test command (README): installs everything (ci/install.sh), then runs pytest over tests/ and interop/.
# Extra arguments go to pytest, e.g. `bash ci/test.sh -k pkcs11_tool -x`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash ci/install.sh

echo "==> pytest tests/ interop/"
# Run from a directory outside the source tree so `import pyhsm` finds the installed package (the one that holds
# libpyhsm.so), never the sources; the test paths are absolute.
set +e
(cd "$ROOT/build" && "$ROOT/.venv/bin/python" -P -m pytest -p no:cacheprovider --rootdir "$ROOT" \
    "$ROOT/tests" "$ROOT/interop" -ra "$@")
rc=$?
set -e
case $rc in
  0) echo "==> tests passed" ;;
  5) echo "!! pytest collected no tests: that is a failure here" >&2 ;;
  *) echo "!! tests failed (pytest exit status $rc)" >&2 ;;
esac
exit $rc

#!/usr/bin/env bash
# Fuzzing campaigns (README "Fuzzing"):
#   bash fuzz/run.sh c-abi SECONDS [libFuzzer options...]    libFuzzer over libpyhsm.so's C ABI (c_abi_fuzzer.c)
#   bash fuzz/run.sh marshal SECONDS [libFuzzer options...]  atheris over pyhsm/pkcs11 marshalling (marshal_fuzzer.py)
# Each first replays its regression inputs (fuzz/corpus/<target>/regressions: inputs that once crashed; all must
# pass), then fuzzes for SECONDS starting from fuzz/corpus/<target>/seed. A finding is written as crash-* into
# $PYHSM_FUZZ_ARTIFACTS (default: the current directory) and fails the script; once fixed, add it to the
# regressions. PYHSM_FUZZ_CORPUS=DIR keeps the growing corpus between runs. The installed package is fuzzed
# (.venv, or PYHSM_FUZZ_PYTHON); the C ABI runs against a scratch token store in a temporary directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:?usage: fuzz/run.sh c-abi|marshal SECONDS [libFuzzer options]}"
SECONDS_TO_RUN="${2:?usage: fuzz/run.sh c-abi|marshal SECONDS [libFuzzer options]}"
shift 2
PYTHON="${PYHSM_FUZZ_PYTHON:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d /tmp/pyhsm-fuzz.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
CORPUS_DIR="$ROOT/fuzz/corpus/$TARGET"
COMMON=(-timeout=20 -rss_limit_mb=1024 -max_len=4096 -print_final_stats=1
        -artifact_prefix="${PYHSM_FUZZ_ARTIFACTS:-./}")

py() { (cd / && "$PYTHON" -P "$@"); }  # never import the source tree: the installed package is what hosts load

case "$TARGET" in
  c-abi)
    # The generated headers (PKCS#11 types, every CK* constant) and each mechanism's parameter layout.
    py -c "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1])
from p11_helpers import generated_header_path
generated_header_path(Path(sys.argv[2]))" "$ROOT/tests" "$WORK"
    py -c "from pyhsm.mechanisms import registry
known = {'NONE', 'BYTES', 'OAEP', 'PSS', 'GCM', 'CTR', 'ECDH1', 'ULONG', 'KEY_HANDLE', 'RSA_AES_WRAP', 'CCM', 'EDDSA',
         'HKDF'}
for ckm in sorted(registry.all_mechanisms()):
    kind = registry.lookup(ckm).param_kind.name
    print(f'{{0x{ckm:X}UL, SHAPE_{kind if kind in known else \"OTHER\"}}},')" >"$WORK/mechanisms.h"
    CLANG="${CLANG:-$(command -v clang-14 || command -v clang)}"
    "$CLANG" -g -O1 -Wall -Werror -fsanitize=fuzzer -I"$WORK" "$ROOT/fuzz/c_abi_fuzzer.c" -ldl -o "$WORK/fuzzer"
    export PYHSM_STORE_DIR="$WORK/store" PYHSM_FUZZ_TOKEN=fuzz PYHSM_FUZZ_PIN=fuzz-user-pin
    export PYHSM_FUZZ_SO_PIN=fuzz-so-pin
    PYHSM_FUZZ_MODULE="$(py -m pyhsm.cli.main module-path)"
    export PYHSM_FUZZ_MODULE
    mkdir -m 700 "$PYHSM_STORE_DIR"
    py -m pyhsm.cli.main token init --label fuzz --so-pin "$PYHSM_FUZZ_SO_PIN" --pin "$PYHSM_FUZZ_PIN" >/dev/null
    fuzzer=("$WORK/fuzzer")
    ;;
  marshal)
    fuzzer=("$PYTHON" -P "$ROOT/fuzz/marshal_fuzzer.py")
    ;;
  *) echo "unknown target $TARGET (c-abi or marshal)" >&2; exit 2 ;;
esac

shopt -s nullglob
regressions=("$CORPUS_DIR"/regressions/*)
if [ ${#regressions[@]} -gt 0 ]; then
  echo "==> $TARGET: replaying ${#regressions[@]} regression inputs"
  (cd / && "${fuzzer[@]}" "${regressions[@]}") >"$WORK/replay.log" 2>&1 || { tail -n 40 "$WORK/replay.log" >&2; exit 1; }
fi

echo "==> $TARGET: fuzzing for $SECONDS_TO_RUN s"
CORPUS="${PYHSM_FUZZ_CORPUS:-$WORK/corpus}"
mkdir -p "$CORPUS"
cp -n "$CORPUS_DIR"/seed/* "$CORPUS/" 2>/dev/null || true
"${fuzzer[@]}" -max_total_time="$SECONDS_TO_RUN" "${COMMON[@]}" "$@" "$CORPUS"

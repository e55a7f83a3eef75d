#!/usr/bin/env bash
# Installs what pyhsm's demo and tests need, idempotently, and builds the module:
#   1. Debian packages (only the missing ones; apt output goes to a log printed on failure)
#   2. the virtualenv .venv in the repository (python3 -m venv)
#   3. the Python packages (runtime + test) and `pip install .` (builds pyhsm/libpyhsm.so)
# Source it or run it; it prints one line per step. Environment knobs:
#   PYTHON=python3           the interpreter the venv is created from
#   PYHSM_SKIP_APT=1         do not touch Debian packages (a developer machine that has them)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
LOG_DIR="$ROOT/build/logs"
mkdir -p "$LOG_DIR"
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# Debian packages: the build (gcc, python3-dev, python3-venv, libssl-dev: the native data plane links libcrypto, and
# interop/oracle_tde computes its own AES), the runtime (libssl3), and the hosts the tests drive
# (opensc's pkcs11-tool, openssl, softhsm2 as a reference module, nginx + libp11's engine, Java 17, GnuTLS, p11-kit),
# clang with libFuzzer's runtime (fuzz/).
APT_PACKAGES=(
  gcc python3-dev python3-venv libssl3 libssl-dev openssl curl
  opensc softhsm2
  nginx libengine-pkcs11-openssl openjdk-17-jdk-headless gnutls-bin p11-kit strace
  clang-14 libclang-rt-14-dev
)
PIP_PACKAGES=(cffi cryptography rich pytest python-pkcs11 atheris)

step() { printf '==> %s\n' "$*"; }

run_logged() {  # run_logged LOGFILE CMD...: quiet unless it fails, then show the log's tail
  local log="$1"; shift
  if ! "$@" >>"$log" 2>&1; then
    echo "!! failed: $*  (last lines of $log:)" >&2
    tail -n 60 "$log" >&2
    return 1
  fi
}

missing_packages() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || echo "$pkg"
  done
}

install_apt() {
  if [ "${PYHSM_SKIP_APT:-}" = 1 ]; then step "Debian packages: skipped (PYHSM_SKIP_APT=1)"; return; fi
  if ! command -v dpkg-query >/dev/null; then step "Debian packages: not a Debian system, skipped"; return; fi
  local missing; missing="$(missing_packages | tr '\n' ' ')"
  if [ -z "${missing// /}" ]; then step "Debian packages: all present"; return; fi
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if sudo -n true 2>/dev/null; then sudo=(sudo -n); else
      echo "!! missing Debian packages: $missing-- install them as root (apt-get install $missing)" >&2
      return 1
    fi
  fi
  step "Debian packages: installing $missing(log: $LOG_DIR/apt.log)"
  : >"$LOG_DIR/apt.log"
  # Keep package scripts from starting services (nginx) on this machine while installing.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null && "${sudo[@]}" chmod 755 "$policy" \
      && added_policy=1
  fi
  local rc=0
  run_logged "$LOG_DIR/apt.log" "${sudo[@]}" apt-get update -q || rc=$?
  if [ $rc = 0 ]; then
    # shellcheck disable=SC2086
    run_logged "$LOG_DIR/apt.log" "${sudo[@]}" apt-get install -y -q --no-install-recommends \
      -o Dpkg::Use-Pty=0 $missing || rc=$?
  fi
  if [ $added_policy = 1 ]; then "${sudo[@]}" rm -f "$policy"; fi
  return $rc
}

install_venv() {
  local python="${PYTHON:-python3}"
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys, pip' >/dev/null 2>&1; then
    step "virtualenv: $VENV (present, $("$VENV/bin/python" -V 2>&1))"
  else
    step "virtualenv: creating $VENV with $(command -v "$python")"
    rm -rf "$VENV"
    run_logged "$LOG_DIR/venv.log" "$python" -m venv "$VENV"
  fi
}

install_python_packages() {
  step "pip: ${PIP_PACKAGES[*]} (log: $LOG_DIR/pip.log)"
  : >"$LOG_DIR/pip.log"
  run_logged "$LOG_DIR/pip.log" "$VENV/bin/python" -m pip install -q "${PIP_PACKAGES[@]}"
  step "build: pip install . (log: $LOG_DIR/build.log)"
  : >"$LOG_DIR/build.log"
  run_logged "$LOG_DIR/build.log" "$VENV/bin/python" -m pip install -v "$ROOT"
  # Ask the installed package, from outside the source tree, where its module is.
  local module
  if ! module="$(cd / && "$VENV/bin/pyhsm" module-path)"; then
    echo "!! the build did not install libpyhsm.so (see $LOG_DIR/build.log)" >&2
    return 1
  fi
  step "module: $module"
}

install_apt
install_venv
install_python_packages

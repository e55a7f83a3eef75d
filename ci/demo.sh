#!/usr/bin/env bash
# The Quick start demo: install and build pyhsm, initialise a token "demo" in the default token store, then with
# OpenSC's pkcs11-tool (a real PKCS#11 host loading libpyhsm.so) generate an RSA-2048 and an EC P-256 key pair,
# sign data with each, and verify every signature twice: with pkcs11-tool on the token, and with openssl using the
# public key read off the token. Re-runnable: the "demo" token is re-initialised each time (its keys are erased).
#   PYHSM_DEMO_LABEL (demo), PYHSM_DEMO_SO_PIN, PYHSM_DEMO_PIN   override the token label and PINs
#   PYHSM_STORE_DIR                                              use another token store than the default
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/ci/install.sh"

LABEL="${PYHSM_DEMO_LABEL:-demo}"
SO_PIN="${PYHSM_DEMO_SO_PIN:-demo-so-pin}"
PIN="${PYHSM_DEMO_PIN:-demo-user-pin}"
export PATH="$ROOT/.venv/bin:$PATH"
PYHSM=pyhsm
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pyhsm-demo.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

bold() { if [ -t 1 ]; then printf '\n\033[1m## %s\033[0m\n' "$*"; else printf '\n## %s\n' "$*"; fi; }
show() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }
fail() { echo "DEMO FAILED: $*" >&2; exit 1; }

bold "The module hosts load, and the token store"
echo "\$ pyhsm module-path"; MODULE="$("$PYHSM" module-path)"; echo "$MODULE"
show "$PYHSM" info
P11=(pkcs11-tool --module "$MODULE")

bold "Initialise token '$LABEL' (SO PIN and user PIN) with the pyhsm CLI"
show "$PYHSM" token init --label "$LABEL" --so-pin "$SO_PIN" --pin "$PIN" --reinit
show "$PYHSM" token list

bold "pkcs11-tool sees the module, the slot and the mechanisms"
show "${P11[@]}" --show-info
show "${P11[@]}" --list-token-slots
out="$(show "${P11[@]}" --token-label "$LABEL" --list-mechanisms)"
printf '%s\n' "$out" | sed -n '1,12p'; echo "  ... ($(grep -c '^  ' <<<"$out") mechanisms)"

TOK=("${P11[@]}" --token-label "$LABEL")
bold "Generate an RSA-2048 key pair (id 01) and an EC P-256 key pair (id 02) on the token"
show "${TOK[@]}" --login --pin "$PIN" --keypairgen --key-type rsa:2048 --id 01 --label demo-rsa
show "${TOK[@]}" --login --pin "$PIN" --keypairgen --key-type EC:prime256v1 --id 02 --label demo-ec
show "${TOK[@]}" --login --pin "$PIN" --list-objects

printf 'pyhsm demo: the data to sign, made at %s\n' "$(date -u +%FT%TZ)" > data.txt
bold "Sign data.txt ($(wc -c < data.txt) bytes) with each private key"
show "${TOK[@]}" --login --pin "$PIN" --sign --id 01 -m SHA256-RSA-PKCS -i data.txt -o rsa.sig
show "${TOK[@]}" --login --pin "$PIN" --sign --id 02 -m ECDSA-SHA256 --signature-format openssl \
  -i data.txt -o ec.sig
show ls -l rsa.sig ec.sig

bold "Verify each signature on the token with pkcs11-tool"
# pkcs11-tool exits 0 even for a bad signature: the message is what tells.
out="$(show "${TOK[@]}" --verify --id 01 -m SHA256-RSA-PKCS -i data.txt --signature-file rsa.sig 2>&1)"
echo "$out"; grep -q '^Signature is valid$' <<<"$out" || fail "pkcs11-tool did not verify the RSA signature"
out="$(show "${TOK[@]}" --verify --id 02 -m ECDSA-SHA256 --signature-format openssl -i data.txt \
  --signature-file ec.sig 2>&1)"
echo "$out"; grep -q '^Signature is valid$' <<<"$out" || fail "pkcs11-tool did not verify the EC signature"

bold "Verify each signature independently with openssl, using the public keys read off the token"
show "${TOK[@]}" --read-object --type pubkey --id 01 -o rsa-pub.der
show "${TOK[@]}" --read-object --type pubkey --id 02 -o ec-pub.der
out="$(show openssl pkey -pubin -inform DER -in rsa-pub.der -noout -text)"; grep -E '^\$|Public-Key' <<<"$out"
out="$(show openssl pkey -pubin -inform DER -in ec-pub.der -noout -text)"; grep -E '^\$|Public-Key|NIST CURVE' <<<"$out"
show openssl dgst -sha256 -verify rsa-pub.der -keyform DER -signature rsa.sig data.txt
show openssl dgst -sha256 -verify ec-pub.der -keyform DER -signature ec.sig data.txt

bold "A tampered message must fail verification"
echo "tampered" >> data.txt
if openssl dgst -sha256 -verify rsa-pub.der -keyform DER -signature rsa.sig data.txt; then
  fail "openssl accepted a signature over different data"
fi
echo "(openssl refused it, as it should)"

bold "Demo complete: token '$LABEL' holds an RSA-2048 and an EC P-256 key pair; all signatures verified."

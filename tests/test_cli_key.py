"""`pyhsm key ...`: generation, list with filters and pagination, set-attribute, delete, generate-file, import pem,
all through the installed console script, checking cloudhsm-cli's JSON shapes."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import Cli, cli_fixture  # noqa: F401  (fixture)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

KEY_REF = r"0x[0-9a-f]{16}"


def _aes(cli: Cli, label: str, *extra: str) -> dict:  # type: ignore[type-arg]
    return cli.ok("key", "generate-symmetric", "aes", "--label", label, "--key-length-bytes", "32", *extra)["key"]


def test_generate_symmetric_aes_returns_the_key_with_cloudhsm_defaults(cli: Cli) -> None:
    import re

    key = _aes(cli, "aes-1")
    assert re.fullmatch(KEY_REF, key["key-reference"])
    attrs = key["attributes"]
    assert attrs["key-type"] == "aes" and attrs["class"] == "secret-key" and attrs["label"] == "aes-1"
    assert attrs["key-length-bytes"] == 32 and re.fullmatch(r"0x[0-9a-f]{6}", attrs["check-value"])
    # cloudhsm-cli's defaults: token, private, sensitive, extractable; sign/verify on; encrypt/decrypt/wrap off.
    assert (attrs["token"], attrs["private"], attrs["sensitive"], attrs["extractable"]) == (True, True, True, True)
    assert (attrs["sign"], attrs["verify"], attrs["encrypt"], attrs["wrap"]) == (True, True, False, False)
    assert "value" not in attrs


def test_attributes_option_overrides_the_defaults(cli: Cli) -> None:
    attrs = _aes(cli, "aes-enc", "--attributes", "encrypt=true", "decrypt=true", "extractable=false")["attributes"]
    assert attrs["encrypt"] and attrs["decrypt"] and not attrs["extractable"]


def test_generic_secret_and_ec_and_rsa_pairs(cli: Cli) -> None:
    secret = cli.ok("key", "generate-symmetric", "generic-secret", "--label", "g", "--key-length-bytes", "48")
    assert secret["key"]["attributes"]["key-type"] == "generic-secret"
    pair = cli.ok("key", "generate-asymmetric-pair", "ec", "--curve", "secp384r1", "--public-label", "ec-pub",
                  "--private-label", "ec-priv")
    assert pair["public_key"]["attributes"]["curve"] == "secp384r1"
    assert pair["private_key"]["attributes"]["class"] == "private-key"
    rsa_pair = cli.ok("key", "generate-asymmetric-pair", "rsa", "--modulus-size-bits", "2048", "--public-label",
                      "rsa-pub", "--private-label", "rsa-priv")
    public = rsa_pair["public_key"]["attributes"]
    assert public["modulus-size-bits"] == 2048 and public["public-exponent"] == "0x010001"
    assert rsa_pair["private_key"]["attributes"]["modulus-size-bits"] == 2048


def test_invalid_key_length_is_a_usage_error_with_exit_status_2(cli: Cli) -> None:
    result = cli.run("key", "generate-symmetric", "aes", "--label", "x", "--key-length-bytes", "17")
    assert result.status == 2
    assert result.json == {"error_code": 1, "data": "aes keys are 16, 24, 32 bytes long"}


def test_list_is_brief_by_default_and_verbose_on_request(cli: Cli) -> None:
    _aes(cli, "listed")
    brief = cli.ok("key", "list")
    assert brief["matched_keys"] == [{"key-reference": brief["matched_keys"][0]["key-reference"],
                                      "attributes": {"label": "listed"}}]
    assert (brief["total_key_count"], brief["returned_key_count"]) == (1, 1) and "next_token" not in brief
    verbose = cli.ok("key", "list", "--verbose")
    assert verbose["matched_keys"][0]["attributes"]["key-type"] == "aes"


def test_filter_by_attributes_is_an_and_of_terms(cli: Cli) -> None:
    _aes(cli, "shared-label")
    cli.ok("key", "generate-symmetric", "generic-secret", "--label", "shared-label", "--key-length-bytes", "32")
    assert cli.ok("key", "list", "--filter", "attr.label=shared-label")["total_key_count"] == 2
    only = cli.ok("key", "list", "--filter", "attr.label=shared-label", "attr.key-type=aes", "--verbose")
    assert [k["attributes"]["key-type"] for k in only["matched_keys"]] == ["aes"]
    assert cli.ok("key", "list", "--filter", "attr.label=shared-label", "attr.encrypt=true")["total_key_count"] == 0


def test_filter_by_key_reference(cli: Cli) -> None:
    ref = _aes(cli, "by-ref")["key-reference"]
    _aes(cli, "other")
    found = cli.ok("key", "list", "--filter", f"key-reference={ref}")
    assert [k["key-reference"] for k in found["matched_keys"]] == [ref]


def test_pagination_with_max_items_and_starting_token(cli: Cli) -> None:
    for n in range(5):
        _aes(cli, f"page-{n}")
    seen, token = [], None
    while True:
        args = ["key", "list", "--max-items", "2"] + (["--starting-token", token] if token else [])
        page = cli.ok(*args)
        assert page["total_key_count"] == 5 and page["returned_key_count"] == len(page["matched_keys"]) <= 2
        seen += [k["attributes"]["label"] for k in page["matched_keys"]]
        token = page.get("next_token")
        if token is None:
            break
    assert seen == [f"page-{n}" for n in range(5)]


def test_bad_filter_term_is_a_usage_error(cli: Cli) -> None:
    result = cli.run("key", "list", "--filter", "attr.colour=blue")
    assert result.status == 2 and result.json["error_code"] == 1 and "unknown attribute" in result.json["data"]


def test_set_attribute_then_delete_need_exactly_one_key(cli: Cli) -> None:
    _aes(cli, "twin")
    _aes(cli, "twin")
    ambiguous = cli.run("key", "delete", "--filter", "attr.label=twin")
    assert ambiguous.status == 1
    assert ambiguous.json == {"error_code": 1, "data": "Key selection criteria matched 2 keys. Refine selection "
                                                       "criteria to select a single key."}
    first = cli.ok("key", "list", "--filter", "attr.label=twin")["matched_keys"][0]["key-reference"]
    assert cli.ok("key", "set-attribute", "--filter", f"key-reference={first}", "--name", "label",
                  "--value", "single") == {"message": "Attribute set successfully"}
    assert cli.ok("key", "delete", "--filter", "attr.label=single") == {"message": "Key deleted successfully"}
    assert cli.ok("key", "list")["total_key_count"] == 1
    none = cli.run("key", "delete", "--filter", "attr.label=single")
    assert none.status == 1 and "matched 0 keys" in none.json["data"]


def test_set_attribute_follows_pkcs11_rules(cli: Cli) -> None:
    _aes(cli, "rules", "--attributes", "extractable=false")
    refused = cli.run("key", "set-attribute", "--filter", "attr.label=rules", "--name", "extractable",
                      "--value", "true")
    assert refused.status == 1 and refused.json["data"].startswith("CKR_ATTRIBUTE_READ_ONLY")


def test_generate_file_pem_writes_the_public_key(cli: Cli, tmp_path: Path) -> None:
    cli.ok("key", "generate-asymmetric-pair", "ec", "--curve", "secp256r1", "--public-label", "p",
           "--private-label", "s")
    out = tmp_path / "pub.pem"
    assert cli.ok("key", "generate-file", "--encoding", "pem", "--path", str(out), "--filter",
                  "attr.label=s") == {"message": "Successfully generated key file"}
    key = serialization.load_pem_public_key(out.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    ref = tmp_path / "ref.pem"
    cli.ok("key", "generate-file", "--encoding", "reference-pem", "--path", str(ref), "--filter", "attr.label=s")
    import base64

    body = "".join(ref.read_text().splitlines()[1:-1])
    assert base64.b64decode(body).decode() == "pkcs11:token=cli;object=s;type=private"


def test_import_pem_public_keys(cli: Cli, tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.pem"
    path.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    key = cli.ok("key", "import", "pem", "--path", str(path), "--label", "imported", "--key-type-class",
                 "rsa-public", "--attributes", "verify=true")["key"]
    assert key["attributes"]["class"] == "public-key" and key["attributes"]["modulus-size-bits"] == 2048
    assert int(key["attributes"]["modulus"], 16) == private.public_key().public_numbers().n
    wrong = cli.run("key", "import", "pem", "--path", str(path), "--label", "x", "--key-type-class", "ec-public")
    assert wrong.status == 1 and "does not hold an ec-public key" in wrong.json["data"]

"""`pyhsm login|logout` and `pyhsm user create|delete|list|change-password`: admins manage users, each command logs
in from $PYHSM_ROLE/$PYHSM_USERNAME/$PYHSM_PASSWORD, new passwords come from $PYHSM_NEW_PASSWORD (never argv)."""

from __future__ import annotations

from cli_helpers import SO_PIN, Cli, cli_fixture  # noqa: F401  (fixture)

ADMIN = {"PYHSM_ROLE": "admin", "PYHSM_USERNAME": "admin", "PYHSM_PASSWORD": SO_PIN}


def as_user(name: str, password: str) -> dict[str, str]:
    return {"PYHSM_ROLE": "crypto-user", "PYHSM_USERNAME": name, "PYHSM_PASSWORD": password}


def test_login_checks_credentials_and_reports_the_user(cli: Cli) -> None:
    assert cli.ok("login", "--username", "admin", "--role", "admin", PYHSM_PASSWORD=SO_PIN) == \
        {"username": "admin", "role": "admin"}
    wrong = cli.run("login", "--username", "admin", "--role", "admin", PYHSM_PASSWORD="not-the-password")
    assert wrong.status == 1 and wrong.json["data"].startswith("CKR_PIN_INCORRECT")


def test_missing_password_off_a_terminal_is_a_usage_error(cli: Cli) -> None:
    result = cli.run("key", "list", PYHSM_PASSWORD=None)
    assert result.status == 2 and "no password" in result.json["data"]


def test_admin_creates_lists_and_deletes_crypto_users(cli: Cli) -> None:
    created = cli.ok("user", "create", "--username", "Alice", "--role", "crypto-user",
                     PYHSM_NEW_PASSWORD="alice-password", **ADMIN)
    assert created == {"username": "alice", "role": "crypto-user"}
    users = cli.ok("user", "list", **ADMIN)["users"]
    alice = next(u for u in users if u["username"] == "alice")
    assert alice == {"username": "alice", "role": "crypto-user", "locked": "false", "mfa": [], "quorum": [],
                     "cluster-coverage": "full"}
    assert {u["username"] for u in users} == {"admin", "default", "alice"}
    again = cli.run("user", "create", "--username", "alice", "--role", "crypto-user",
                    PYHSM_NEW_PASSWORD="alice-password", **ADMIN)
    assert again.status == 1 and again.json["error_code"] == 1
    assert cli.ok("user", "delete", "--username", "alice", "--role", "crypto-user", **ADMIN) == \
        {"username": "alice", "role": "crypto-user"}
    assert "alice" not in {u["username"] for u in cli.ok("user", "list", **ADMIN)["users"]}


def test_crypto_users_cannot_manage_users(cli: Cli) -> None:
    refused = cli.run("user", "create", "--username", "mallory", "--role", "admin",
                      PYHSM_NEW_PASSWORD="mallory-password")
    assert refused.status == 1 and refused.json["data"].startswith("CKR_")


def test_new_password_is_required_and_never_an_argument(cli: Cli) -> None:
    result = cli.run("user", "create", "--username", "bob", "--role", "crypto-user", **ADMIN)
    assert result.status == 2 and "PYHSM_NEW_PASSWORD" in result.json["data"]
    argv = cli.run("user", "create", "--username", "bob", "--role", "crypto-user", "--password", "x", **ADMIN)
    assert argv.status == 2  # there is no --password option


def test_change_password_then_log_in_with_the_new_one(cli: Cli) -> None:
    cli.ok("user", "create", "--username", "carol", "--role", "crypto-user", PYHSM_NEW_PASSWORD="carol-first",
           **ADMIN)
    assert cli.ok("user", "change-password", "--username", "carol", PYHSM_NEW_PASSWORD="carol-second",
                  **as_user("carol", "carol-first")) == {"username": "carol", "role": "crypto-user"}
    assert cli.run("key", "list", **as_user("carol", "carol-first")).status == 1
    assert cli.ok("key", "list", **as_user("carol", "carol-second"))["total_key_count"] == 0


def test_a_user_who_owns_keys_cannot_be_deleted(cli: Cli) -> None:
    cli.ok("user", "create", "--username", "dave", "--role", "crypto-user", PYHSM_NEW_PASSWORD="dave-password",
           **ADMIN)
    cli.ok("key", "generate-symmetric", "aes", "--label", "daves", "--key-length-bytes", "16",
           **as_user("dave", "dave-password"))
    refused = cli.run("user", "delete", "--username", "dave", **ADMIN)
    assert refused.status == 1 and refused.json["data"].startswith("CKR_ACTION_PROHIBITED")
    wrong_role = cli.run("user", "delete", "--username", "dave", "--role", "admin", **ADMIN)
    assert wrong_role.status == 1 and "not admin" in wrong_role.json["data"]

"""The server-side commands as a new user runs them: demo, admin, db, serve options."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port


def pairflow(*args: str, env: dict[str, str], input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pairflow", *args], env=env, input=input, text=True,
                          capture_output=True, check=check, timeout=60)


@pytest.fixture
def env(tmp_path: Path, database_url: str | None) -> dict[str, str]:
    variables = {**os.environ, "PAIRFLOW_DATA_DIR": str(tmp_path / "data")}
    if database_url:
        variables["PAIRFLOW_DATABASE_URL"] = database_url
    return variables


def test_admin_commands_create_list_and_delete_with_json(env: dict[str, str]) -> None:
    org = json.loads(pairflow("admin", "org", "create", "Acme", "--json", env=env).stdout)
    user = json.loads(pairflow("admin", "user", "create", "--email", "Alice@Example.com", "--org", "Acme",
                               "--password-stdin", "--json", env=env, input="s3cret-password\n").stdout)
    client = json.loads(pairflow("admin", "client", "create", "--name", "Office printer", "--scope", "printing",
                                 "--json", env=env).stdout)
    assert user["email"] == "alice@example.com" and user["org_id"] == org["id"]
    assert re.fullmatch(r"[A-Za-z0-9]{20}", client["client_id"]) and re.fullmatch(r"[A-Za-z0-9]{43}", client["client_secret"])

    clients = json.loads(pairflow("admin", "client", "list", "--json", env=env).stdout)
    assert clients == [{"client_id": client["client_id"], "name": "Office printer", "scope": "printing", "public": False}]
    assert client["client_secret"] not in pairflow("admin", "client", "list", env=env).stdout
    assert [u["email"] for u in json.loads(pairflow("admin", "user", "list", "--json", env=env).stdout)] == ["alice@example.com"]

    refused = pairflow("admin", "org", "delete", "Acme", env=env, check=False)
    assert refused.returncode == 1 and "still has users" in refused.stderr
    pairflow("admin", "user", "delete", "alice@example.com", env=env)
    pairflow("admin", "org", "delete", "Acme", env=env)
    pairflow("admin", "client", "delete", client["client_id"], env=env)
    assert json.loads(pairflow("admin", "org", "list", "--json", env=env).stdout) == []
    events = [e["event"] for e in json.loads(pairflow("admin", "audit", "--json", env=env).stdout)]
    assert events[:3] == ["client_deleted", "org_deleted", "user_deleted"]


def test_admin_errors_are_clear_and_exit_non_zero(env: dict[str, str]) -> None:
    pairflow("admin", "org", "create", "Acme", env=env)
    duplicate = pairflow("admin", "org", "create", "Acme", env=env, check=False)
    assert duplicate.returncode == 1 and "exists already" in duplicate.stderr
    no_org = pairflow("admin", "user", "create", "--email", "a@b.co", "--org", "Nope", "--password-stdin",
                      env=env, input="long-enough\n", check=False)
    assert no_org.returncode == 1 and "pairflow admin org create" in no_org.stderr
    short = pairflow("admin", "user", "create", "--email", "a@b.co", "--org", "Acme", "--password-stdin",
                     env=env, input="short\n", check=False)
    assert short.returncode == 1 and "at least 8" in short.stderr
    assert "Traceback" not in duplicate.stderr + no_org.stderr + short.stderr


def test_unusable_database_urls_and_ports_are_usage_errors(env: dict[str, str]) -> None:
    for url, hint in [
        ("postgresql://u@127.0.0.1:1/x", "postgresql+asyncpg://"),
        ("mysql://u@h/db", "SQLite or PostgreSQL"),
        ("notaurl", "not a database URL"),
    ]:
        for command in (("serve",), ("admin", "org", "list")):
            result = pairflow(*command, "--database", url, env=env, check=False)
            assert result.returncode == 2 and hint in result.stderr, (command, url, result.stderr)
            assert "Traceback" not in result.stderr
    port = pairflow("serve", "--port", "99999", env=env, check=False)
    assert port.returncode == 2 and "65535" in port.stderr


def test_db_upgrade_and_current(env: dict[str, str]) -> None:
    assert "Schema at revision 0002 (was empty)" in pairflow("db", "upgrade", env=env).stdout
    assert "database: 0002" in pairflow("db", "current", env=env).stdout


def test_python_dash_m_and_help_texts(env: dict[str, str]) -> None:
    top = pairflow("--help", env=env).stdout
    listed = top.split("Commands:", 1)[1].splitlines()
    names = {line.split()[0] for line in listed if line.startswith("  ") and line.strip()}
    assert names == {"serve", "demo", "admin", "db", "login", "token", "status", "logout"}, top
    serve_help = pairflow("serve", "--help", env=env).stdout
    for variable in ("PAIRFLOW_DATA_DIR", "PAIRFLOW_DATABASE_URL", "PAIRFLOW_ISSUER", "PAIRFLOW_PORT"):
        assert variable in serve_help


def test_demo_prints_credentials_and_the_login_command_then_serves(tmp_path: Path, env: dict[str, str]) -> None:
    port = free_port()
    env = {k: v for k, v in env.items() if k != "PAIRFLOW_DATABASE_URL"}  # the demo's point: the embedded default
    process = subprocess.Popen([sys.executable, "-m", "pairflow", "demo", "--port", str(port), "--data-dir", str(tmp_path / "demo")],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        assert process.stdout is not None
        while not any("pairflow login" in line for line in lines):
            line = process.stdout.readline()
            assert line, "demo exited early:\n" + "".join(lines)
            lines.append(line)
        text = "".join(lines)
        client_id = re.search(r"client_id:\s+(\S+)", text).group(1)
        secret = re.search(r"client_secret:\s+(\S+)", text).group(1)
        assert f"pairflow login --server http://127.0.0.1:{port} --client-id {client_id} --client-secret {secret}" in text
        assert re.search(r"sign in as:\s+demo@example.com", text) and re.search(r"password:\s+\S+", text)
        deadline = time.monotonic() + 20
        while True:
            try:
                paired = httpx.post(f"http://127.0.0.1:{port}/oauth/pair", auth=(client_id, secret), timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo server did not come up"
                time.sleep(0.1)
        assert paired.status_code == 200 and paired.json()["auth_url"].startswith(f"http://127.0.0.1:{port}/auth/signin/")
    finally:
        process.terminate()
        process.wait(10)
    assert (tmp_path / "demo" / "pairflow.db").exists()
    assert oct((tmp_path / "demo" / "demo.json").stat().st_mode & 0o777) == "0o600"


def test_admin_input_is_validated(env: dict[str, str]) -> None:
    pairflow("admin", "org", "create", "Acme", env=env)
    same = pairflow("admin", "org", "create", "ACME", env=env, check=False)
    assert same.returncode == 1 and "exists already" in same.stderr
    control = pairflow("admin", "org", "create", "bad\tname\x07", env=env, check=False)
    assert control.returncode == 1 and "printable" in control.stderr
    no_scope = pairflow("admin", "client", "create", "--name", "Printer", "--scope", " ", env=env, check=False)
    assert no_scope.returncode == 1 and "at least one scope" in no_scope.stderr
    no_tty = pairflow("admin", "user", "create", "--email", "a@b.co", "--org", "Acme", env=env, input="", check=False)
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr
    bogus = pairflow("db", "upgrade", "--revision", "bogus", env=env, check=False)
    assert bogus.returncode == 1 and "bogus" in bogus.stderr and "Traceback" not in bogus.stderr

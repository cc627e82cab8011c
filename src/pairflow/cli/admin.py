"""``pairflow admin``: organisations, users and clients, on the same database as the server."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import click

from pairflow import accounts, audit
from pairflow.assembly import build_server, keyed_hasher, open_store, prepare_store
from pairflow.cli.options import emit, fail, settings, store_command
from pairflow.oauth import device_flow
from pairflow.oauth.codes import normalise_user_code
from pairflow.store import StoreUnavailable
from pairflow.store.migrate import SchemaOutdated
from pairflow.store.sql import SqlStore


@asynccontextmanager
async def opened(data_dir: Path, database: str | None) -> AsyncIterator[SqlStore]:
    config = settings(data_dir, database)
    store = open_store(config)
    try:
        try:
            await prepare_store(store, config)
        except SchemaOutdated as exc:
            fail(str(exc))
        yield store
    except StoreUnavailable as exc:
        fail(f"cannot reach the database: {exc}")
    except accounts.AccountError as exc:
        fail(str(exc))
    finally:
        await store.close()


@click.group(context_settings={"max_content_width": 100})
def admin() -> None:
    """Manage organisations, users, clients and pairings, and read the audit log.

    Every command acts on the server's database (the same --data-dir/--database as `serve`) and
    takes --json for scripts.
    """


@admin.group()
def org() -> None:
    """Organisations: every user belongs to one."""


@org.command("create")
@click.argument("name")
@store_command
async def org_create(name: str, data_dir: Path, database: str | None, as_json: bool) -> None:
    """Create an organisation called NAME."""
    async with opened(data_dir, database) as store:
        created = await accounts.create_org(store, name, time.time())
    emit(as_json, asdict(created), f"Created organisation {created.name} ({created.id})")


@org.command("list")
@store_command
async def org_list(data_dir: Path, database: str | None, as_json: bool) -> None:
    """List organisations."""
    async with opened(data_dir, database) as store:
        orgs = await store.list_orgs()
    emit(as_json, [asdict(o) for o in orgs], "\n".join(f"{o.id}  {o.name}" for o in orgs) or "No organisations.")


@org.command("delete")
@click.argument("name")
@store_command
async def org_delete(name: str, data_dir: Path, database: str | None, as_json: bool) -> None:
    """Delete the organisation NAME (it must have no users)."""
    async with opened(data_dir, database) as store:
        found = await store.get_org_by_name(name)
        if found is None:
            fail(f"no organisation named '{name}'")
        assert found is not None
        if any(u.org_id == found.id for u in await store.list_users()):
            fail(f"organisation '{name}' still has users; delete them first")
        await store.delete_org(found.id)
        await audit.record(store, "org_deleted", detail=f"name={name!r}")
    emit(as_json, {"deleted": found.id}, f"Deleted organisation {name}")


@admin.group()
def user() -> None:
    """Users: the people who approve devices."""


@user.command("create")
@click.option("--email", required=True, help="The user's e-mail address (their sign-in name).")
@click.option("--org", "org_name", required=True, help="Name of the user's organisation.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting.")
@store_command
async def user_create(email: str, org_name: str, password_stdin: bool, data_dir: Path, database: str | None, as_json: bool) -> None:
    """Create a user in an organisation; the password is prompted for (or read with --password-stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        fail("no terminal to ask for the password on; pipe it in with --password-stdin")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    async with opened(data_dir, database) as store:
        created = await accounts.create_user(store, email, password, org_name, time.time())
    data = {"id": created.id, "email": created.email, "org_id": created.org_id}
    emit(as_json, data, f"Created user {created.email} ({created.id})")


@user.command("list")
@store_command
async def user_list(data_dir: Path, database: str | None, as_json: bool) -> None:
    """List users."""
    async with opened(data_dir, database) as store:
        users = await store.list_users()
        names = {o.id: o.name for o in await store.list_orgs()}
    data = [{"id": u.id, "email": u.email, "org": names.get(u.org_id)} for u in users]
    emit(as_json, data, "\n".join(f"{d['id']}  {d['email']}  ({d['org']})" for d in data) or "No users.")


@user.command("delete")
@click.argument("email")
@store_command
async def user_delete(email: str, data_dir: Path, database: str | None, as_json: bool) -> None:
    """Delete the user EMAIL, with their devices' refresh tokens."""
    async with opened(data_dir, database) as store:
        found = await store.get_user_by_email(accounts.normalise_email(email))
        if found is None:
            fail(f"no user with e-mail '{email}'")
        assert found is not None
        await store.delete_user(found.id)
        await audit.record(store, "user_deleted", user_id=found.id, detail=f"email={found.email!r}")
    emit(as_json, {"deleted": found.id}, f"Deleted user {found.email}")


@admin.group()
def client() -> None:
    """Clients: device applications allowed to pair."""


@client.command("create")
@click.option("--name", required=True, help='What people see on the approval page, e.g. "Office printer".')
@click.option("--scope", default="printing", show_default=True, help="Space-separated scopes the client may request.")
@click.option("--public", is_flag=True, help="A public client (no secret), for the RFC 8628 device flow only.")
@store_command
async def client_create(name: str, scope: str, public: bool, data_dir: Path, database: str | None, as_json: bool) -> None:
    """Register a device client and print its id and secret (the secret is shown only once)."""
    async with opened(data_dir, database) as store:
        made = await accounts.create_client(store, await keyed_hasher(store), name, scope, time.time(), public=public)
    data = {"client_id": made.client.client_id, "client_secret": made.secret, "name": made.client.name, "scope": made.client.scope}
    text = f"Created client {made.client.name}\n  client_id:     {made.client.client_id}\n"
    text += f"  client_secret: {made.secret}   (shown once; store it now)" if made.secret else "  public client: no secret"
    emit(as_json, data, text)


@client.command("list")
@store_command
async def client_list(data_dir: Path, database: str | None, as_json: bool) -> None:
    """List clients (secrets are never shown again)."""
    async with opened(data_dir, database) as store:
        clients = await store.list_clients()
    data = [{"client_id": c.client_id, "name": c.name, "scope": c.scope, "public": c.is_public} for c in clients]
    lines = [f"{d['client_id']}  {d['name']}  [{d['scope']}]{'  public' if d['public'] else ''}" for d in data]
    emit(as_json, data, "\n".join(lines) or "No clients.")


@client.command("delete")
@click.argument("client_id")
@store_command
async def client_delete(client_id: str, data_dir: Path, database: str | None, as_json: bool) -> None:
    """Delete the client CLIENT_ID; its pending codes and refresh tokens stop working."""
    async with opened(data_dir, database) as store:
        if not await store.delete_client(client_id):
            fail(f"no client with id '{client_id}'")
        await audit.record(store, "client_deleted", client_id=client_id)
    emit(as_json, {"deleted": client_id}, f"Deleted client {client_id}")


@admin.command("audit")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="How many events, newest first.")
@store_command
async def audit_log(limit: int, data_dir: Path, database: str | None, as_json: bool) -> None:
    """Show the audit log.

    Sign-ins, approvals, denials, unpairings, refresh-token reuse and admin changes, newest first.
    """
    async with opened(data_dir, database) as store:
        events = await store.list_events(limit)
    lines = [
        f"{datetime.fromtimestamp(e.at, UTC):%Y-%m-%d %H:%M:%S}  {e.event:<22} user={e.user_id or '-'} "
        f"client={e.client_id or '-'} ip={e.ip or '-'} {e.detail}"
        for e in events
    ]
    emit(as_json, [asdict(e) for e in events], "\n".join(lines) or "No events.")


@admin.group()
def pairing() -> None:
    """Approve pairings without a browser.

    Pending pairing codes and RFC 8628 user codes, approved for a user (provisioning).
    """


@pairing.command("approve")
@click.argument("codes", nargs=-1)
@click.option("--user", "email", required=True, help="E-mail of the user the devices are paired with.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Also read codes from standard input, one per line (bulk).")
@store_command
async def pairing_approve(codes: tuple[str, ...], email: str, from_stdin: bool, data_dir: Path, database: str | None, as_json: bool) -> None:
    """Approve pairing codes (or RFC 8628 user codes) for a user, as if they had clicked Approve."""
    wanted = list(codes) + ([line.strip() for line in sys.stdin if line.strip()] if from_stdin else [])
    if not wanted:
        fail("give at least one code, or --stdin")
    config = settings(data_dir, database)
    approved, refused = [], []
    async with opened(data_dir, database) as store:
        found = await store.get_user_by_email(accounts.normalise_email(email))
        if found is None:
            fail(f"no user with e-mail '{email}'")
        assert found is not None
        server = await build_server(store, config)
        try:
            for code in wanted:
                user_code = normalise_user_code(code)
                grant = await device_flow.find(server, code=code) or (
                    await device_flow.find(server, user_code=user_code) if user_code else None
                )
                ok = grant is not None and await device_flow.decide(server, grant, found, approve=True, ip="admin-cli")
                (approved if ok else refused).append(code)
        finally:
            await server.notifier.close()
    emit(as_json, {"approved": len(approved), "refused": refused},
         f"Approved {len(approved)} code(s)" + (f"; not pending or unknown: {', '.join(refused)}" if refused else ""))
    if refused:
        sys.exit(1)

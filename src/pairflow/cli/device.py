"""Device-side commands: ``login``, ``token``, ``status`` and ``logout``, built on :mod:`pairflow.client`."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import webbrowser
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
import segno
from rich.console import Console
from rich.live import Live
from rich.text import Text

from pairflow.client import (
    DEFAULT_SERVER,
    AnswerLost,
    AnswerLostError,
    Authorized,
    Cancelled,
    Credentials,
    Denied,
    DeviceClient,
    Entry,
    Expired,
    NotSignedIn,
    OAuthError,
    Outcome,
    PairflowError,
    Pending,
    ProtocolError,
    Session,
    TokenStore,
    TransportError,
    TransportFailure,
    open_store,
    remember,
    unverified_claims,
)
from pairflow.client.protocol import normalize_server

EXIT_FAILED = 1
EXIT_DENIED = 3
EXIT_EXPIRED = 4
EXIT_NETWORK = 5
EXIT_PROTOCOL = 6
EXIT_ANSWER_LOST = 7
EXIT_NOT_SIGNED_IN = 8
EXIT_INTERRUPTED = 130

EXIT_CODES = """\b
Exit codes:
  0    success
  1    other failure (e.g. the token store is unusable)
  2    wrong usage
  3    the sign-in was denied
  4    the code expired before anyone approved it
  5    network failure: the server was unreachable or kept failing
  6    protocol error: the server refused (e.g. wrong client id or secret) or answered nonsense
  7    the server's answer was lost after it may have used the code: run the command again
  8    not signed in, or the session ended: run 'pairflow login'
  130  interrupted (Ctrl-C)

\b
Tokens are kept in the OS keyring when it works, else in
$PAIRFLOW_HOME/tokens.json (default ~/.config/pairflow/tokens.json, mode 0600).
Choose with PAIRFLOW_TOKEN_STORE=auto|keyring|file."""

F = TypeVar("F", bound=Callable[..., Any])


def _exit_code(error: PairflowError) -> int:
    if isinstance(error, AnswerLostError):
        return EXIT_ANSWER_LOST
    if isinstance(error, TransportError):
        return EXIT_NETWORK
    if isinstance(error, OAuthError):
        return EXIT_PROTOCOL
    if isinstance(error, NotSignedIn):
        return EXIT_NOT_SIGNED_IN
    return EXIT_FAILED


def _fail(code: int, status: str, message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"status": status, "error": message}))
    click.secho(f"Error: {message}", err=True, fg="red")
    raise click.exceptions.Exit(code)


def _reports_errors(command: F) -> F:
    """Turn library errors and Ctrl-C into a message and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            _fail(EXIT_INTERRUPTED, "cancelled", "interrupted", as_json)
        except PairflowError as error:
            _fail(_exit_code(error), type(error).__name__, str(error), as_json)

    return wrapper  # type: ignore[return-value]


def _selection_options(command: F) -> F:
    command = click.option(
        "--client-id",
        envvar="PAIRFLOW_CLIENT_ID",
        help="Which client's login to use; optional when only one is stored. [env: PAIRFLOW_CLIENT_ID]",
    )(command)
    command = click.option(
        "--server",
        envvar="PAIRFLOW_SERVER",
        metavar="URL",
        help="Which server's login to use; optional when only one is stored. [env: PAIRFLOW_SERVER]",
    )(command)
    return command


def _select(store: TokenStore, server: str | None, client_id: str | None) -> Entry:
    """The stored login matching the given server and/or client id; either may be left out if unambiguous."""
    matches = [
        entry
        for entry in store.entries()
        if (server is None or entry.server == normalize_server(server)) and (client_id is None or entry.client_id == client_id)
    ]
    if not matches:
        raise NotSignedIn("not signed in" + (f" to {server}" if server else "") + "; run 'pairflow login' first")
    if len(matches) > 1:
        choices = "\n".join(f"  --server {e.server} --client-id {e.client_id}" for e in matches)
        raise click.UsageError(f"several logins are stored; pick one with:\n{choices}")
    return matches[0]


def _describe_account(account: dict[str, Any] | None) -> tuple[str, str | None]:
    """(who, organisation) from /api/me's answer or from a token's claims."""
    account = account or {}
    who = account.get("email") or account.get("sub") or account.get("id") or "an unknown account"
    organisation = account.get("organisation")
    if isinstance(organisation, dict):
        return str(who), str(organisation.get("name") or organisation.get("id"))
    return str(who), str(account["org"]) if account.get("org") else None


def _can_open_browser() -> bool:
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _show_prompt(pending: Pending, qr: bool) -> None:
    click.echo("To sign in this device, open this page in a browser:\n", err=True)
    click.secho(pending.url, err=True, bold=True)  # alone on its line, so scripts and tests can pick it out
    click.echo(err=True)
    if pending.user_code:
        click.echo(f"Check that the page shows the code {click.style(pending.user_code, bold=True)}.", err=True)
        if pending.verification_uri and pending.verification_uri != pending.url:
            click.echo(f"(Or go to {pending.verification_uri} and enter that code.)", err=True)
    if qr:
        segno.make(pending.url).terminal(out=sys.stderr, compact=True)


class _Countdown:
    """Re-rendered by rich several times a second, so it keeps ticking even during a held poll."""

    def __init__(self, expires_at: float) -> None:
        self.expires_at = expires_at

    def __rich__(self) -> Text:
        left = max(0, int(self.expires_at - time.time()))
        return Text(f"Waiting for approval... {left // 60}:{left % 60:02d} left (Ctrl-C to stop)", style="dim")


def _wait(client: DeviceClient, pending: Pending) -> Outcome:
    if sys.stderr.isatty():
        with Live(_Countdown(pending.expires_at), console=Console(stderr=True), refresh_per_second=4, transient=True):
            return client.wait(pending)
    left = int(pending.expires_at - time.time())
    click.echo(f"Waiting for approval (the code expires in {left} s)...", err=True)
    return client.wait(pending)


_OUTCOMES: dict[type, tuple[int, str]] = {
    Denied: (EXIT_DENIED, "denied"),
    Expired: (EXIT_EXPIRED, "expired"),
    Cancelled: (EXIT_INTERRUPTED, "cancelled"),
    TransportFailure: (EXIT_NETWORK, "network_failure"),
    AnswerLost: (EXIT_ANSWER_LOST, "answer_lost"),
    ProtocolError: (EXIT_PROTOCOL, "protocol_error"),
}


@click.command(epilog=EXIT_CODES)
@click.option(
    "--server",
    envvar="PAIRFLOW_SERVER",
    default=DEFAULT_SERVER,
    show_default=True,
    metavar="URL",
    help="The account server to sign in to. [env: PAIRFLOW_SERVER]",
)
@click.option("--client-id", envvar="PAIRFLOW_CLIENT_ID", required=True, help="This device's OAuth client id. [env: PAIRFLOW_CLIENT_ID]")
@click.option(
    "--client-secret",
    envvar="PAIRFLOW_CLIENT_SECRET",
    help="The client's secret; leave out for a public client. [env: PAIRFLOW_CLIENT_SECRET]",
)
@click.option("--scope", help="Space-separated scopes to ask for, e.g. 'printing'. Default: the server's default.")
@click.option("--standard", is_flag=True, help="Use the standard RFC 8628 device flow even if the server offers pairing.")
@click.option("--qr", is_flag=True, help="Also draw the sign-in URL as a QR code, to scan with a phone.")
@click.option("--no-browser", is_flag=True, help="Never open a web browser (by default one opens on a desktop terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout, for scripts.")
@_reports_errors
def login(
    server: str,
    client_id: str,
    client_secret: str | None,
    scope: str | None,
    standard: bool,
    qr: bool,
    no_browser: bool,
    as_json: bool,
) -> None:
    """Sign this device in to an account.

    Prints a web address: open it on any computer or phone, sign in, and approve the device. This
    command waits until you do, then stores the device's tokens so that 'pairflow token' works.
    """
    if not client_id.strip():
        raise click.BadParameter("must not be empty", param_hint="--client-id")
    if not server.startswith(("https://", "http://")):
        raise click.BadParameter(f"'{server}' is not an http(s) URL, e.g. https://account.ezeep.com", param_hint="--server")
    store = open_store()
    credentials = Credentials(client_id, client_secret or None)
    with DeviceClient(server, credentials) as client:
        pending = client.start(scope, standard=standard)
        _show_prompt(pending, qr)
        if not no_browser and pending.url.startswith(("https://", "http://")) and _can_open_browser():
            webbrowser.open(pending.url)
        outcome = _wait(client, pending)
        if not isinstance(outcome, Authorized):
            code, status = _OUTCOMES[type(outcome)]
            _fail(code, status, outcome.description, as_json)
        assert isinstance(outcome, Authorized) and client.info is not None
        tokens = outcome.tokens
        try:
            account = client.userinfo(tokens.access_token)
        except PairflowError:
            account = unverified_claims(tokens.access_token)  # signed in all the same; only the display suffers
    if store.warning:  # said once, when something is actually stored
        click.secho(f"Warning: {store.warning}", err=True, fg="yellow")
    remember(store, client.info, credentials, tokens, account)
    who, organisation = _describe_account(account)
    if as_json:
        result = {"status": "signed_in", "server": client.server, "client_id": client_id, "account": account}
        click.echo(json.dumps({**result, "scope": tokens.scope, "expires_at": tokens.expires_at, "store": store.backend}))
    else:
        click.echo(f"Signed in to {client.server} as {who}" + (f" ({organisation})." if organisation else "."))


@click.command(epilog=EXIT_CODES)
@_selection_options
@_reports_errors
def token(server: str | None, client_id: str | None) -> None:
    """Print a valid access token, refreshing it first if it has expired or is about to.

    Only the token goes to stdout, so it can be used as:

    \b
      curl -H "Authorization: Bearer $(pairflow token)" https://...
    """
    store = open_store()
    entry = _select(store, server, client_id)
    click.echo(Session(store, entry.server, entry.client_id).token())


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "unknown"
    left = int(timestamp - time.time())
    at = datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    relative = f"in {left // 60} min {left % 60} s" if left >= 0 else "expired; 'pairflow token' refreshes it"
    return f"{at} ({relative})"


@click.command(epilog=EXIT_CODES)
@_selection_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
@_reports_errors
def status(server: str | None, client_id: str | None, as_json: bool) -> None:
    """Show who this device is signed in as, and where its tokens are kept. Makes no network request."""
    store = open_store()
    entry = _select(store, server, client_id)
    account = entry.account or unverified_claims(entry.tokens.access_token)
    who, organisation = _describe_account(account)
    scopes = entry.tokens.scope or str(unverified_claims(entry.tokens.access_token).get("scope") or "")
    if as_json:
        click.echo(
            json.dumps(
                {
                    "server": entry.server,
                    "client_id": entry.client_id,
                    "account": who,
                    "organisation": organisation,
                    "scope": scopes,
                    "expires_at": entry.tokens.expires_at,
                    "can_refresh": entry.tokens.refresh_token is not None,
                    "store": {"backend": store.backend, "location": store.location},
                }
            )
        )
        return
    rows = [
        ("Server", entry.server),
        ("Client", entry.client_id),
        ("Signed in as", who),
        ("Organisation", organisation or "unknown"),
        ("Scopes", scopes or "none"),
        ("Access token expires", _when(entry.tokens.expires_at)),
        ("Refresh token", "yes" if entry.tokens.refresh_token else "no (log in again when it expires)"),
        ("Stored in", f"{store.backend}: {store.location}"),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<22}{value}")


@click.command(epilog=EXIT_CODES)
@_selection_options
@_reports_errors
def logout(server: str | None, client_id: str | None) -> None:
    """Sign this device out: revoke its tokens at the server if possible, then forget them."""
    store = open_store()
    entry = _select(store, server, client_id)
    not_revoked = Session(store, entry.server, entry.client_id).logout()
    if not_revoked:
        click.secho(f"Warning: the server was not told ({not_revoked}); the tokens were forgotten here.", err=True, fg="yellow")
    click.echo(f"Signed out of {entry.server}.")

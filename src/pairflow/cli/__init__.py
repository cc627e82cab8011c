"""The ``pairflow`` command: server side (serve, demo, db, admin) and device side (login, token, status, logout).

Commands are imported only when run, so that `pairflow token` on a device starts fast and
never loads the server's database and web stack.
"""

from __future__ import annotations

import importlib

import click

from pairflow import __version__

COMMANDS = {
    "serve": "pairflow.cli.serve:serve",
    "demo": "pairflow.cli.serve:demo",
    "db": "pairflow.cli.db:db",
    "admin": "pairflow.cli.admin:admin",
    "login": "pairflow.cli.device:login",
    "token": "pairflow.cli.device:token",
    "status": "pairflow.cli.device:status",
    "logout": "pairflow.cli.device:logout",
}
SUMMARIES = {
    "serve": "Run the authorization server.",
    "demo": "Create a demo user and client, then run the server.",
    "db": "Database schema: upgrade, current.",
    "admin": "Manage organisations, users, clients and pairings.",
    "login": "Pair this device with an account.",
    "token": "Print a fresh access token.",
    "status": "Show who this device is signed in as.",
    "logout": "Revoke and forget this device's tokens.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(SUMMARIES.items()))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pairflow")
def main() -> None:
    """Log devices in by pairing: an OAuth device-login server and its device-side client.

    \b
    Server:  pairflow serve | demo | db upgrade | admin ...
    Device:  pairflow login | token | status | logout
    """

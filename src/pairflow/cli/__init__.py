"""The ``pairflow`` command: server side (serve, demo, db, admin) and device side (login, token, status, logout)."""

from __future__ import annotations

import click

from pairflow import __version__
from pairflow.cli.admin import admin
from pairflow.cli.db import db
from pairflow.cli.device import login, logout, status, token
from pairflow.cli.serve import demo, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pairflow")
def main() -> None:
    """Log devices in by pairing: an OAuth device-login server and its device-side client.

    \b
    Server:  pairflow serve | demo | db upgrade | admin ...
    Device:  pairflow login | token | status | logout
    """


for command in (serve, demo, db, admin, login, token, status, logout):
    main.add_command(command)

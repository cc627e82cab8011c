"""Device-side commands: login, token, status, logout (placeholder until the client lands)."""

import click


@click.command()
def login() -> None:
    """Pair this device with an account."""


@click.command()
def token() -> None:
    """Print a fresh access token."""


@click.command()
def status() -> None:
    """Show who this device is signed in as."""


@click.command()
def logout() -> None:
    """Forget this device's tokens."""

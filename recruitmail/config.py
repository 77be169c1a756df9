"""The settings of a CLI command: a bad variable ends the command with a message and exit
status 2."""

from __future__ import annotations

import sys

import click

from core.settings import Settings, SettingsError, get_settings


def load_settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        click.echo(f"recruitmail: {exc}", err=True)
        sys.exit(2)

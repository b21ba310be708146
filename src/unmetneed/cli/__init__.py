"""The ``unmetneed`` command line."""

from unmetneed.cli.main import main

__all__ = ["main"]

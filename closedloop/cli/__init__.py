"""The ``closedloop`` command line."""

from closedloop.cli.main import main

__all__ = ["main"]

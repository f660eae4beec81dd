"""How the command line reports a problem: one line on stderr, no traceback."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from closedloop.config import ConfigError

__all__ = ["error", "report_config_error"]


def error(message: str) -> None:
    """Print ``closedloop: error: <message>`` to stderr."""
    print(f"closedloop: error: {message}", file=sys.stderr)


def report_config_error(exc: ConfigError) -> None:
    """Report every problem of ``exc``, one line each: ``<source>: <where>: <message>``."""
    for where, msg in exc.problems:
        error(f"{exc.source}: {where}: {msg}")

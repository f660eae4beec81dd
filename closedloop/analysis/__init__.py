"""Analyses of finished runs: stimulation phase, seizures.

Import from the modules (:mod:`~closedloop.analysis.phase`,
:mod:`~closedloop.analysis.seizures`).
"""

__all__: list[str] = []

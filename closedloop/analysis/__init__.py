"""Analyses of runs: stimulation phase, seizures, band-envelope bursts.

Import from the modules (:mod:`~closedloop.analysis.phase`,
:mod:`~closedloop.analysis.seizures`, :mod:`~closedloop.analysis.bursts`).
"""

__all__: list[str] = []

"""The controller benchmark (scenarios, scores, leaderboard) and the performance suite.

Import from the modules (:mod:`~closedloop.bench.scenarios`,
:mod:`~closedloop.bench.perf`).
"""

__all__: list[str] = []

"""The trigger event table: each burst a controller asked for, and what the device did.

A loop records, per control period, the biomarker at which the controller
asked for a burst (``trigger_biomarker``, NaN in periods without one) and the
device's counts of bursts accepted and refused so far (``triggers_delivered``,
``triggers_rejected``; see :data:`closedloop.core.record.TRIGGER_SERIES`).
:class:`TriggerLog` turns these rows, chunk by chunk, into the rows of
``events/triggers``: one per trigger, with its time, instance, the biomarker
that fired it and whether the device delivered it (the device decides when
the command reaches it, ``latency_s`` after the request, against its
lock-out and daily caps). Requests and outcomes pair in order: each
instance's commands reach the device in the order they were issued.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TRIGGER_EVENTS", "TRIGGER_FIELDS", "TriggerLog"]

#: Name of the event table (``events/triggers``).
TRIGGER_EVENTS = "triggers"
#: Columns of the trigger table: name to (dtype, units).
TRIGGER_FIELDS: dict[str, tuple[str, str]] = {
    "time_s": ("f8", "s"),  # end of the control period after which the burst was asked for
    "instance": ("i4", "1"),
    "biomarker": ("f8", "signal"),  # the biomarker that fired it (signal units)
    "delivered": ("i1", "1"),  # 1 delivered, 0 refused by the device, -1 pending at the end
}


class TriggerLog:
    """Pairs trigger requests with the device's outcomes, for ``n`` instances.

    Parameters
    ----------
    n : int
        Instances.
    control_period_s : float
        Control period, s.
    """

    def __init__(self, n: int, control_period_s: float) -> None:
        self.n = int(n)
        self.control_period_s = float(control_period_s)
        self._pending: list[list[tuple[float, float]]] = [[] for _ in range(self.n)]
        self._delivered = np.zeros(self.n)
        self._rejected = np.zeros(self.n)
        self._periods = 0

    def feed(
        self, biomarker: np.ndarray, delivered: np.ndarray, rejected: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Take the trigger rows of the next ``m`` periods; return the events resolved.

        Parameters
        ----------
        biomarker, delivered, rejected : ndarray, shape (n, m)
            ``trigger_biomarker``, ``triggers_delivered`` and
            ``triggers_rejected`` of the chunk.

        Returns
        -------
        dict of str to ndarray
            Columns of :data:`TRIGGER_FIELDS`, one row per trigger whose
            outcome fell in the chunk, in order of instance then time.
        """
        m = biomarker.shape[1]
        new_d = np.diff(delivered, axis=1, prepend=self._delivered[:, None])
        new_r = np.diff(rejected, axis=1, prepend=self._rejected[:, None])
        asked = np.isfinite(biomarker)
        rows: list[tuple[float, int, float, int]] = []
        for i, k in zip(*np.nonzero(asked | (new_d != 0) | (new_r != 0)), strict=True):
            t_end = (self._periods + k + 1) * self.control_period_s
            pending = self._pending[i]
            # Outcomes first: a request made at the end of period k reaches the
            # device in a later period.
            for outcome, count in ((1, new_d[i, k]), (0, new_r[i, k])):
                for _ in range(int(count)):
                    t, value = pending.pop(0) if pending else (t_end, np.nan)
                    rows.append((t, int(i), value, outcome))
            if asked[i, k]:
                pending.append((t_end, float(biomarker[i, k])))
        if m:
            self._delivered = delivered[:, -1].astype(float)
            self._rejected = rejected[:, -1].astype(float)
        self._periods += m
        return _columns(rows)

    def finish(self) -> dict[str, np.ndarray]:
        """The triggers still pending at the end of the run (``delivered`` = -1)."""
        rows = [(t, i, v, -1) for i, pending in enumerate(self._pending) for t, v in pending]
        self._pending = [[] for _ in range(self.n)]
        return _columns(rows)


def _columns(rows: list[tuple[float, int, float, int]]) -> dict[str, np.ndarray]:
    rows.sort(key=lambda r: (r[1], r[0]))
    arr = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return {
        name: np.asarray(values, dtype=dtype)
        for (name, (dtype, _)), values in zip(TRIGGER_FIELDS.items(), arr, strict=True)
    }

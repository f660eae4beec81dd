"""Open-loop (continuous) deep brain stimulation.

The reference every closed-loop controller is compared with: the same
stimulation on every control period, whatever the biomarker does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from closedloop.controllers.base import (
    Controller,
    check_settings,
    fill_doc,
    fixed_command,
    twin_program,
)
from closedloop.controllers.compiled import OPEN_LOOP as TWIN_KIND

__all__ = ["OpenLoop"]


@fill_doc
class OpenLoop(Controller):
    """Continuous stimulation at a fixed amplitude, frequency and pulse width.

    Parameters
    ----------
    amplitude_ma : float, default 2.0
        Stimulation amplitude in mA, non-negative.
    %(frequency_hz)s
    %(pulse_width_us)s

    Attributes
    ----------
    %(n_)s
    command_ : dict of str to ndarray
        The command returned by every call of :meth:`update`: read-only
        arrays of shape ``(n,)`` created by :meth:`reset`.

    Notes
    -----
    The controller reads no feature. :meth:`update` returns the same
    read-only arrays on every call (in a new dict), so it costs almost
    nothing; a caller that wants to modify a command must copy it first.
    Parameter values are checked by :meth:`reset`, not by ``__init__``.

    References
    ----------
    .. [1] Benabid A.L., Pollak P., Gervason C., Hoffmann D., Gao D.M.,
       Hommel M., Perret J.E., de Rougemont J. (1991). Long-term suppression
       of tremor by chronic stimulation of the ventral intermediate thalamic
       nucleus. The Lancet 337(8738):403-406.

    Examples
    --------
    >>> import numpy as np
    >>> c = OpenLoop(amplitude_ma=1.5)
    >>> c.reset(2, np.random.default_rng(0))
    >>> c.update(0.001, {"biomarker": np.zeros(2)})["amplitude_ma"]
    array([1.5, 1.5])
    """

    name: ClassVar[str] = "open_loop"
    required_features: ClassVar[tuple[str, ...]] = ()
    references: ClassVar[tuple[str, ...]] = (
        "Benabid A.L. et al. (1991). Long-term suppression of tremor by chronic "
        "stimulation of the ventral intermediate thalamic nucleus. "
        "The Lancet 337(8738):403-406.",
    )

    def __init__(
        self,
        *,
        amplitude_ma: float = 2.0,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 60.0,
    ) -> None:
        self.amplitude_ma = amplitude_ma
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters and build the constant command.

        %(reset_parameters)s

        %(reset_raises)s
        """
        settings = check_settings(self, "amplitude_ma", "frequency_hz", "pulse_width_us")
        super().reset(n, rng)
        self.command_ = fixed_command(self.n_, settings)

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the fixed command.

        Parameters
        ----------
        t : float
            Time in seconds at the end of the control period (unused).
        features : mapping of str to ndarray
            Biomarker features (unused).

        Returns
        -------
        dict of str to ndarray
            ``amplitude_ma``, ``frequency_hz`` and ``pulse_width_us``, read-only
            arrays of shape ``(n,)``.
        """
        return dict(self.command_)

    def compiled(self) -> tuple[int, np.ndarray, np.ndarray]:
        """Program for the compiled kernels (see :meth:`Controller.compiled`)."""
        row = [self.amplitude_ma, self.frequency_hz, self.pulse_width_us]
        return twin_program(TWIN_KIND, row, np.zeros((self.n_, 1)))

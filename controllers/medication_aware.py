"""Stimulation that follows the medication state: back off while a drug acts.

Patients on adaptive DBS keep taking levodopa; while a dose acts the
pathological beta rhythm weakens by itself and stimulation can be reduced,
and as it wears off stimulation must return (Little et al. 2013; Arlotti et
al. 2018 ran aDBS through the levodopa cycle). :class:`MedicationAware` reads
the drug layer's effect (``drugs_<drug>_effect``, a feature the loop hands
to every controller when the experiment has a ``drugs:`` block; see
:mod:`closedloop.drugs.process`) and scales an on/off stimulation by how far
the drug is from full effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from closedloop.controllers.base import Controller, check_settings, fill_doc, fixed_command
from closedloop.controllers.base import real_parameter as _real

__all__ = ["MedicationAware"]

_REFS = (
    "Little S. et al. (2013). Adaptive deep brain stimulation in advanced Parkinson "
    "disease. Annals of Neurology 74(3):449-457.",
    "Arlotti M. et al. (2018). Eight-hours adaptive deep brain stimulation in patients "
    "with Parkinson disease. Neurology 90(11):e971-e976.",
)


@fill_doc
class MedicationAware(Controller):
    """On/off stimulation scaled down while a drug acts.

    Parameters
    ----------
    drug : str, default "levodopa"
        Name of the drug in the experiment's ``drugs.agents``.
    threshold : float or None, default None
        Biomarker level above which stimulation is on, biomarker units; None
        stimulates whatever the biomarker (the drug state alone sets the
        amplitude).
    amplitude_ma : float, default 2.5
        Amplitude with no drug effect, mA, non-negative.
    full_effect : float, default 0.8
        Drug effect (0 to 1) at and above which stimulation is off.
    %(frequency_hz)s
    %(pulse_width_us)s

    Attributes
    ----------
    %(n_)s
    amplitude_ma_ : ndarray of shape (n,)
        Amplitude commanded at the last update, mA.

    Notes
    -----
    ``amplitude = amplitude_ma * (1 - min(1, effect / full_effect))``, while
    ``biomarker > threshold`` when a threshold is given (else 0). The effect
    is the drug layer's value at its last slow step (held between steps). A
    NaN biomarker or effect switches stimulation off; the device enforces its
    limits on top.
    """

    name: ClassVar[str] = "medication_aware"
    references: ClassVar[tuple[str, ...]] = _REFS

    def __init__(
        self,
        *,
        drug: str = "levodopa",
        threshold: float | None = None,
        amplitude_ma: float = 2.5,
        full_effect: float = 0.8,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 60.0,
    ) -> None:
        self.drug = drug
        self.threshold = threshold
        self.amplitude_ma = amplitude_ma
        self.full_effect = full_effect
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us

    @property
    def required_features(self) -> tuple[str, ...]:  # type: ignore[override]
        """The drug's effect (and the biomarker with a threshold)."""
        effect = f"drugs_{self.drug}_effect"
        return (effect,) if self.threshold is None else ("biomarker", effect)

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters; stimulation off.

        %(reset_parameters)s

        %(reset_raises)s
        """
        if not (isinstance(self.drug, str) and self.drug.isidentifier()):
            raise ValueError(f"drug must be the name of a drug, got {self.drug!r}.")
        self._threshold = (
            None
            if self.threshold is None
            else _real("threshold", self.threshold, "the biomarker's units")
        )
        self._full_effect = _real("full_effect", self.full_effect, "1", "positive")
        settings = check_settings(self, "amplitude_ma", "frequency_hz", "pulse_width_us")
        self._amplitude = settings["amplitude_ma"]
        super().reset(n, rng)
        self.amplitude_ma_ = np.zeros(self.n_)
        self._fixed = fixed_command(self.n_, settings, "frequency_hz", "pulse_width_us")

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Amplitude from the biomarker and the drug's effect.

        Parameters
        ----------
        t : float
            Time at the end of the period, s.
        features : mapping of str to ndarray
            ``drugs_<drug>_effect`` (and ``biomarker`` with a threshold),
            each ``(n,)``.

        %(returns_command)s
        """
        effect = features[f"drugs_{self.drug}_effect"]
        with np.errstate(invalid="ignore"):
            scale = 1.0 - np.minimum(1.0, np.maximum(effect, 0.0) / self._full_effect)
            on = np.isfinite(scale)
            if self._threshold is not None:
                on &= features["biomarker"] > self._threshold
            amp = np.where(on, self._amplitude * scale, 0.0)
        self.amplitude_ma_ = amp
        return {"amplitude_ma": amp.copy(), **self._fixed}

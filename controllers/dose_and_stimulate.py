"""Closed-loop dosing and stimulation together: when to dose, and how much to stimulate.

:class:`DoseAndStimulate` asks for a dose of a drug when its plasma
concentration (``drugs_<drug>_plasma_ng_ml``, a feature the loop hands to
every controller with a ``drugs:`` block) falls below a trough level, and
stimulates like :class:`~closedloop.controllers.medication_aware.MedicationAware`
in between. The dose goes out through the command key ``dose_<drug>_mg``;
the drug layer gives it only within the drug's safety limits (maximum single
dose, minimum interval, maximum over 24 h), and counts and logs a refusal.
Concentration-guided redosing is the logic of therapeutic drug monitoring
and of the plasma-level-triggered levodopa infusions of Nutt et al. (1984).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from closedloop.controllers.base import Controller, check_settings, fill_doc, fixed_command
from closedloop.controllers.base import real_parameter as _real

__all__ = ["DoseAndStimulate"]


@fill_doc
class DoseAndStimulate(Controller):
    """Dose when the plasma level falls below a trough; stimulate by the drug's effect.

    Parameters
    ----------
    drug : str, default "levodopa"
        Name of the drug in the experiment's ``drugs.agents``.
    dose_mg : float, default 100.0
        Amount asked for per dose, mg, positive.
    route : str, default "oral"
        ``"oral"`` or ``"iv"``.
    trough_ng_ml : float, default 300.0
        Plasma concentration below which a dose is asked for, ng/mL.
    threshold : float, default 40.0
        Biomarker level above which stimulation is on, biomarker units.
    amplitude_ma : float, default 2.5
        Amplitude with no drug effect, mA, non-negative.
    full_effect : float, default 0.8
        Drug effect (0 to 1) at and above which stimulation is off.
    %(frequency_hz)s
    %(pulse_width_us)s

    Attributes
    ----------
    %(n_)s
    armed_ : ndarray of bool, shape (n,)
        Whether a dose may be asked for: cleared by a request, set again once
        the plasma level has risen above twice the trough (the dose arrived)
        or the layer refused the request.
    doses_asked_ : ndarray of shape (n,)
        Doses asked for so far.

    Notes
    -----
    The drug state is what the layer held at its last slow step, so a dose
    shows in the plasma level only some steps after it was asked for; the
    ``armed_`` flag keeps the controller from asking again meanwhile.
    """

    name: ClassVar[str] = "dose_and_stimulate"
    references: ClassVar[tuple[str, ...]] = (
        "Nutt J.G., Woodward W.R., Hammerstad J.P., Carter J.H., Anderson J.L. (1984). "
        "The 'on-off' phenomenon in Parkinson's disease: relation to levodopa absorption "
        "and transport. New England Journal of Medicine 310(8):483-488.",
    )

    def __init__(
        self,
        *,
        drug: str = "levodopa",
        dose_mg: float = 100.0,
        route: str = "oral",
        trough_ng_ml: float = 300.0,
        threshold: float = 40.0,
        amplitude_ma: float = 2.5,
        full_effect: float = 0.8,
        frequency_hz: float = 130.0,
        pulse_width_us: float = 60.0,
    ) -> None:
        self.drug = drug
        self.dose_mg = dose_mg
        self.route = route
        self.trough_ng_ml = trough_ng_ml
        self.threshold = threshold
        self.amplitude_ma = amplitude_ma
        self.full_effect = full_effect
        self.frequency_hz = frequency_hz
        self.pulse_width_us = pulse_width_us

    @property
    def required_features(self) -> tuple[str, ...]:  # type: ignore[override]
        """The biomarker and the drug's plasma level, effect and refusal count."""
        d = f"drugs_{self.drug}"
        return ("biomarker", f"{d}_plasma_ng_ml", f"{d}_effect", f"{d}_refused")

    def reset(self, n: int, rng: np.random.Generator) -> None:
        """Check the parameters; armed, stimulation off.

        %(reset_parameters)s

        %(reset_raises)s
        """
        if not (isinstance(self.drug, str) and self.drug.isidentifier()):
            raise ValueError(f"drug must be the name of a drug, got {self.drug!r}.")
        if self.route not in ("oral", "iv"):
            raise ValueError(f"route must be 'oral' or 'iv', got {self.route!r}.")
        self._dose = _real("dose_mg", self.dose_mg, "mg", "positive")
        self._trough = _real("trough_ng_ml", self.trough_ng_ml, "ng/mL", "non-negative")
        self._threshold = _real("threshold", self.threshold, "the biomarker's units")
        self._full_effect = _real("full_effect", self.full_effect, "1", "positive")
        settings = check_settings(self, "amplitude_ma", "frequency_hz", "pulse_width_us")
        self._amplitude = settings["amplitude_ma"]
        super().reset(n, rng)
        self.armed_ = np.ones(self.n_, dtype=bool)
        self.doses_asked_ = np.zeros(self.n_)
        self._refused_seen = np.zeros(self.n_)
        self._fixed = fixed_command(self.n_, settings, "frequency_hz", "pulse_width_us")
        self._route = np.full(self.n_, 0.0 if self.route == "oral" else 1.0)

    def update(self, t: float, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A dose request and a stimulation amplitude.

        Parameters
        ----------
        t : float
            Time at the end of the period, s.
        features : mapping of str to ndarray
            See :attr:`required_features`, each ``(n,)``.

        Returns
        -------
        dict of str to ndarray
            ``amplitude_ma``, ``frequency_hz``, ``pulse_width_us``,
            ``dose_<drug>_mg`` (0: no dose) and ``dose_<drug>_route``.
        """
        d = f"drugs_{self.drug}"
        plasma = features[f"{d}_plasma_ng_ml"]
        refused = features[f"{d}_refused"]
        with np.errstate(invalid="ignore"):
            # Re-arm once the last dose has shown up, or was refused.
            self.armed_ |= (plasma > 2.0 * self._trough) | (refused > self._refused_seen)
            self._refused_seen = np.maximum(self._refused_seen, np.nan_to_num(refused))
            ask = self.armed_ & (plasma < self._trough)
            self.armed_ &= ~ask
            self.doses_asked_ += ask
            scale = 1.0 - np.minimum(
                1.0, np.maximum(features[f"{d}_effect"], 0.0) / self._full_effect
            )
            on = features["biomarker"] > self._threshold
            amp = np.where(on & np.isfinite(scale), self._amplitude * scale, 0.0)
        return {
            "amplitude_ma": amp,
            **self._fixed,
            f"dose_{self.drug}_mg": np.where(ask, self._dose, 0.0),
            f"dose_{self.drug}_route": self._route.copy(),
        }

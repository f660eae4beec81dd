"""Closed-loop controllers, importable as ``closedloop.controllers``.

The built-in controllers follow the adaptive deep brain stimulation
literature; :data:`BUILTIN_CONTROLLERS` maps each registry name (as used in an
experiment file) to its class. A user's own controller subclasses
:class:`Controller` and can be checked with
:func:`closedloop.testing.controller.check_controller`.
"""

from closedloop.controllers.base import COMMAND_KEYS, Controller
from closedloop.controllers.bistable_kick import StateKick
from closedloop.controllers.dose_and_stimulate import DoseAndStimulate
from closedloop.controllers.dual_threshold import DualThreshold
from closedloop.controllers.medication_aware import MedicationAware
from closedloop.controllers.on_off import OnOff
from closedloop.controllers.open_loop import OpenLoop
from closedloop.controllers.phase_locked import PhaseLocked
from closedloop.controllers.pid import PID
from closedloop.controllers.responsive import Responsive
from closedloop.controllers.symptom_triggered import SymptomTriggered
from closedloop.controllers.tms_sessions import TMSSessions

__all__ = [
    "BUILTIN_CONTROLLERS",
    "COMMAND_KEYS",
    "PID",
    "Controller",
    "DoseAndStimulate",
    "DualThreshold",
    "MedicationAware",
    "OnOff",
    "OpenLoop",
    "PhaseLocked",
    "Responsive",
    "StateKick",
    "SymptomTriggered",
    "TMSSessions",
]

#: Registry name to class of every built-in controller.
BUILTIN_CONTROLLERS: dict[str, type[Controller]] = {
    cls.name: cls
    for cls in (
        OpenLoop,
        OnOff,
        DualThreshold,
        PID,
        Responsive,
        PhaseLocked,
        StateKick,
        MedicationAware,
        DoseAndStimulate,
        SymptomTriggered,
        TMSSessions,
    )
}

"""The virtual stimulator: turns controller commands into the delivered waveform.

A package split by concept:

- :mod:`~closedloop.device.layout`: the columns of the per-instance parameter,
  state and command arrays, :class:`DeviceState`, totals;
- :mod:`~closedloop.device.config`: :class:`Device`, the configuration and its
  limits;
- :mod:`~closedloop.device.queue`: the compiled command queue (the latency);
- :mod:`~closedloop.device.kernels`: ``device_fill``, which dispatches on the
  modality, and the DBS/VNS pulse kernel (biphasic pulses, Shannon's charge
  limit, TEED, trigger lock-out and daily caps), documented there with their
  sources;
- :mod:`~closedloop.device.tms`, :mod:`~closedloop.device.tes`,
  :mod:`~closedloop.device.vns`: each modality's settings (``device.tms``
  ...), limits, sources and mapping to model input;
- :mod:`~closedloop.device.dose`: each modality's dose metrics;
- :mod:`~closedloop.device.commands`: which command key each modality reads
  in the amplitude slot (TMS: ``intensity_pct_rmt``), asked through
  ``Device.commands``.

Everything ``closedloop.device`` exported before the split is re-exported here.
"""

from __future__ import annotations

from closedloop.device.config import Device
from closedloop.device.kernels import (
    apply_command,
    device_fill,
    device_record,
    pulse_fill,
    queue_push,
    queue_push_one,
    trigger_refused,
)
from closedloop.device.layout import (
    DEVICE_STATE,
    DeviceState,
    device_targets,
    device_totals,
    retract_commands,
)

__all__ = [
    "DEVICE_STATE",
    "Device",
    "DeviceState",
    "apply_command",
    "device_targets",
    "trigger_refused",
    "device_totals",
    "retract_commands",
    "device_fill",
    "device_record",
    "pulse_fill",
    "queue_push",
    "queue_push_one",
]

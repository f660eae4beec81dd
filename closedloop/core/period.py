"""The model-independent part of a control period, shared by every model kernel.

Numba cannot cache a kernel that takes or closes over another compiled
function, so each model module keeps its own copy of the batch loops around
its ``advance_one`` (:mod:`closedloop.core.batch_kernels`); everything after
the model step lives here, once.
"""

from __future__ import annotations

from numba import njit

from closedloop.controllers.compiled import controller_update
from closedloop.device import device_record, queue_push_one
from closedloop.sensing.chain import record_features, sense_period

__all__ = ["close_period"]


@njit(cache=True, inline="always")
def close_period(i, k, spp, step_end, device, sensing, io, program, latency_steps, period_s):
    """Sense period ``k`` of instance ``i``, record it, and run a compiled controller.

    ``io`` and ``program`` are the loop's buffers and controller program (see
    :mod:`closedloop.core.loop`); ``step_end`` is the first step after the period.
    """
    drive, net, signal, samples, art, lfp_out, sensed_out, per_period = io
    kind, c_params, c_state = program
    spk = samples.shape[1]
    biomarker = sense_period(
        i, spp, spp // spk, signal, net, samples, art, sensing, lfp_out, sensed_out, k * spk
    )
    per_period[i, 0, k] = biomarker
    device_record(i, device, per_period, k)
    record_features(i, sensing, per_period, k)
    if kind >= 0:  # a compiled controller: its command queued here
        amp, freq, width, pulses = controller_update(
            i, kind, c_params, c_state, biomarker, period_s
        )
        queue_push_one(device, i, amp, freq, width, pulses, step_end + latency_steps)

"""The compiled (Numba) body of the Brian2 loop's network operation.

:func:`loop_operation` is what :class:`closedloop.brian.loop.BrianLoop`
calls at every sensing sample from inside ``Network.run``: it takes the
samples from the network's running integrals and, at the end of a control
period, runs the project's sensing chain, records, runs a compiled
controller twin and lets the device fill the drive of the next period, in
one call for the whole batch. See the notes of :mod:`closedloop.brian.loop`.
"""

from __future__ import annotations

import math

from closedloop.controllers.compiled import controller_update
from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit
from closedloop.core.record import TRIGGER_BIOMARKER_ROW
from closedloop.device import device_fill, device_record, queue_push, queue_push_one
from closedloop.sensing.kernels import no_feature_output, record_features, sense_samples

__all__ = ["loop_operation"]


@njit(cache=True)
def loop_operation(
    take,
    cums,
    blocks,
    prev,
    scales,
    inv_sample,
    buf,
    slot,
    end,
    n_loop,
    spk,
    sps,
    step,
    dt,
    device,
    sensing,
    io,
    out_col,
    per_col,
    program,
    latency,
    period_s,
    fill,
    spp,
    ring,
    ring_offset,
    command,
    effective,
):
    """One call of the network operation: sample, end a period, fill the next.

    ``buf[s, i, slot]`` receives source ``s``'s sample for instance ``i``:
    the increment since the previous sample of the sum of the running
    integrals ``cums[s]`` over the instance's ``blocks[s]`` consecutive rows.
    With ``end``, the period in ``buf`` is sensed, recorded (columns
    ``out_col`` at the sensing rate, ``per_col`` at the control rate) and a
    compiled controller's command queued for step ``step + latency``. With
    ``fill``, ``command`` is queued (from ``effective`` on, if not negative)
    and the device fills the ``spp`` steps from ``step`` into the flat
    ``ring`` (row ``step % spp``, column ``instance``).
    """
    lfp_out, sensed_out, base_out, rate_out, per_period, art, net, drive = io
    n_tot = buf.shape[1]
    if take:
        for s in range(len(cums)):
            c = cums[s]
            block = blocks[s]
            scale = scales[s] * inv_sample
            for i in range(n_tot):
                v = 0.0
                for k in range(i * block, (i + 1) * block):
                    v += c[k]
                buf[s, i, slot] = (v - prev[s, i]) * scale
                prev[s, i] = v
    if end:
        kind, c_params, c_state = program
        signal = buf[0]
        empty = signal[:, :0]
        no_features = no_feature_output(sensing)
        inv_sps = 1.0 / sps
        for i in range(n_loop):
            for k in range(spk):
                acc = 0.0
                for j in range(k * sps, (k + 1) * sps):
                    acc += net[i, j]
                art[i, k] = acc * inv_sps
                lfp_out[i, out_col + k] = signal[i, k]
            env = sense_samples(
                i, signal, art, 0, spk, sensing, sensed_out, empty, empty, no_features, out_col
            )
            per_period[i, 0, per_col] = env
            device_record(i, device, per_period, per_col)
            record_features(i, sensing, per_period, per_col)
            if kind >= 0:
                amp, freq, width, pulses = controller_update(
                    i, kind, c_params, c_state, env, period_s
                )
                queue_push_one(device, i, amp, freq, width, pulses, step + latency)
                if pulses > 0.0 and math.isfinite(pulses):
                    per_period[i, TRIGGER_BIOMARKER_ROW, per_col] = env
            for s in range(1, buf.shape[0]):
                for k in range(spk):
                    rate_out[s - 1, i, out_col + k] = buf[s, i, k]
        for i in range(n_loop, n_tot):
            for k in range(spk):
                base_out[i - n_loop, out_col + k] = signal[i, k]
    if fill:
        queue_push(device, command, effective)
        for i in range(n_loop):
            device_fill(i, spp, step, dt, device, drive, net)
            for j in range(spp):
                ring[((ring_offset + j) % spp) * n_tot + i] = drive[i, j]

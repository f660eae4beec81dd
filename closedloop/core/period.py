"""The model-independent part of a control period, shared by every model kernel.

Numba cannot cache a kernel that takes or closes over another compiled
function, so each model module keeps its own copy of the batch loops around
its ``advance_one`` (:mod:`closedloop.core.batch_kernels`); everything after
the model step lives here, once.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from closedloop.controllers.compiled import controller_update
from closedloop.core.jit import njit
from closedloop.core.pool import unpack
from closedloop.core.record import BIOMARKER_ROW, TRIGGER_BIOMARKER_ROW
from closedloop.device import DeviceState, device_record, queue_push_one
from closedloop.device.layout import P_MODALITY, TES, TMS
from closedloop.sensing.kernels import (
    SensingState,
    plain_chain,
    plain_sense,
    record_features,
    sense_period,
)

__all__ = [
    "PACKED",
    "PeriodIO",
    "PeriodRecord",
    "PeriodScratch",
    "ProgramArrays",
    "close_period",
    "close_plain_period",
    "general_periods",
    "plain_state",
    "unpack_period",
]


class PeriodIO(NamedTuple):
    """The loop's buffers for a chunk of periods, each with one row per instance.

    The first five are scratch for one period; the last three receive the
    chunk's record. The models' batch loops read ``io[0]``, ``io[1]`` and
    ``io[2]`` (drive, net, signal) by position: keep them first.
    """

    drive: np.ndarray  #: (n, spp): cathodic current per integration step, mA
    net: np.ndarray  #: (n, spp): net current per step, mA (the artefact's source)
    signal: np.ndarray  #: (n, spp): the model signal per step
    samples: np.ndarray  #: (n, spk): the signal per sensing sample
    art: np.ndarray  #: (n, spk): net current per sensing sample, mA
    lfp_out: np.ndarray  #: (n, m * spk): the sampled signal of the chunk
    sensed_out: np.ndarray  #: (n, m * spk): after sensor noise and artefact
    per_period: np.ndarray  #: (n, rows, m): rows of :mod:`closedloop.core.record`


class PeriodScratch(NamedTuple):
    """The scratch part of :class:`PeriodIO`, made once per :meth:`reset`."""

    drive: np.ndarray
    net: np.ndarray
    signal: np.ndarray
    samples: np.ndarray
    art: np.ndarray


class PeriodRecord(NamedTuple):
    """The record part of :class:`PeriodIO`, made once per chunk."""

    lfp_out: np.ndarray
    sensed_out: np.ndarray
    per_period: np.ndarray


class ProgramArrays(NamedTuple):
    """A controller program ``(kind, params, state)`` (:mod:`closedloop.core.loop`), packable."""

    kind: int
    params: np.ndarray
    state: np.ndarray


#: What the loop packs into its state pool (:func:`closedloop.core.pool.pack`),
#: in this order; a chunk's :class:`PeriodRecord` has a pool of its own.
PACKED = (DeviceState, SensingState, PeriodScratch, ProgramArrays)


@njit(cache=True, inline="always")
def unpack_period(pool, record):
    """Device, sensing state, :class:`PeriodIO` and program from the loop's pools.

    ``pool`` packs :data:`PACKED`, ``record`` a :class:`PeriodRecord`; the
    results are views into them (see :mod:`closedloop.core.pool`).
    """
    device = unpack(DeviceState, pool, 0)
    sensing = unpack(SensingState, pool, 1)
    s = unpack(PeriodScratch, pool, 2)
    p = unpack(ProgramArrays, pool, 3)
    r = unpack(PeriodRecord, record, 0)
    io = PeriodIO(s.drive, s.net, s.signal, s.samples, s.art, r.lfp_out, r.sensed_out, r.per_period)
    return device, sensing, io, (p.kind, p.params, p.state)


# Positions of the PeriodIO fields. close_period is inlined into the models'
# per-block loops (a call per period, handing over the sensing tuple, cost
# more than the model's period), and inlined into a parallel loop Numba loses
# writes made through a NamedTuple's attributes (numba#5872, numba#7135): it
# takes io's arrays by position.
_SIGNAL, _NET, _SAMPLES, _ART, _LFP_OUT, _SENSED_OUT, _PER_PERIOD = (
    PeriodIO._fields.index(name)
    for name in ("signal", "net", "samples", "art", "lfp_out", "sensed_out", "per_period")
)


@njit(cache=True, inline="always")
def close_period(i, k, spp, step_end, device, sensing, io, program, latency_steps, period_s):
    """Sense period ``k`` of instance ``i``, record it, and run a compiled controller.

    ``device`` is a :class:`closedloop.device.DeviceState`, ``sensing`` a
    :class:`closedloop.sensing.kernels.SensingState`, ``io`` a
    :class:`PeriodIO` and ``program`` the controller program ``(kind, params,
    state)`` (see :mod:`closedloop.core.loop`); ``step_end`` is the first
    step after the period.
    """
    samples = io[_SAMPLES]
    per_period = io[_PER_PERIOD]
    spk = samples.shape[1]
    biomarker = sense_period(
        i,
        spp,
        spp // spk,
        io[_SIGNAL],
        io[_NET],
        samples,
        io[_ART],
        sensing,
        io[_LFP_OUT],
        io[_SENSED_OUT],
        k * spk,
    )
    record_features(i, sensing, per_period, k)
    _record_and_control(
        i, k, step_end, device, per_period, program, biomarker, latency_steps, period_s
    )


@njit(cache=True, inline="always")
def _record_and_control(
    i, k, step_end, device, per_period, program, biomarker, latency_steps, period_s
):
    # The biomarker and what the device delivered to the record, then a
    # compiled controller's command to the queue.
    per_period[i, BIOMARKER_ROW, k] = biomarker
    device_record(i, device, per_period, k)
    kind, c_params, c_state = program
    # The biomarker that fired a burst, NaN if none (a Python controller's
    # answer is written by the loop after update()).
    trigger = math.nan
    if kind >= 0:  # a compiled controller: its command queued here
        amp, freq, width, pulses = controller_update(
            i, kind, c_params, c_state, biomarker, period_s
        )
        queue_push_one(device, i, amp, freq, width, pulses, step_end + latency_steps)
        if pulses > 0.0 and math.isfinite(pulses):
            trigger = biomarker
    per_period[i, TRIGGER_BIOMARKER_ROW, k] = trigger


def general_periods(device: DeviceState, sensing: SensingState) -> bool | None:
    """The period kernels' ``general`` argument: None when every period is plain.

    A plain period is a pulse train (DBS, VNS) sensed by the plain chain
    (:func:`closedloop.sensing.kernels.plain_chain`), the default loop. The
    models' period kernels run plain periods with
    :func:`closedloop.device.pulse_fill` and :func:`close_plain_period` in a
    loop of their own: with the other modalities' fills and the general
    chain's code in the same loop, a period of the default loop ran about 1.5
    times slower, though that code never ran (issue 18, gap 1). Passed as
    ``None`` (``general is None`` in the kernels is settled when Numba types
    them) the general period's code is not compiled at all: a cold first run
    of the default experiment compiles about a third of what it did (gap 4).

    Parameters
    ----------
    device : closedloop.device.DeviceState
        The loop's device state (its modality per instance).
    sensing : closedloop.sensing.kernels.SensingState
        The loop's sensing state.

    Returns
    -------
    bool or None
        None when every instance's periods are plain, True otherwise (every
        instance then runs the general period, which gives plain periods the
        same results).
    """
    modes = device.params[:, P_MODALITY]
    plain = plain_chain(sensing) and not np.any((modes == TMS) | (modes == TES))
    return None if plain else True


@njit(cache=True, inline="always")
def plain_state(sensing, io, spp):
    """What :func:`close_plain_period` reads, taken out of the state tuples once.

    The chain's samples per period ``spk``, steps per sample ``sps`` and
    ``1 / sps``, its artefact gain, sensor noise and random states,
    band-pass, ARV window and scalars, and
    the arrays of ``io`` it reads and writes (:class:`PeriodIO`'s order).
    Taken out once per instance, not in each period: read from the tuples
    inside the period loop they made the plain period a fifth slower (issue
    18, gap 1).
    """
    spk = io[_SAMPLES].shape[1]
    sps = spp // spk
    return (
        spk,
        sps,
        1.0 / sps,
        sensing.artifact_gain,
        sensing.noise_std,
        sensing.rng,
        sensing.sos,
        sensing.zi,
        sensing.env_ring,
        sensing.envelope,
        io[_SIGNAL],
        io[_NET],
        io[_SAMPLES],
        io[_ART],
        io[_LFP_OUT],
        io[_SENSED_OUT],
        io[_PER_PERIOD],
    )


@njit(cache=True, inline="always")
def close_plain_period(i, k, step_end, device, state, program, latency_steps, period_s):
    """:func:`close_period` for a plain period (:func:`general_periods`): the same results.

    ``state`` is :func:`plain_state`'s.
    """
    spk, sps, inv, gain, noise, rng, sos, zi, ring, scalars = state[:10]
    signal, net, samples, art, lfp_out, sensed_out, per_period = state[10:]
    biomarker = plain_sense(
        i,
        spk,
        sps,
        inv,
        signal,
        net,
        samples,
        art,
        gain,
        noise,
        rng,
        sos,
        zi,
        ring,
        scalars,
        lfp_out,
        sensed_out,
        k * spk,
    )
    _record_and_control(
        i, k, step_end, device, per_period, program, biomarker, latency_steps, period_s
    )

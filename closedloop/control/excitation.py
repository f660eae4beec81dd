"""Excitation for system identification: binary-noise modulated pulse trains.

Yang et al. 2018 identify a stimulated network by modulating a pulse
train's amplitude or frequency with a binary noise (BN) signal: the setting
switches between two levels at random, and BN is optimal among inputs that
respect a peak (safety) bound. Their generalised binary noise (GBN, after
Tulleken 1990) switches at each period with a probability ``p_switch``,
which sets the mean dwell time ``period / p_switch`` and so the band of the
excitation; a slow plant is identified faster with a larger mean dwell.

Here a design is a sequence of command settings, one per control period,
shape ``(n, n_periods)``, for :func:`closedloop.control.collect.collect`.
Its levels are checked against the device: an amplitude above what the
device delivers at the pulse width (its amplitude limit or Shannon's charge
density limit) raises, so the design says what the plant actually received.
"""

from __future__ import annotations

import numpy as np

from closedloop.device import Device

__all__ = ["binary_noise", "check_levels", "generalized_binary_noise"]


def generalized_binary_noise(
    n_periods: int,
    levels: tuple[float, float],
    p_switch: float,
    rng: np.random.Generator,
    *,
    n: int = 1,
    min_dwell: int = 1,
) -> np.ndarray:
    """A GBN sequence: switch between two levels with probability ``p_switch`` per period.

    Parameters
    ----------
    n_periods : int
        Control periods.
    levels : tuple of float
        The two levels (e.g. mA, or Hz for frequency modulation).
    p_switch : float
        Switching probability per period, in (0, 1]; 0.5 with ``min_dwell = 1``
        is white binary noise.
    rng : numpy.random.Generator
        Source of the switching times.
    n : int
        Independent sequences (instances).
    min_dwell : int
        Periods a level is held at least (the BN clock of Yang et al. 2018).

    Returns
    -------
    ndarray, shape (n, n_periods)

    References
    ----------
    Tulleken 1990, Automatica 26:37-49 (GBN; recalled, not checked). Yang et al.
    2018, J Neural Eng 15(6), doi 10.1088/1741-2552/aad1a8 (BN-modulated pulse
    trains for brain stimulation).
    """
    if not (0.0 < p_switch <= 1.0):
        raise ValueError(f"p_switch must lie in (0, 1], got {p_switch!r}")
    if int(min_dwell) != min_dwell or min_dwell < 1:
        raise ValueError(f"min_dwell must be a positive whole number of periods, got {min_dwell!r}")
    low, high = (float(v) for v in levels)
    out = np.empty((n, int(n_periods)))
    state = rng.integers(0, 2, n).astype(bool)
    held = np.zeros(n, dtype=np.int64)
    for k in range(int(n_periods)):
        flip = (held >= min_dwell) & (rng.random(n) < p_switch)
        state = np.where(flip, ~state, state)
        held = np.where(flip, 1, held + 1)
        out[:, k] = np.where(state, high, low)
    return out


def binary_noise(
    n_periods: int,
    levels: tuple[float, float],
    rng: np.random.Generator,
    *,
    n: int = 1,
    dwell: int = 1,
) -> np.ndarray:
    """A BN sequence: a fair random level held for ``dwell`` periods at a time.

    Parameters
    ----------
    n_periods : int
        Control periods.
    levels : tuple of float
        The two levels.
    rng : numpy.random.Generator
        Source of the levels.
    n : int
        Independent sequences.
    dwell : int
        Periods per BN clock tick.

    Returns
    -------
    ndarray, shape (n, n_periods)
    """
    if int(dwell) != dwell or dwell < 1:
        raise ValueError(f"dwell must be a positive whole number of periods, got {dwell!r}")
    ticks = -(-int(n_periods) // int(dwell))
    draws = rng.integers(0, 2, (n, ticks)).astype(bool)
    low, high = (float(v) for v in levels)
    return np.where(np.repeat(draws, dwell, axis=1)[:, :n_periods], high, low)


def check_levels(
    device: Device, key: str, values: np.ndarray, *, pulse_width_us: float = 60.0
) -> None:
    """Raise ValueError when a design asks for what ``device`` would not deliver.

    Parameters
    ----------
    device : Device
        The stimulator.
    key : {"amplitude_ma", "frequency_hz", "pulse_width_us"}
        The modulated setting.
    values : ndarray
        The design.
    pulse_width_us : float
        Pulse width of an amplitude design, us (sets the charge-density limit).
    """
    lo, hi = float(np.min(values)), float(np.max(values))
    if key == "amplitude_ma":
        limit = device.max_amplitude_ma(pulse_width_us)
        if lo < 0 or hi > limit:
            raise ValueError(
                f"amplitude design spans [{lo:g}, {hi:g}] mA; the device delivers [0, {limit:g}] "
                f"mA at {pulse_width_us:g} us (amplitude and charge-density limits)"
            )
    elif key == "frequency_hz":
        if lo < device.frequency_min_hz or hi > device.frequency_max_hz:
            raise ValueError(
                f"frequency design spans [{lo:g}, {hi:g}] Hz, outside the device's "
                f"[{device.frequency_min_hz:g}, {device.frequency_max_hz:g}] Hz"
            )
    elif key == "pulse_width_us":
        if lo < device.pulse_width_min_us or hi > device.pulse_width_max_us:
            raise ValueError(
                f"pulse width design spans [{lo:g}, {hi:g}] us, outside the device's "
                f"[{device.pulse_width_min_us:g}, {device.pulse_width_max_us:g}] us"
            )
    else:
        raise ValueError(
            f"a design modulates amplitude_ma, frequency_hz or pulse_width_us, not {key!r}"
        )

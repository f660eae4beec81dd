"""The plain period (pulse train, plain sensing chain) against the general one and scipy.

The models' period loops run a plain period (DBS or VNS pulses; ARV
envelope, no smoothing, no extra features) through code of their own, and
compile without the general period's code when every period of a run is
plain (:func:`closedloop.core.period.general_periods`, issue 18 gaps 1 and 4). What a user
sees must not depend on which code ran: the same loop with one extra feature
(the general chain) gives the same signals, biomarker and delivered
stimulation bit for bit, and the biomarker is scipy's band-pass followed by
a moving average of the rectified signal.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from closedloop.controllers import PID
from closedloop.core.loop import ClosedLoop
from closedloop.core.period import general_periods
from closedloop.device import Device
from closedloop.device.tes import TESSettings
from closedloop.device.tms import TMSSettings
from closedloop.models import STNGPe
from closedloop.sensing.chain import SensingChain

SERIES = ("lfp", "lfp_sensed", "biomarker", "amplitude", "pulse_width", "pulse_count")


def _loop(chain: SensingChain, n: int, period_s: float, engine: str, device=None) -> ClosedLoop:
    return ClosedLoop(
        STNGPe(dt_s=1e-4, n=n),
        chain,
        device or Device(),
        PID(setpoint=30.0, kp=0.02, ki=0.2, max_amplitude_ma=3.0),
        control_period_s=period_s,
        seed=7,
        engine=engine,
    )


def _run(chain: SensingChain, n: int, period_s: float, engine: str) -> dict[str, np.ndarray]:
    loop = _loop(chain, n, period_s, engine)
    loop.reset()
    assert (general_periods(loop.device_state, loop.sensing_state) is None) == (not chain.features)
    chunks: list[dict[str, np.ndarray]] = []
    loop.run(0.2, chunk_s=0.05, on_chunk=lambda t, d: chunks.append({k: d[k] for k in SERIES}))
    return {k: np.concatenate([c[k] for c in chunks], axis=-1) for k in SERIES}


@pytest.mark.parametrize(
    ("n", "period_s", "rate_hz", "gain", "noise", "engine"),
    [
        (3, 0.001, 1000.0, 0.0, 0.0, "auto"),  # serial kernel, one sample per period
        (40, 0.004, 500.0, 0.2, 0.0, "auto"),  # parallel kernel, 2 samples, artefact
        (5, 0.002, 1000.0, 0.0, 2.0, "auto"),  # sensor noise (the default experiment's)
        (40, 0.002, 1000.0, 0.1, 1.0, "python"),  # a controller in Python, one period a call
    ],
)
def test_plain_period_gives_what_the_general_chain_gives(n, period_s, rate_hz, gain, noise, engine):
    plain = _run(
        SensingChain(rate_hz=rate_hz, artifact_gain=gain, noise_std=noise), n, period_s, engine
    )
    general = _run(
        SensingChain(rate_hz=rate_hz, artifact_gain=gain, noise_std=noise, features=("signal",)),
        n,
        period_s,
        engine,
    )
    assert plain["amplitude"].max() > 0.0  # the controller stimulated
    for name in SERIES:
        np.testing.assert_array_equal(plain[name], general[name], err_msg=name)


def test_plain_biomarker_is_band_pass_then_rectified_moving_average():
    chain = SensingChain(rate_hz=1000.0, artifact_gain=0.1, envelope_window_s=0.05)
    period_s = 0.002
    got = _run(chain, 2, period_s, "auto")
    sos = signal.butter(
        chain.filter_order, chain.band_hz, "bandpass", fs=chain.rate_hz, output="sos"
    )
    y = signal.sosfilt(sos, got["lfp_sensed"], axis=-1)
    width = chain.window_samples(chain.envelope_window_s)
    cum = np.cumsum(np.abs(y), axis=-1)
    lagged = np.concatenate([np.zeros((y.shape[0], width)), cum[:, :-width]], axis=-1)
    arv = (cum - lagged) / np.minimum(np.arange(1, y.shape[1] + 1), width)
    per = int(round(period_s * chain.rate_hz))
    np.testing.assert_allclose(got["biomarker"], arv[:, per - 1 :: per], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("chain", "device", "plain"),
    [
        (SensingChain(noise_std=2.0, artifact_gain=0.3), Device(), True),
        (SensingChain(), Device(modality="vns"), True),
        (SensingChain(features=("signal",)), Device(), False),
        (SensingChain(envelope="power"), Device(), False),
        (SensingChain(smoothing_window_s=0.01), Device(), False),
        (SensingChain(), Device(modality="tms", tms=TMSSettings()), False),
        (SensingChain(), Device(modality="tes", tes=TESSettings()), False),
    ],
)
def test_a_run_is_plain_for_pulse_trains_and_the_plain_chain(chain, device, plain):
    loop = _loop(chain, 2, 0.002, "auto", device)
    loop.reset()
    assert (general_periods(loop.device_state, loop.sensing_state) is None) == plain

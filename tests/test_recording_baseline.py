"""The recorded run's no-stimulation baseline and its burst series (issue 18, gap 2).

The baseline runs through the model's compiled period kernel with the
stimulator at 0 mA (:class:`closedloop.core.baseline.UnstimulatedCopy`); the
references here are the plain open-loop definition: a fresh model from the
same seeds advanced step by step with no input, each sensing sample the mean
of its integration steps, the sensing chain run offline over it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from closedloop.analysis.bursts import BurstSettings, burst_metrics
from closedloop.config import load_config
from closedloop.core.baseline import UnstimulatedCopy
from closedloop.core.random import rng_states
from closedloop.experiment import run_experiment
from closedloop.io import load_run
from closedloop.io.spool import RowSpool

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _plain_baseline(loop, warmup_s: float, n_periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Sampled signal and end-of-period envelope of the unstimulated model, by definition."""
    model = loop.model.like()
    model.reset(loop.model_instance_seeds)
    model.advance(int(round(warmup_s / model.dt_s)))
    model.step_ = 0  # the recorded run starts at t = 0 after the warm-up, as the loop's
    spk, sps = loop.samples_per_period, loop.steps_per_sample
    m = n_periods * spk
    raw = model.advance(m * sps)  # no stimulation
    lfp = raw.reshape(model.n, m, sps).mean(axis=2)
    state = loop.sensing.new_state(model.n, rng_states(loop.seeds.sensor))
    env = loop.sensing.process(state, lfp)["envelope"]
    return lfp, env[:, spk - 1 :: spk]


@pytest.mark.slow  # the first run on a machine compiles three models' kernels
@pytest.mark.parametrize(
    "experiment", ["pd_beta_adbs.yaml", "jr_alpha_tacs.yaml", "mdd_vns_cervical.yaml"]
)
def test_the_unstimulated_copy_is_the_open_loop_model_sensed(experiment: str) -> None:
    # Three devices (DBS, tACS, VNS): at 0 mA none of them may drive the copy.
    exp = load_config(EXPERIMENTS / experiment, ["n_instances=3"])
    loop = exp.loop
    copy = UnstimulatedCopy(loop, loop.model.like())
    loop.reset()
    loop.warm_up(0.3)
    copy.start()
    # Blocks of 7 and 5 periods: the copy resumes where it stopped.
    parts = [copy.advance(7), copy.advance(5)]
    lfp = np.concatenate([p[0] for p in parts], axis=1)
    bio = np.concatenate([p[1] for p in parts], axis=1)
    ref_lfp, ref_bio = _plain_baseline(loop, 0.3, 12)
    # Summation order of a sample's steps differs (sequential here, pairwise
    # in numpy's mean): equal to rounding, relative 1e-12 of the signal's scale.
    np.testing.assert_allclose(lfp, ref_lfp, rtol=0, atol=1e-12 * np.abs(ref_lfp).max())
    np.testing.assert_allclose(bio, ref_bio, rtol=0, atol=1e-12 * np.abs(ref_bio).max())
    assert np.ptp(lfp) > 0 and np.ptp(bio) > 0


def test_a_recorded_run_scores_bursts_against_its_baseline_by_definition(tmp_path: Path) -> None:
    # Burst metrics of the run file against burst_metrics over whole arrays:
    # the recorded biomarker, and the envelope of the recorded lfp_baseline
    # through the same sensing chain (same sensor seeds).
    exp = load_config(
        EXPERIMENTS / "pd_beta_adbs.yaml",
        ["n_instances=3", "duration_s=3.0", "output.figure=false"],
    )
    run = load_run(run_experiment(exp, tmp_path).path)
    loop = exp.loop
    base_lfp = run.timeseries["lfp_baseline"]
    state = loop.sensing.new_state(3, rng_states(loop.seeds.sensor))
    env = loop.sensing.process(state, np.asarray(base_lfp))["envelope"]
    spk = loop.samples_per_period
    skip = int(round(exp.config.metrics.discard_s / loop.control_period_s))
    bio_base = env[:, spk - 1 :: spk][:, skip:]
    bio = np.asarray(run.timeseries["biomarker"])[:, skip:]
    b = exp.config.metrics.bursts
    expected, _ = burst_metrics(
        bio,
        bio_base,
        1.0 / loop.control_period_s,
        BurstSettings(b.percentile, b.min_duration_s, b.long_burst_s),
    )
    for key, value in expected.items():
        np.testing.assert_allclose(run.metrics[key], value, rtol=1e-12, err_msg=key)
    # Stimulation happened, and the baseline is not the stimulated signal.
    assert np.asarray(run.timeseries["amplitude"]).max() > 0
    assert not np.allclose(base_lfp, run.timeseries["lfp"])


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_row_spool_gives_back_the_columns_it_was_given(in_memory: bool) -> None:
    rng = np.random.default_rng(0)
    n = 5
    spool = RowSpool(n, in_memory=in_memory, buffer_bytes=8 * n * 6)
    blocks = [rng.normal(size=(n, k)) for k in (3, 1, 7, 0, 2, 11, 4)]
    for block in blocks:
        spool.append(block)
        block[:] = np.nan  # the spool keeps its own copy
    rng = np.random.default_rng(0)  # the same blocks again
    whole = np.concatenate([rng.normal(size=(n, k)) for k in (3, 1, 7, 0, 2, 11, 4)], axis=1)
    assert spool.columns == whole.shape[1]
    np.testing.assert_array_equal(spool.rows(0, n), whole)
    np.testing.assert_array_equal(spool.rows(2, 4), whole[2:4])
    ranges = list(spool.row_blocks(1, n))
    assert ranges[0][0] == 1 and ranges[-1][1] == n
    assert all(a1 == b0 for (_, b0), (a1, _) in zip(ranges[:-1], ranges[1:], strict=True))
    # Each block fits the buffer: one row of 28 columns is 224 bytes of 240.
    assert all((b - a) * 8 * whole.shape[1] <= 8 * n * 6 for a, b in ranges)
    spool.close()


def test_a_row_spool_refuses_a_block_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"expected shape \(4, k\)"):
        RowSpool(4, in_memory=True).append(np.zeros((3, 2)))


def test_peak_rss_sees_a_block_allocated_and_freed_inside() -> None:
    from closedloop.bench.perf_memory import PeakRSS, rss_mib

    # Blocks above glibc's largest mmap threshold (32 MiB): fresh pages each
    # time, whatever earlier tests left in the heap.
    with PeakRSS() as peak:
        before = rss_mib()
        block = np.ones(80 * 2**20 // 8)
        time.sleep(0.1)  # held for a few samples (every 5 ms)
        del block
        peak.restart()  # forgets it
        block = np.ones(40 * 2**20 // 8)
        time.sleep(0.1)
        del block
    assert 36 <= peak.peak - before <= 70

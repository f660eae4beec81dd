"""Parameter sweeps end to end: expansion, batching, workers, Dask, crashes, summaries.

Everything here is real: sweeps run on real worker processes (the local pool
and a Dask LocalCluster of worker processes), write real HDF5 files, and the
crash tests SIGKILL and SIGINT a real ``closedloop sweep`` subprocess.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from closedloop.cli.main import main
from closedloop.config import ConfigError, validate_config
from closedloop.controllers import DualThreshold
from closedloop.io import load_run
from closedloop.sweep.executors import LocalPool
from closedloop.sweep.plan import (
    OUTPUT_ONLY_KEYS,
    derive_seed,
    expand_sweep,
    make_tasks,
    run_id_of,
)
from closedloop.sweep.spec import drop_key_path, set_key_path
from closedloop.sweep.summary import load_summary, load_summary_meta, pareto_front

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: A short experiment (1 s of closed loop, no figure) with a 12-run sweep:
#: 2 coupling strengths x 3 zipped threshold pairs x 2 noise seeds.
BASE = {
    "name": "sweep_test",
    "seed": 3,
    "duration_s": 1.0,
    "warmup_s": 0.1,
    "model": {"name": "stn_gpe", "dt_s": 1.0e-4, "regime": "parkinsonian_limit_cycle"},
    "sensing": {"rate_hz": 1000.0, "noise_std": 2.0, "envelope": "arv"},
    "controller": {
        "name": "dual_threshold",
        "params": {"lower_threshold": 25.0, "upper_threshold": 35.0, "ramp_up_ma_per_s": 2.0},
    },
    "metrics": {"discard_s": 0.25, "segment_s": 0.25},
    "output": {"figure": False},
    "sweep": {
        "replicates": 2,
        "grid": {"model.params.w_GS": [9.0, 11.0]},
        "zip": [
            {
                "controller.params.lower_threshold": [20.0, 30.0, 40.0],
                "controller.params.upper_threshold": {"start": 30.0, "stop": 50.0, "step": 10.0},
            }
        ],
    },
}
N_RUNS = 12


class Flaky(DualThreshold):
    """Dual threshold that, on request, raises or kills its own process mid-run."""

    def __init__(self, *, fail: str = "none", **params) -> None:
        super().__init__(**params)
        self.fail = fail

    def compiled(self):  # keep update() in Python, where it can fail
        return None

    def update(self, t, features):
        if t > 0.3 and self.fail == "raise":
            raise RuntimeError("controller gave up at t > 0.3 s")
        if t > 0.3 and self.fail == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        return super().update(t, features)


def write_config(path: Path, **changes) -> Path:
    config = json.loads(json.dumps(BASE))
    config.update(changes)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def summary_without_wall_time(out_dir: Path) -> dict:
    table = load_summary(out_dir, as_frame=False)
    return {k: v for k, v in table.items() if k != "wall_s"}


def assert_same_table(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        if a[key].dtype == object:
            assert list(a[key]) == list(b[key]), key
        else:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # bit for bit, NaN = NaN


def assert_only_complete_files(out_dir: Path) -> None:
    runs = out_dir / "runs"
    names = [p.name for p in runs.iterdir() if p.name != ".tmp"]
    assert all(name.endswith(".h5") for name in names), names
    assert not list(runs.glob("**/*.partial"))
    assert not list((runs / ".tmp").glob("*")) if (runs / ".tmp").exists() else True
    for path in runs.glob("*.h5"):
        with h5py.File(path, "r") as f:
            assert f.attrs["status"] in ("complete", "failed")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 12-run sweep, uninterrupted, on one worker process."""
    tmp = tmp_path_factory.mktemp("reference")
    config = write_config(tmp / "sweep.yaml")
    out = tmp / "out"
    assert main(["sweep", str(config), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    return config, out


# ----------------------------------------------------------------------- expansion


def test_expansion_of_grid_ranges_zip_random_and_replicates():
    raw = json.loads(json.dumps(BASE))
    raw["sweep"] = {
        "seed": 11,
        "replicates": 3,
        "grid": {
            "model.params.w_GS": {"start": 8.0, "stop": 12.0, "step": 2.0},  # 8, 10, 12
            "model.params.g_DBS": {"start": 1.0e4, "stop": 1.0e6, "num": 3, "log": True},
            "device.ramp_rate_ma_per_s": [5.0, 10.0],  # a device key only set by default
        },
        "zip": {
            "controller.params.lower_threshold": [20.0, 30.0],
            "controller.params.upper_threshold": [35.0, 45.0],
        },
        "random": {
            "n": 2,
            "params": {
                "model.params.sigma_S": {"dist": "uniform", "low": 10.0, "high": 30.0},
                "model.params.C": {"dist": "loguniform", "low": 50.0, "high": 200.0},
                "controller.params.frequency_hz": {"dist": "normal", "mean": 130.0, "std": 5.0},
            },
        },
    }
    plan = expand_sweep(raw, "test")
    assert len(plan.runs) == 3 * 3 * 2 * 2 * 2 * 3
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)
    values = {k: sorted({r.params[k] for r in plan.runs}) for k in plan.param_keys}
    assert values["model.params.w_GS"] == [8.0, 10.0, 12.0]
    assert values["model.params.g_DBS"] == [1.0e4, 1.0e5, 1.0e6]  # a log range
    assert all(10 <= v <= 30 for v in values["model.params.sigma_S"])
    assert all(50 <= v <= 200 for v in values["model.params.C"])
    for run in plan.runs:  # zipped keys vary together
        assert run.params["controller.params.upper_threshold"] == (
            run.params["controller.params.lower_threshold"] + 15.0
        )
    # The values land at their key paths, and the resolved config validates.
    run = plan.runs[-1]
    exp = validate_config(run.config)
    assert exp.loop.device.ramp_rate_ma_per_s == run.params["device.ramp_rate_ma_per_s"]
    assert exp.loop.model.param_values["C"][0] == run.params["model.params.C"]
    assert exp.loop.controller.frequency_hz == run.params["controller.params.frequency_hz"]
    # The run's seed is the one written into its config, one per run.
    assert run.seed == exp.config.seed
    assert len({r.seed for r in plan.runs}) == len(plan.runs)
    again = expand_sweep(json.loads(json.dumps(raw)), "test")
    assert [(r.run_id, r.seed, r.params) for r in again.runs] == [
        (r.run_id, r.seed, r.params) for r in plan.runs
    ]
    # Output-only keys do not change ids; the sweep seed changes ids and draws.
    renamed = json.loads(json.dumps(raw))
    renamed["name"] = "another_name"
    renamed["output"] = {"figure": True, "chunk_s": 0.5}
    assert [r.run_id for r in expand_sweep(renamed).runs] == [r.run_id for r in plan.runs]
    reseeded = json.loads(json.dumps(raw))
    reseeded["sweep"]["seed"] = 12
    other = expand_sweep(reseeded)
    assert not {r.run_id for r in other.runs} & {r.run_id for r in plan.runs}
    assert not {r.seed for r in other.runs} & {r.seed for r in plan.runs}


RANDOM_KEYS = ("model.params.sigma_S", "model.params.C", "controller.params.frequency_hz")


def _random_draws(sweep_seed: int | None, experiment_seed: int = 3) -> list[tuple[float, ...]]:
    """The random axis' draws of a sweep, in run order, one tuple per draw."""
    raw = json.loads(json.dumps(BASE))
    raw["seed"] = experiment_seed
    raw["sweep"] = {
        "random": {
            "n": 6,
            "params": {
                "model.params.sigma_S": {"dist": "uniform", "low": 10.0, "high": 30.0},
                "model.params.C": {"dist": "loguniform", "low": 50.0, "high": 200.0},
                "controller.params.frequency_hz": {"dist": "normal", "mean": 130.0, "std": 5.0},
            },
        }
    }
    if sweep_seed is not None:
        raw["sweep"]["seed"] = sweep_seed
    plan = expand_sweep(raw)
    return [tuple(r.params[k] for k in RANDOM_KEYS) for r in plan.runs]


def test_random_draws_repeat_for_one_sweep_seed_and_differ_between_seeds():
    draws = _random_draws(11)
    assert len(set(draws)) == 6  # six distinct joint draws
    assert _random_draws(11) == draws  # the same seed draws the same values
    # ... whatever the experiment's own seed when the block gives one,
    assert _random_draws(11, experiment_seed=99) == draws
    # and any other sweep seed draws other values, for every parameter.
    for seed in (0, 12, 2**40):
        other = _random_draws(seed)
        for k in range(len(RANDOM_KEYS)):
            assert not {d[k] for d in other} & {d[k] for d in draws}, (seed, RANDOM_KEYS[k])
    # Without a sweep seed the experiment's seed is the sweep seed.
    assert _random_draws(None, experiment_seed=11) == draws
    assert _random_draws(None, experiment_seed=12) == _random_draws(12)


#: Keys that only change what is written, as documented in closedloop.sweep.plan.
OUTPUT_ONLY = {"name", "description", "output.figure", "output.chunk_s", "output.format"}


def _leaf_keys() -> dict[str, object]:
    """Every settable key of the test experiment, with the value a run resolves it to."""
    raw = {k: v for k, v in BASE.items() if k != "sweep"}
    resolved = validate_config(raw).resolved_dict()
    leaves: dict[str, object] = {}

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if path == "model.resolved_params":  # set through model.params
                for name, values in value.items():
                    leaves[f"model.params.{name}"] = values[0]
            elif isinstance(value, dict) and value:
                walk(value, path + ".")
            elif value is not None and value != {}:
                leaves[path] = value

    walk(resolved, "")
    return leaves


LEAVES = _leaf_keys()


def _changed(value: object, data) -> object:
    """A value of the same kind as ``value`` and different from it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + data.draw(st.integers(1, 10**6))
    if isinstance(value, float):
        return data.draw(
            st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != value)
        )
    if isinstance(value, str):
        return value + data.draw(st.text(min_size=1, max_size=8))
    if isinstance(value, list):
        return [*value, 1.0] if not value or isinstance(value[0], float) else [*value, "x"]
    raise AssertionError(f"no change for {value!r}")


def test_output_only_keys_are_the_documented_ones():
    assert set(OUTPUT_ONLY_KEYS) == OUTPUT_ONLY
    # These are real keys of the experiment (a typo would drop nothing).
    assert OUTPUT_ONLY <= set(LEAVES)
    assert {"output.record_baseline", "duration_s", "seed"} <= set(LEAVES) - OUTPUT_ONLY


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(sorted(LEAVES)), data=st.data())
@example(key="output.record_baseline", data=None)
@example(key="duration_s", data=None)
def test_any_result_changing_key_changes_the_run_id_and_output_only_keys_do_not(key, data):
    config = {k: v for k, v in BASE.items() if k != "sweep"}
    config = json.loads(json.dumps(config))
    value = LEAVES[key]
    if data is None:  # the pinned examples
        new = {"output.record_baseline": False, "duration_s": 1.5}[key]
    else:
        new = _changed(value, data)
    changed = json.loads(json.dumps(config))
    set_key_path(changed, key, new)
    before, after = run_id_of(config, 0, 7), run_id_of(changed, 0, 7)
    if key in OUTPUT_ONLY:
        assert after == before, key
    else:
        assert after != before, (key, value, new)
    # The replicate and the sweep seed are part of the id too.
    assert len({before, run_id_of(config, 1, 7), run_id_of(config, 0, 8)}) == 3


def test_a_run_seed_is_the_documented_seed_sequence_draw_and_every_id_digit_counts():
    # plan.py's documented rule: SeedSequence(entropy=sweep_seed, spawn_key=(the
    # id's first 8 hex digits, the next 8)), first 64-bit word, shifted into
    # [0, 2**63). Written out here from numpy so a user can rebuild a run's seed.
    run_id = "0123456789abcdef"
    seq = np.random.SeedSequence(entropy=7, spawn_key=(0x01234567, 0x89ABCDEF))
    assert derive_seed(7, run_id) == int(seq.generate_state(1, np.uint64)[0]) // 2
    # Runs whose ids differ in any one hex digit get different seeds (an id
    # read short would give two runs the same noise), as do other sweep seeds.
    seeds = {derive_seed(7, run_id)}
    for k in range(16):
        other = run_id[:k] + ("0" if run_id[k] != "0" else "1") + run_id[k + 1 :]
        seeds.add(derive_seed(7, other))
    seeds.add(derive_seed(8, run_id))
    assert len(seeds) == 18
    assert all(0 <= s < 2**63 for s in seeds)


def test_set_and_drop_key_path_follow_sections_and_list_indices():
    tree = {"a": {"b": [1.0, {"c": 2.0}, 3.0]}, "x": 5}
    set_key_path(tree, "a.b.2", 9.0)  # a list element, by index
    set_key_path(tree, "a.b.1.c", 8.0)  # a key inside a list element
    set_key_path(tree, "a.b.1.d.e", 7.0)  # and a section under it, created
    set_key_path(tree, "n.m.k", [1])  # missing sections are created
    set_key_path(tree, "x.y", 4)  # a value in the way becomes a section
    expected = {"a": {"b": [1.0, {"c": 8.0, "d": {"e": 7.0}}, 9.0]}, "x": {"y": 4}}
    assert tree == {**expected, "n": {"m": {"k": [1]}}}
    value = [1.0, 2.0]
    set_key_path(tree, "n.v", value)
    value.append(3.0)  # the tree holds a copy
    assert tree["n"]["v"] == [1.0, 2.0]
    drop_key_path(tree, "a.b.1.c")
    drop_key_path(tree, "n.m")
    drop_key_path(tree, "missing.key")  # nothing there: nothing happens
    drop_key_path(tree, "a.b.0.c")  # a number in the way: nothing happens
    assert tree == {
        "a": {"b": [1.0, {"d": {"e": 7.0}}, 9.0]},
        "x": {"y": 4},
        "n": {"v": [1.0, 2.0]},
    }


def test_a_run_id_is_16_hex_digits_of_the_config_whatever_its_key_order():
    config = {k: v for k, v in BASE.items() if k not in ("sweep", "output")}
    run_id = run_id_of(config, 0, 7)
    assert len(run_id) == 16 and int(run_id, 16) >= 0
    # The same config written in another key order is the same run.
    reordered = json.loads(json.dumps(dict(reversed(list(config.items())))))
    reordered["model"] = dict(reversed(list(reordered["model"].items())))
    assert list(reordered) != list(config)
    assert run_id_of(reordered, 0, 7) == run_id
    # An output section of output-only keys is no output section at all.
    only_output = {**config, "output": {"figure": False, "chunk_s": 0.5, "format": "hdf5"}}
    assert run_id_of(only_output, 0, 7) == run_id
    assert run_id_of({**config, "output": {"record_baseline": False}}, 0, 7) != run_id


def test_a_sweep_over_a_result_changing_output_key_runs_each_value():
    raw = json.loads(json.dumps(BASE))
    raw["sweep"] = {"grid": {"output.record_baseline": [True, False]}}
    plan = expand_sweep(raw)
    assert len(plan.runs) == 2 and plan.n_duplicates == 0
    assert len({r.run_id for r in plan.runs}) == 2
    # An output-only key resolves both values to one run.
    raw["sweep"] = {"grid": {"output.chunk_s": [0.5, 1.0], "model.params.w_GS": [9.0, 11.0]}}
    plan = expand_sweep(raw)
    assert len(plan.runs) == 2 and plan.n_duplicates == 2


def test_batches_group_runs_that_differ_only_in_model_and_controller_params():
    raw = json.loads(json.dumps(BASE))
    raw["sweep"]["grid"]["sensing.noise_std"] = [1.0, 2.0]  # not batchable
    plan = expand_sweep(raw)
    tasks = make_tasks(plan.runs, workers=1)
    assert sorted(r.run_id for t in tasks for r in t) == sorted(r.run_id for r in plan.runs)
    for task in tasks:
        assert len({r.config["sensing"]["noise_std"] for r in task}) == 1
    assert max(len(t) for t in tasks) > 1
    assert all(len(t) == 1 for t in make_tasks(plan.runs, workers=2, batch_size=1))


def test_dry_run_prints_run_count_and_first_resolved_configs(tmp_path, capsys):
    config = write_config(tmp_path / "sweep.yaml")
    assert (
        main(["sweep", str(config), "--dry-run", "--show", "2", "--out", str(tmp_path / "o")]) == 0
    )
    out = capsys.readouterr().out
    assert f"{N_RUNS} runs = 2 (model.params.w_GS) x 3 (" in out
    assert out.count("--- run ") == 2
    first = out.split("--- run ")[1]
    assert "w_GS: 9.0" in first and "lower_threshold: 20.0" in first
    assert not (tmp_path / "o").exists()  # nothing ran
    assert main(["validate", str(config)]) == 0
    assert f"sweep: {N_RUNS} runs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("sweep", "where", "says"),
    [
        (
            {"grid": {"controler.params.upper_threshold": [30.0, 40.0]}},
            "sweep.grid.controler.params.upper_threshold",
            "Did you mean 'controller'?",
        ),
        (
            {"grid": {"model.params.w_XY": [1.0]}},
            "sweep.grid.model.params.w_XY",
            "unknown model parameter 'w_XY'",
        ),
        (  # case is ignored, as in every other suggestion
            {"grid": {"model.params.w_gs": [1.0]}},
            "sweep.grid.model.params.w_gs",
            "Did you mean 'w_GS'?",
        ),
        (
            {"grid": {"model.params.w_GS": {"start": 12.0, "stop": 8.0, "step": 1.0}}},
            "sweep.grid.model.params.w_GS",
            "the range is empty",
        ),
        (
            {"grid": {"model.params.w_GS": {"start": 8.0, "stop": 12.0, "num": 0}}},
            "sweep.grid.model.params.w_GS.num",
            "the range is empty",
        ),
        (
            {
                "random": {
                    "n": 4,
                    "params": {"model.params.C": {"dist": "loguniform", "low": 0, "high": 9}},
                }
            },
            "sweep.random.params.model.params.C.low",
            "needs low above 0",
        ),
        (
            {
                "random": {
                    "n": 4,
                    "params": {"model.params.C": {"dist": "normal", "mean": 9, "std": -1}},
                }
            },
            "sweep.random.params.model.params.C.std",
            "must be above 0",
        ),
        (
            {"grid": {"model.params.w_GS": [10.0, -1.0]}},
            "model.params.w_GS",
            "in sweep point 2 (model.params.w_GS=-1.0): model parameter 'w_GS' must lie in",
        ),
    ],
)
def test_bad_sweep_exits_2_naming_the_key_before_any_run(tmp_path, capsys, sweep, where, says):
    config = write_config(tmp_path / "bad.yaml", sweep=sweep)
    out = tmp_path / "out"
    assert main(["sweep", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"closedloop: error: {config}: {where}: " in err
    assert says in err
    assert "Traceback" not in err
    assert not out.exists()


# ----------------------------------------------------------------------- batching


@pytest.mark.parametrize("engine", ["auto", "python"])
def test_batched_runs_equal_the_same_runs_alone_bit_for_bit(tmp_path, engine):
    raw = json.loads(json.dumps(BASE))
    # Compiled controllers: 4 runs x 8 = 32 instances, the parallel kernel;
    # Python controllers: the serial kernel.
    raw["n_instances"] = 8 if engine == "auto" else 2
    raw["control"] = {"engine": engine}
    raw["sweep"] = {
        "grid": {
            "model.params.w_GS": [9.0, 11.0],
            "controller.params.upper_threshold": [30.0, 45.0],
        }
    }
    runs = [r.payload() for r in expand_sweep(raw).runs]
    # In a worker process, as in a sweep (and so that this test process
    # starts no Numba thread pool and can keep forking workers).
    with LocalPool(1) as pool:
        pool.submit(0, {"runs_dir": str(tmp_path / "batched"), "runs": runs})
        for i, run in enumerate(runs, 1):
            pool.submit(i, {"runs_dir": str(tmp_path / "alone"), "runs": [run]})
        results = dict(pool.next_result() for _ in range(len(runs) + 1))
    assert [r["status"] for r in results[0]] == ["complete"] * 4
    assert all(results[i][0]["status"] == "complete" for i in range(1, len(runs) + 1))
    for run in runs:
        a = load_run(tmp_path / "alone" / f"{run['run_id']}.h5")
        b = load_run(tmp_path / "batched" / f"{run['run_id']}.h5")
        assert (a.attrs["batch_size"], b.attrs["batch_size"]) == (1, 4)
        assert a.config == b.config and a.attrs["seed"] == b.attrs["seed"]
        for group in ("metrics", "timeseries", "arrays"):
            for key, value in getattr(a, group).items():
                np.testing.assert_array_equal(getattr(b, group)[key], value, err_msg=key)
        assert np.all(np.isfinite(a.metrics["band_power_reduction"]))


# ----------------------------------------------------------------------- workers


def test_one_worker_and_two_workers_give_bit_identical_results(reference, tmp_path):
    config, ref_out = reference
    ref = summary_without_wall_time(ref_out)
    assert len(ref["run_id"]) == N_RUNS and set(ref["status"]) == {"complete"}
    two = tmp_path / "two"
    assert main(["sweep", str(config), "--out", str(two), "--workers", "2", "--no-progress"]) == 0
    assert_same_table(ref, summary_without_wall_time(two))
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["counts"] == {"complete": N_RUNS, "failed": 0, "pending": 0}
    assert manifest["state"] == "finished"
    entry = manifest["runs"][0]
    assert set(entry) >= {"id", "params", "status", "wall_s", "error"}
    assert entry["wall_s"] > 0


def test_sigkill_partway_then_rerun_equals_an_uninterrupted_sweep(reference, tmp_path, capsys):
    config, ref_out = reference
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "closedloop.cli.main", "sweep", str(config), "--out", str(out),
           "--workers", "1", "--batch-size", "1", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list((out / "runs").glob("*.h5"))) < 3:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    done = sorted(p.name for p in (out / "runs").glob("*.h5"))
    assert 3 <= len(done) < N_RUNS
    time.sleep(0.5)  # its workers died with it: nothing more is written
    assert sorted(p.name for p in (out / "runs").glob("*.h5")) == done
    for name in done:  # what is there is complete
        assert load_run(out / "runs" / name).status == "complete"

    # Run again (with two workers and batches, which must not matter).
    assert main(["sweep", str(config), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    assert f"{len(done)} already done, {N_RUNS - len(done)} to run" in capsys.readouterr().err
    assert_only_complete_files(out)
    table = summary_without_wall_time(out)
    assert len(set(table["run_id"])) == N_RUNS
    assert_same_table(summary_without_wall_time(ref_out), table)


#: ``closedloop sweep ARGS...`` as a foreground job in a terminal runs it: a
#: process started with SIGINT ignored (pytest as a background job, some CI
#: runners) hands that on to its children, and Python then installs no
#: KeyboardInterrupt handler; a shell puts the default back for a foreground job.
FOREGROUND_CLI = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from closedloop.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def test_ctrl_c_stops_cleanly_and_the_manifest_says_what_is_missing(reference, tmp_path):
    config, _ = reference
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", FOREGROUND_CLI, "sweep", str(config), "--out", str(out),
           "--workers", "1", "--batch-size", "1", "--no-progress"]  # fmt: skip
    # Spawned with SIGINT ignored here, as under a background pytest: the
    # check must not depend on how pytest was started.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    while len(list((out / "runs").glob("*.h5"))) < 2:
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert_only_complete_files(out)
    manifest = json.loads((out / "manifest.json").read_text())
    done = {p.stem for p in (out / "runs").glob("*.h5")}
    assert manifest["state"] == "interrupted"
    assert manifest["counts"]["complete"] == len(done)
    assert manifest["counts"]["pending"] == N_RUNS - len(done) > 0
    assert set(manifest["missing"]) == {e["id"] for e in manifest["runs"]} - done
    assert main(["sweep", str(config), "--out", str(out), "--workers", "2", "--no-progress"]) == 0


# ----------------------------------------------------------------------- failures


def test_diverging_runs_are_marked_failed_and_the_rest_complete(tmp_path, capsys):
    # M_S (STN maximal rate) of 1e308 overflows the sigmoid: that run diverges.
    sweep = {
        "replicates": 2,
        "grid": {"model.params.M_S": {"start": 300.0, "stop": 1.0e308, "num": 3, "log": True}},
    }
    config = write_config(tmp_path / "sweep.yaml", sweep=sweep)
    out = tmp_path / "out"
    args = ["sweep", str(config), "--out", str(out), "--workers", "2", "--batch-size", "3",
            "--no-progress"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("model diverged") == 2
    table = load_summary(out)  # a DataFrame: pandas is a test dependency
    failed = table[table["status"] == "failed"]
    assert sorted(failed["model.params.M_S"]) == [1.0e308, 1.0e308]
    assert failed["error"].str.startswith("ModelDivergedError: model diverged").all()
    complete = table[table["status"] == "complete"]
    assert len(complete) == 4 and np.isfinite(complete["band_power_reduction"]).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"complete": 4, "failed": 2, "pending": 0}
    # Again: nothing to do, still failed; with --retry-failed only those run again.
    assert main(args) == 1
    assert "0 run now, 6 done before" in capsys.readouterr().out
    assert main([*args, "--retry-failed"]) == 1
    assert "2 run now, 4 done before" in capsys.readouterr().out


def test_controller_exception_and_killed_worker_are_recorded_and_the_sweep_goes_on(
    tmp_path, capsys
):
    controller = {
        "name": "test_sweep.Flaky",
        "params": {"lower_threshold": 25.0, "upper_threshold": 35.0},
    }
    sweep = {
        "grid": {
            "controller.params.fail": ["none", "raise", "kill"],
            "model.params.w_GS": [9.0, 11.0],
        }
    }
    config = write_config(tmp_path / "sweep.yaml", controller=controller, sweep=sweep)
    out = tmp_path / "out"
    args = ["sweep", str(config), "--out", str(out), "--workers", "2", "--batch-size", "2",
            "--no-progress"]  # fmt: skip
    assert main(args) == 1
    capsys.readouterr()
    table = load_summary(out)
    by_fail = {f: table[table["controller.params.fail"] == f] for f in ("none", "raise", "kill")}
    assert (by_fail["none"]["status"] == "complete").all()
    assert (by_fail["raise"]["status"] == "failed").all()
    assert by_fail["raise"]["error"].str.contains("RuntimeError: controller gave up").all()
    assert (by_fail["kill"]["status"] == "failed").all()
    assert by_fail["kill"]["error"].str.contains(r"worker process died \(killed by SIGKILL\)").all()
    assert_only_complete_files(out)


# ----------------------------------------------------------------------- results


def test_summary_is_rebuilt_from_run_files_alone_and_loads(reference, tmp_path, capsys):
    _, ref_out = reference
    out = tmp_path / "copy"
    shutil.copytree(ref_out, out)
    before = load_summary(out, as_frame=False)
    for name in ("summary.h5", "summary.csv", "manifest.json", "sweep.yaml"):
        (out / name).unlink()
    assert main(["summarize", str(out)]) == 0
    assert f"{N_RUNS} runs, {N_RUNS} complete" in capsys.readouterr().out
    after = load_summary(out, as_frame=False)
    assert sorted(after) == sorted(before)
    assert_same_table(before, {k: after[k] for k in before})
    frame = load_summary(out)
    assert frame.shape[0] == N_RUNS
    assert {"run_id", "model.params.w_GS", "band_power_reduction", "teed_relative"} <= set(frame)
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == N_RUNS
    assert [float(r["band_power_reduction"]) for r in rows] == list(after["band_power_reduction"])
    assert main(["summarize", str(tmp_path / "nowhere")]) == 2


def test_a_run_file_holds_the_config_that_reproduces_the_run(reference, tmp_path):
    _, ref_out = reference
    path = sorted((ref_out / "runs").glob("*.h5"))[5]
    swept = load_run(path)
    config = tmp_path / "again.yaml"
    config.write_text(yaml.safe_dump(swept.attrs["run_config"]))
    assert main(["run", str(config), "--out", str(tmp_path), "--no-progress"]) == 0
    alone = load_run(tmp_path / f"{swept.config['name']}.h5")
    assert alone.config == swept.config
    for key, value in swept.metrics.items():
        np.testing.assert_array_equal(alone.metrics[key], value, err_msg=key)


def test_plot_sweep_heatmap_line_and_pareto(reference, tmp_path, capsys):
    _, ref_out = reference
    out = tmp_path / "copy"
    shutil.copytree(ref_out, out)
    x, y = "controller.params.upper_threshold", "model.params.w_GS"
    for args in (["--x", x, "--y", y], ["--x", x], ["--kind", "pareto"]):
        assert main(["plot-sweep", str(out), *args]) == 0
        path = Path(capsys.readouterr().out.split("wrote ")[1].strip())
        assert path.stat().st_size > 10_000
    assert main(["plot-sweep", str(out), "--x", "model.params.nope"]) == 2
    assert "is not a swept parameter" in capsys.readouterr().err


def test_plot_sweep_returns_a_figure_and_draws_on_a_given_axes(reference, tmp_path):
    from matplotlib.figure import Figure

    from closedloop.plotting.sweep import plot_sweep

    _, ref_out = reference
    out = tmp_path / "copy"
    shutil.copytree(ref_out, out)
    before = sorted(p.name for p in out.iterdir())
    outer = Figure()
    ax = outer.add_subplot(1, 2, 1)
    assert plot_sweep(out, kind="pareto", ax=ax) is outer
    assert sorted(p.name for p in out.iterdir()) == before  # nothing saved
    summary = load_summary(out, as_frame=False)
    params = load_summary_meta(out)["param_columns"]
    points = {tuple(summary[p][i] for p in params) for i in range(len(summary["status"]))}
    drawn = sum(len(c.get_offsets()) for c in ax.collections) + len(ax.get_lines()[0].get_xdata())
    assert drawn == len(points)  # every parameter point, on or off the front
    assert len(ax.texts) == len(ax.get_lines()[0].get_xdata())  # front points labelled
    fig = plot_sweep(out, x="controller.params.upper_threshold", y="model.params.w_GS")
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # the heatmap and its colour bar


def test_pareto_front_marks_the_points_no_other_point_beats():
    energy = np.array([1.0, 2.0, 3.0, 2.5, 0.5, np.nan])
    efficacy = np.array([0.5, 0.7, 0.9, 0.6, 0.1, 1.0])
    assert pareto_front(energy, efficacy).tolist() == [True, True, True, False, True, False]


def test_config_without_sweep_block_is_refused_by_sweep(tmp_path, capsys):
    config = write_config(tmp_path / "plain.yaml", sweep=None)
    assert main(["sweep", str(config), "--dry-run"]) == 2
    assert "sweep: this experiment has no sweep block" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        expand_sweep(yaml.safe_load(config.read_text()))


def test_example_sweep_file_is_valid():
    plan = expand_sweep(yaml.safe_load((ROOT / "experiments" / "pd_beta_sweep.yaml").read_text()))
    assert len(plan.runs) == 24


# ----------------------------------------------------------------------- Dask
# Last: a Dask client leaves threads in this process, after which local pools
# spawn their workers instead of forking them (slower to start).


@pytest.mark.dask
@pytest.mark.slow
def test_dask_local_cluster_gives_bit_identical_results(reference, tmp_path):
    config, ref_out = reference
    ref = summary_without_wall_time(ref_out)
    # A Dask LocalCluster of two worker processes (processes=True).
    dask = tmp_path / "dask"
    code = main(
        ["sweep", str(config), "--out", str(dask), "--scheduler", "local", "--workers", "2",
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    assert_same_table(ref, summary_without_wall_time(dask))
    manifest = json.loads((dask / "manifest.json").read_text())
    assert manifest["counts"] == {"complete": N_RUNS, "failed": 0, "pending": 0}
    assert manifest["state"] == "finished"
    entry = manifest["runs"][0]
    assert set(entry) >= {"id", "params", "status", "wall_s", "error"}
    assert entry["wall_s"] > 0


def test_unreachable_scheduler_exits_2_before_any_run(tmp_path, capsys):
    config = write_config(tmp_path / "sweep.yaml")
    out = tmp_path / "out"
    code = main(
        ["sweep", str(config), "--out", str(out), "--scheduler", "tcp://127.0.0.1:1",
         "--connect-timeout", "1"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"closedloop: error: {config}: --scheduler: cannot reach the Dask scheduler" in err
    assert not out.exists()


# ----------------------------------------------------------------- structure


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` statement of ``path`` names, function-level ones too."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_only_closedloop_io_opens_hdf5_files():
    """Run files (and summary tables) are touched through closedloop.io alone."""
    package = ROOT / "closedloop"
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in package.rglob("*.py")
        if path.parent != package / "io"
        and any(name.split(".")[0] == "h5py" for name in _imported_modules(path))
    )
    assert offenders == []
    assert "h5py" in _imported_modules(package / "io" / "hdf5.py")


def test_the_sweep_block_module_imports_nothing_of_closedloop():
    """The config schema imports sweep.spec; sweep.spec importing closedloop would close a cycle."""
    names = _imported_modules(ROOT / "closedloop" / "sweep" / "spec.py")
    assert "numpy" in names
    assert not [n for n in names if n.startswith(("closedloop", "."))]

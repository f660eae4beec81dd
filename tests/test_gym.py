"""The gymnasium environments: the env checker, env equals loop, seeding, drift.

A policy stepped through the environment must give, bit for bit, the run of
the same policy as a controller (:class:`closedloop.controllers.policy.Policy`)
in the loop: an agent trained in the environment meets in an experiment file
exactly the plant it was trained on.
"""

import subprocess
import sys

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import closedloop  # noqa: F401  (registers the environments)
from closedloop.config import validate_config
from closedloop.controllers.policy import ActionSpec, Policy
from closedloop.gym import ENV_ID, ExperimentEnv, ExperimentVectorEnv
from closedloop.models import BUILTIN_MODELS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _config(model, duration_s=0.2, n=1, seed=5):
    return {
        "name": f"gym_{model}",
        "seed": seed,
        "n_instances": n,
        "duration_s": duration_s,
        "warmup_s": 0.05,
        "model": {"name": model, "dt_s": 1e-4},
        "sensing": {"rate_hz": 1000.0, "band_hz": [4.0, 40.0], "features": ["signal"]},
        "control": {"period_s": 0.01, "latency_s": 0.01},
        "metrics": {"band_hz": [4.0, 40.0], "discard_s": 0.0},
    }


def _policy(obs):
    # A deterministic feedback law, row by row (so batch size does not change it).
    return np.column_stack([np.clip(0.02 * np.abs(obs[:, 0]) + 0.5, 0.0, 3.0)])


def _loop_run(cfg, policy, seconds):
    """Run the experiment with ``policy`` as its controller; features per period and totals."""
    loop = validate_config(cfg).loop
    loop.controller = Policy(policy=policy, features=("biomarker", "signal"))
    loop.engine = "python"
    rows = []
    loop.reset()
    loop.warm_up(cfg["warmup_s"])
    totals = loop.run(
        seconds,
        chunk_s=0.05,
        on_chunk=lambda t0, d: rows.append(np.stack([d["biomarker"], d["feature_signal"]], -1)),
    )
    return np.concatenate(rows, axis=1), totals, loop


@pytest.mark.parametrize("model", sorted(BUILTIN_MODELS))
def test_env_passes_check_env_and_equals_the_loop_bit_for_bit(model):
    cfg = _config(model)
    env = ExperimentEnv(cfg)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=cfg["seed"])
    assert info["seed"] == cfg["seed"]
    seen, done = [obs], False
    while not done:
        obs, reward, terminated, done, _ = env.step(_policy(obs[None])[0])
        assert not terminated and np.isfinite(reward)
        seen.append(obs)
    want, totals, loop = _loop_run(cfg, _policy, cfg["duration_s"])
    np.testing.assert_array_equal(np.array(seen), want[0])
    got_totals = env.episodes.loop.totals()
    for key, value in totals.items():
        np.testing.assert_array_equal(got_totals[key], value, err_msg=key)
    assert totals["n_pulses"][0] > 0  # the policy did stimulate
    for a, b in zip(env.episodes.loop.model.kernel_state(), loop.model.kernel_state(), strict=True):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)


def test_import_closedloop_registers_the_env_without_loading_the_loop():
    code = (
        "import sys, closedloop, gymnasium; "
        "print('closedloop/Experiment-v0' in gymnasium.registry, 'numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_make_and_make_vec_find_the_registered_id():
    cfg = _config("wilson_cowan", duration_s=0.05)
    env = gymnasium.make(ENV_ID, config=cfg)
    assert isinstance(env.unwrapped, ExperimentEnv)
    envs = gymnasium.make_vec(ENV_ID, num_envs=3, config=cfg)
    assert isinstance(envs, ExperimentVectorEnv)
    obs, _ = envs.reset(seed=1)
    assert obs.shape == (3, 2) and envs.action_space.shape == (3, 1)


def test_vector_env_equals_the_batched_loop_and_autoresets():
    cfg = _config("stn_gpe", duration_s=0.1, n=4, seed=9)
    envs = ExperimentVectorEnv(cfg, num_envs=4)
    obs, _ = envs.reset(seed=9)
    seen, truncated = [obs], np.zeros(4, bool)
    while not truncated.all():
        obs, rewards, terminated, truncated, _ = envs.step(_policy(obs))
        seen.append(obs)
    want, _, _ = _loop_run(cfg, _policy, cfg["duration_s"])
    np.testing.assert_array_equal(np.stack(seen, axis=1), want)
    # Next-step autoreset: a fresh episode from a seed drawn from np_random.
    obs, rewards, terminated, truncated, info = envs.step(_policy(obs))
    assert info["t_s"][0] == pytest.approx(0.01) and not truncated.any()
    assert not np.array_equal(obs, seen[0])


def test_seeding_follows_gymnasium_conventions():
    cfg = _config("wilson_cowan", duration_s=0.05)
    cfg["sensing"]["noise_std"] = 0.01  # the seed matters (the default regime has no noise)
    env = ExperimentEnv(cfg)
    first, _ = env.reset()  # unseeded first reset: the file's seed
    again, _ = env.reset(seed=5)
    np.testing.assert_array_equal(first, again)
    other, info = env.reset()  # a new episode seed from np_random
    assert info["seed"] != 5 and not np.array_equal(other, first)
    env2 = ExperimentEnv(cfg)
    env2.reset(seed=5)
    np.testing.assert_array_equal(env2.reset()[0], other)  # same seed, same sequence


def test_drift_changes_the_plant_between_episodes_reproducibly():
    cfg = _config("stn_gpe", duration_s=0.05)
    drift = {"g_DBS": 0.3, "tau_S+tau_G+T_SG+T_GS+T_GG+T_CS": 0.2}
    env = ExperimentEnv(cfg, drift=drift)
    _, info1 = env.reset(seed=2)
    params1 = env.episodes.loop.model.param_values
    _, info2 = env.reset()
    factors = [info1["drift"][g] for g in drift], [info2["drift"][g] for g in drift]
    assert factors[0] != factors[1]
    for (_group, w), f in zip(drift.items(), factors[0], strict=True):
        assert 1 - w <= f <= 1 + w
    assert params1["g_DBS"][0] == pytest.approx(1e5 * info1["drift"]["g_DBS"])
    # Delays stay whole integration steps.
    steps = env.episodes.loop.model.param_values["T_SG"] / 1e-4
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    env.reset(seed=2)
    assert env.episodes.loop.model.param_values["g_DBS"][0] == params1["g_DBS"][0]


def test_bad_environment_options_name_what_is_wrong():
    cfg = _config("wilson_cowan", duration_s=0.05)
    with pytest.raises(ValueError, match="drift.nope: 'nope' is not a parameter"):
        ExperimentEnv(cfg, drift={"nope": 0.1})
    with pytest.raises(ValueError, match="features: 'phase' is not sensed"):
        ExperimentEnv(cfg, features=("phase",))
    with pytest.raises(ValueError, match="reward.energy_weight"):
        ExperimentEnv(cfg, reward={"energy_weight": -1.0})
    with pytest.raises(ValueError, match="controls must be"):
        ExperimentEnv(cfg, action={"controls": ("volume",)})


def test_action_spec_clips_to_the_device_and_discrete_switches():
    spec = ActionSpec(("amplitude_ma", "frequency_hz"), amplitude_max_ma=3.0)
    cmd = spec.command(np.array([[9.0, 1000.0], [np.nan, 1.0]]), 2)
    np.testing.assert_array_equal(cmd["amplitude_ma"], [3.0, 0.0])
    np.testing.assert_array_equal(cmd["frequency_hz"], [250.0, 2.0])
    on_off = ActionSpec(discrete=True, amplitude_ma=1.5).command(np.array([1, 0]), 2)
    np.testing.assert_array_equal(on_off["amplitude_ma"], [1.5, 0.0])


def test_policy_controller_runs_from_a_config_with_a_dotted_path_policy():
    cfg = _config("wilson_cowan", duration_s=0.05)
    cfg["controller"] = {
        "name": "policy",
        "params": {"policy": "tests.test_gym._policy", "features": ["biomarker", "signal"]},
    }
    loop = validate_config(cfg).loop
    loop.reset()
    totals = loop.run(0.05)
    assert totals["n_pulses"][0] > 0
    cfg["controller"]["params"]["policy"] = "tests.test_gym.nothing_here"
    with pytest.raises(Exception, match="controller.params.*nothing_here"):
        validate_config(cfg)

"""Train a small PPO policy on the Parkinsonian beta experiment and run it as a controller.

The policy sees the beta ARV biomarker of each control period and sets the
amplitude (a box over [0, 5] mA, the device's limit); the reward weighs
biomarker, energy and switching (:class:`closedloop.gym.Reward`). Training
steps 16 instances of the experiment as one vector environment (the loop's
batch), then the trained policy is wrapped as a
:class:`~closedloop.controllers.policy.Policy` and run through the loop on
a fresh seed, beside no stimulation, open-loop 130 Hz DBS at 2.5 mA and
the experiment's own threshold controller (``on_off`` at 11.2 spikes/s).

Needs the ``rl`` extra (``pip install -e '.[rl]'``: gymnasium and
Stable-Baselines3 with PyTorch); not part of CI. Run::

    python examples/train_ppo_policy.py [--timesteps 200000] [--save ppo_beta.zip]
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

import closedloop  # noqa: F401  (registers closedloop/Experiment-v0)
from closedloop.config import load_config
from closedloop.controllers import OpenLoop
from closedloop.controllers.policy import Policy

CONFIG = "experiments/pd_beta_adbs.yaml"
REWARD = {"biomarker_weight": 0.05, "energy_weight": 0.01, "switching_weight": 0.1}


class GymnasiumToSB3(VecEnv):
    """Stable-Baselines3's VecEnv interface over a gymnasium VectorEnv (next-step autoreset)."""

    def __init__(self, envs):
        self.envs = envs
        super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)
        self._actions = None

    def reset(self):
        return self.envs.reset()[0].astype(np.float32)

    def step_async(self, actions):
        self._actions = actions

    def step_wait(self):
        obs, reward, terminated, truncated, _ = self.envs.step(self._actions)
        done = terminated | truncated
        infos = [{} for _ in range(self.num_envs)]
        if done.any():  # SB3 expects the reset observation on the done step
            for i in range(self.num_envs):
                infos[i]["terminal_observation"] = obs[i].astype(np.float32)
                infos[i]["TimeLimit.truncated"] = bool(truncated[i])
            obs, _ = self.envs.reset()
        return obs.astype(np.float32), reward.astype(np.float32), done, infos

    def close(self):
        self.envs.close()

    def get_attr(self, name, indices=None):
        return [getattr(self.envs, name, None)] * self.num_envs

    def set_attr(self, name, value, indices=None):
        setattr(self.envs, name, value)

    def env_method(self, name, *args, indices=None, **kwargs):
        return [getattr(self.envs, name)(*args, **kwargs)] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * self.num_envs


def evaluate(controller, seed: int) -> tuple[float, float]:
    """Mean beta ARV after 0.5 s and energy (uJ), 4 instances, through the loop."""
    loop = load_config(CONFIG, ["n_instances=4", f"seed={seed}"]).loop
    loop.controller = controller
    values = []
    loop.reset()
    loop.warm_up(0.5)
    totals = loop.run(6.0, on_chunk=lambda t0, d: values.append(d["biomarker"]))
    beta = np.concatenate(values, axis=1)[:, 25:]
    return float(beta.mean()), float(totals["energy_j"].mean() * 1e6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timesteps", type=int, default=200_000)
    ap.add_argument("--save", default="ppo_beta.zip")
    ap.add_argument("--torch-threads", type=int, default=1, help="PyTorch threads [1]")
    for key, value in REWARD.items():
        ap.add_argument(f"--{key.replace('_', '-')}", type=float, default=value)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)
    t0 = time.perf_counter()
    reward = {key: getattr(args, key) for key in REWARD}
    envs = gymnasium.make_vec("closedloop/Experiment-v0", num_envs=16, config=CONFIG, reward=reward)
    model = PPO("MlpPolicy", GymnasiumToSB3(envs), n_steps=256, batch_size=512, seed=0, verbose=1)
    model.learn(total_timesteps=args.timesteps)
    model.save(args.save)
    print(f"trained {args.timesteps} steps in {time.perf_counter() - t0:.0f} s")

    def act(obs):
        return model.predict(obs.astype(np.float32), deterministic=True)[0]

    for name, controller in (
        ("none", OpenLoop(amplitude_ma=0.0)),
        ("open loop 2.5 mA", OpenLoop(amplitude_ma=2.5)),
        ("threshold (on_off)", load_config(CONFIG).loop.controller),
        ("PPO policy", Policy(policy=act, amplitude_max_ma=5.0)),
    ):
        beta, energy = evaluate(controller, seed=100)
        print(f"{name:<18} beta ARV {beta:6.2f} spikes/s   energy {energy:8.1f} uJ")


if __name__ == "__main__":
    main()

"""Identify, estimate, control: the model-based pipeline on any Numba model's experiment.

The pipeline of Yang et al. 2018 and Fang & Yang 2023, on an experiment file:

1. excitation: generalised binary noise on the amplitude, within the device's limits;
2. data through the loop (device, model, sensing chain), one trial per instance;
3. a linear state-space model, its latent dimension chosen on held-out data
   (explained variance of 1-step predictions), validated per horizon;
4. LQR and MPC (Kalman estimator, offset-free) holding the biomarker at a
   target, against open-loop stimulation at the amplitude the identified
   model says reaches the target, and responsive (on/off) stimulation;
   reported: control error (RMS distance of the biomarker from the target)
   and energy delivered (TEED accounting), per arm, averaged over instances.

Run (defaults: the Parkinsonian STN-GPe beta experiment, target 30 spikes/s)::

    python examples/model_based_control.py [--config FILE] [--set key=value] [--target X]

It needs the ``control`` extra (``pip install -e '.[control]'``).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from closedloop.config import load_config
from closedloop.control.collect import collect
from closedloop.control.excitation import generalized_binary_noise
from closedloop.control.lqr import LQR
from closedloop.control.mpc import MPC
from closedloop.control.sysid import explained_variance, select_order
from closedloop.controllers import OnOff, OpenLoop


def run_arm(args, controller, n):
    """Run one arm; RMS control error and mean energy (J) over instances."""
    loop = load_config(args.config, [*args.set, f"n_instances={n}", f"seed={args.seed + 1}"]).loop
    loop.controller = controller
    loop.engine = "auto"
    values = []
    loop.reset()
    loop.warm_up(0.5)
    totals = loop.run(args.seconds, on_chunk=lambda t0, d: values.append(d["biomarker"]))
    biomarker = np.concatenate(values, axis=1)
    settled = biomarker[:, int(0.5 / loop.control_period_s) :]  # the first 0.5 s left out
    error = np.sqrt(np.mean((settled - args.target) ** 2))
    return error, float(np.mean(totals["energy_j"])), float(np.mean(settled))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="experiments/pd_beta_adbs.yaml")
    ap.add_argument("--set", action="append", default=[], help="key=value override")
    ap.add_argument("--target", type=float, default=30.0, help="biomarker target")
    ap.add_argument("--levels", type=float, nargs=2, default=(0.0, 3.0), help="GBN levels, mA")
    ap.add_argument("--p-switch", type=float, default=0.1, help="GBN switching probability")
    ap.add_argument("--periods", type=int, default=1500, help="identification periods/trial")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=6.0, help="closed-loop run, s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save", default="", help="write the identified model (.npz)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    experiment = load_config(args.config, [*args.set, f"n_instances={args.trials}"])
    loop = experiment.loop
    device = loop.device
    freq, width = device.initial_frequency_hz, device.initial_pulse_width_us
    rng = np.random.default_rng(args.seed)
    design = {
        "amplitude_ma": generalized_binary_noise(
            args.periods, tuple(args.levels), args.p_switch, rng, n=args.trials
        )
    }
    data = collect(
        loop,
        design,
        fixed={"frequency_hz": freq, "pulse_width_us": width},
        warmup_s=experiment.config.warmup_s,
        discard_periods=25,
    )
    train, valid = data.split(0.7)
    model, scores = select_order(train, valid, range(1, 9), horizon=15)
    ev = explained_variance(model, valid, (1, 5, 10))
    print(f"identified on {args.trials} x {args.periods} periods of {loop.control_period_s} s")
    rounded = {k: round(v, 3) for k, v in scores.items()}
    print("held-out 1-step explained variance by order:", rounded)
    print(
        f"chosen order {model.order}; explained variance at 1, 5, 10 periods:",
        [round(float(ev[h][0]), 3) for h in (1, 5, 10)],
    )
    print("poles (1/s):", np.round(model.continuous_poles_per_s(), 1))
    print(f"steady-state gain {model.dc_gain().item():.3g} per mA")
    if args.save:
        model.save(args.save)

    # Open loop at the amplitude the model says holds the target.
    gain = model.dc_gain().item()
    amp = float(np.clip(model.u_offset[0] + (args.target - model.y_offset[0]) / gain, *args.levels))
    common = dict(
        model=model,
        target=args.target,
        frequency_hz=freq,
        pulse_width_us=width,
        max_amplitude_ma=args.levels[1],
    )
    arms = {
        "none": OpenLoop(amplitude_ma=0.0, frequency_hz=freq, pulse_width_us=width),
        f"open loop {amp:.2f} mA": OpenLoop(
            amplitude_ma=amp, frequency_hz=freq, pulse_width_us=width
        ),
        "responsive (on/off)": OnOff(
            threshold=args.target,
            amplitude_ma=args.levels[1],
            frequency_hz=freq,
            pulse_width_us=width,
            ramp_time_s=0.0,
        ),
        "LQR": LQR(**common, output_weight=1.0, input_weight=1.0),
        "MPC": MPC(
            **common,
            output_weight=1.0,
            input_weight=0.01,
            horizon=20,
            ramp_ma_per_s=device.ramp_rate_ma_per_s,
            charge_per_phase_max_uc=device.charge_limit_uc,
        ),
    }
    print(f"\n{'arm':<24} {'RMS error':>10} {'mean biomarker':>15} {'energy uJ':>10}")
    for name, controller in arms.items():
        error, energy, mean = run_arm(args, controller, 2)
        print(f"{name:<24} {error:>10.2f} {mean:>15.2f} {energy * 1e6:>10.2f}")


if __name__ == "__main__":
    main()

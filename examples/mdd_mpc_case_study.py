"""The case study of Fang & Yang 2023: model-predictive DBS of the vACC in depression.

On ``experiments/mdd_mpc.yaml`` (the cingulo-frontal network of
``models/mdd_cingulofrontal.py``, mild MDD, the vACC in its sustained state):

1. identification: generalised binary noise on the DBS amplitude between two
   levels on the smooth branch of the sustained state (0.25 and 1.0 mA by
   default), 4 trials through the loop; a linear state-space model of the
   sensed vACC activity (feature ``area``), its latent dimension chosen on
   held-out data; ``--save`` writes it (the experiment's ``.npz``);
2. the target: the sensed level at which the sustained vACC rate of this
   network equals that of the healthy network's sustained state (measured
   here, printed);
3. arms on the same seeds: no stimulation, open loop at the MPC's amplitude
   cap (``--open-ma``, the strongest continuous DBS that keeps the sustained
   state) and at the amplitude the identified
   model says holds the target, responsive (``symptom_triggered`` bursts when
   the sensed activity stays above the target), and MPC (the experiment's
   controller); reported: control error (RMS distance of the sensed
   activity from the target) and energy delivered (TEED accounting), mean
   over instances.

Run from the repository's root (needs the ``control`` extra)::

    python examples/mdd_mpc_case_study.py [--save experiments/models/mdd_mpc_vacc.npz]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from closedloop.config import load_config
from closedloop.config.files import read_yaml
from closedloop.control.collect import collect
from closedloop.control.excitation import generalized_binary_noise
from closedloop.control.sysid import explained_variance, select_order
from closedloop.controllers import OpenLoop, SymptomTriggered

CONFIG = "experiments/mdd_mpc.yaml"
FREQ_HZ, WIDTH_US = 130.0, 60.0
#: The experiment without its MPC (whose model file this script writes).
NO_MPC = ["controller.name=open_loop", "controller.params={amplitude_ma: 0.0}"]


def sustained_level(regime: str, amplitude_ma: float, n: int = 4) -> tuple[float, float]:
    """Mean sensed area (nA*s) and vACC rate (Hz) of the sustained state at a fixed amplitude."""
    overrides = [f"n_instances={n}", f"model.regime={regime}", "model.params.emo_onset_s=0.1"]
    loop = load_config(CONFIG, [*NO_MPC, *overrides]).loop
    design = {"amplitude_ma": np.full((n, 300), amplitude_ma)}
    data = collect(
        loop, design, outputs=("area",), fixed={"frequency_hz": FREQ_HZ, "pulse_width_us": WIDTH_US}
    )
    return float(data.y[:, 50:, 0].mean()), float(loop.model.node_rates()["vacc"].mean())


def run_arm(controller, target: float, seconds: float, n: int) -> tuple[float, float, float]:
    """RMS control error (nA*s), mean energy (uJ) and mean amplitude (mA) of one arm."""
    exp = load_config(CONFIG, [f"n_instances={n}", f"duration_s={seconds}"])
    loop = exp.loop
    if controller is not None:
        loop.controller = controller
    values, amps = [], []
    loop.reset()
    loop.warm_up(exp.config.warmup_s)

    def keep(t0, d):
        values.append(d["feature_area"])
        amps.append(d["amplitude"])

    totals = loop.run(seconds, on_chunk=keep)
    area = np.concatenate(values, axis=1)[:, int(0.5 / loop.control_period_s) :]
    error = float(np.sqrt(np.mean((area - target) ** 2)))
    return error, float(np.mean(totals["energy_j"])) * 1e6, float(np.concatenate(amps, 1).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=float, nargs=2, default=(0.25, 1.0), help="GBN levels, mA")
    ap.add_argument("--p-switch", type=float, default=0.1, help="GBN switching probability")
    ap.add_argument("--periods", type=int, default=1500, help="identification periods/trial")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=12.0, help="closed-loop run, s")
    ap.add_argument("--open-ma", type=float, default=1.2, help="open-loop amplitude (the cap)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save", default="", help="write the identified model (.npz)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    healthy_area, healthy_rate = sustained_level("healthy", 0.0)
    print(f"healthy sustained state: vACC {healthy_rate:.1f} Hz, area {healthy_area:.4f} nA*s")
    for amp in (0.0, 0.5, 0.75, 1.0, 1.25):
        area, rate = sustained_level("mdd_mild", amp)
        print(f"mdd_mild at {amp:.2f} mA: vACC {rate:.1f} Hz, area {area:.4f} nA*s")

    loop = load_config(CONFIG, [*NO_MPC, f"n_instances={args.trials}"]).loop
    rng = np.random.default_rng(args.seed)
    design = {
        "amplitude_ma": generalized_binary_noise(
            args.periods, tuple(args.levels), args.p_switch, rng, n=args.trials
        )
    }
    data = collect(
        loop,
        design,
        outputs=("area",),
        fixed={"frequency_hz": FREQ_HZ, "pulse_width_us": WIDTH_US},
        warmup_s=1.0,
        discard_periods=25,
    )
    train, valid = data.split(0.7)
    model, scores = select_order(train, valid, range(1, 7), horizon=15)
    ev = explained_variance(model, valid, (1, 5, 10))
    print(f"identified on {args.trials} x {args.periods} periods of {loop.control_period_s} s")
    rounded = {k: round(v, 3) for k, v in scores.items()}
    print("held-out 1-step explained variance by order:", rounded)
    print(
        f"chosen order {model.order}; explained variance at 1, 5, 10 periods:",
        [round(float(ev[h][0]), 3) for h in (1, 5, 10)],
    )
    print("poles (1/s):", np.round(model.continuous_poles_per_s(), 1))
    print(f"steady-state gain {model.dc_gain().item():.4g} nA*s per mA")
    if args.save:
        model.save(args.save)

    target = float(read_yaml(CONFIG, "experiment")["controller"]["params"]["target"])
    gain = model.dc_gain().item()
    held = float(np.clip(model.u_offset[0] + (target - model.y_offset[0]) / gain, *args.levels))
    arms = {
        "none": OpenLoop(amplitude_ma=0.0, frequency_hz=FREQ_HZ, pulse_width_us=WIDTH_US),
        f"open loop {args.open_ma:.2f} mA": OpenLoop(
            amplitude_ma=args.open_ma, frequency_hz=FREQ_HZ, pulse_width_us=WIDTH_US
        ),
        f"open loop {held:.2f} mA (model)": OpenLoop(
            amplitude_ma=held, frequency_hz=FREQ_HZ, pulse_width_us=WIDTH_US
        ),
        "responsive (triggered)": SymptomTriggered(
            feature="area",
            threshold=target,
            min_duration_s=0.1,
            burst_s=0.5,
            amplitude_ma=args.open_ma,
            frequency_hz=FREQ_HZ,
            pulse_width_us=WIDTH_US,
        ),
        "MPC (experiment file)": None,
    }
    print(f"\ntarget {target} nA*s\n{'arm':<28} {'RMS error':>10} {'energy uJ':>10} {'mean mA':>8}")
    for name, controller in arms.items():
        error, energy, amp = run_arm(controller, target, args.seconds, 2)
        print(f"{name:<28} {error:>10.5f} {energy:>10.2f} {amp:>8.3f}")


if __name__ == "__main__":
    main()

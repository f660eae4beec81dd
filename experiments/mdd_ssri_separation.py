"""Error of the time-scale separation of ``mdd_ssri_cohort.yaml``, against a full simulation.

One patient at the edge of response (AMPA slowing 0.07) over 4 h of slow
time: fully simulated (14,400 s of neural time) and with 10 s epochs every
20 min. So that the score moves within the short case, the patient starts as
after weeks of 20 mg/day in a normal metaboliser (the vACC resting potential
already shifted by -2.4 mV: 80 % occupancy times the -3 mV of full effect)
and the symptom time constant is 1 h, three epochs per time constant as in
the experiment (3 days, one epoch a day); everything else is the
experiment's. A patient well inside response (AMPA slowing 0.066, -3 mV)
gives no error at all: the readout stays below the healthy level in both
runs. Prints the largest difference of every slow series
(:func:`closedloop.core.epochs.separation_error`).

    python experiments/mdd_ssri_separation.py      # about 30 s
"""

import copy
import time
from pathlib import Path

import yaml

from closedloop.config import validate_config
from closedloop.core.epochs import separation_error
from closedloop.core.slow import EpochSchedule

RAW = yaml.safe_load((Path(__file__).parent / "mdd_ssri_cohort.yaml").read_text())
DURATION_S = 4 * 3600.0
EPOCHS = EpochSchedule(epoch_s=10.0, every_s=1200.0)


def make_loop(epochs):
    raw = {k: copy.deepcopy(v) for k, v in RAW.items() if k != "cohort"}
    raw["duration_s"] = DURATION_S
    raw["model"]["params"]["ampa_slowing"] = 0.07
    raw["model"]["params"]["ssri_shift_mv"] = -2.4
    raw["symptoms"][0]["tau_s"] = 3600.0
    raw["symptoms"][0]["period_s"] = 600.0
    raw["drugs"]["period_s"] = 600.0
    raw["slow"] = None if epochs is None else {"epoch_s": epochs.epoch_s, "every_s": epochs.every_s}
    return validate_config(raw).loop


if __name__ == "__main__":
    t0 = time.perf_counter()
    errors = separation_error(make_loop, EPOCHS, DURATION_S)
    for name, value in sorted(errors.items()):
        print(f"{name:45s} {value:.4g}")
    print(f"({time.perf_counter() - t0:.0f} s)")

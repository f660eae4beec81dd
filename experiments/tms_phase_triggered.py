"""EEG-phase-triggered stimulation: target phases and phase estimators compared.

Runs ``experiments/tms_phase_triggered.yaml`` with triplets at the negative
peak, the positive peak and random phase, each with the ecHT, AR forward
prediction and educated temporal prediction, and writes the accuracy at the delivered bursts and the
plasticity readout as a table (``phase_triggered.md``) and a figure
(``phase_triggered.png``)::

    .venv/bin/python experiments/tms_phase_triggered.py --out results/tms_phase
"""

from __future__ import annotations

import argparse
from pathlib import Path

from closedloop.analysis.phase_estimators import markdown_table
from closedloop.analysis.phase_triggered import compare_arms, plot_arms
from closedloop.plotting.figures import save_figure

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Run the nine arms and write the table and the figure under ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/tms_phase"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    rows = compare_arms(HERE / "tms_phase_triggered.yaml", args.out, args.overrides)
    spec = [("arm", "arm", "{}"), ("estimator", "estimator", "{}"), ("bursts", "bursts", "{}")]
    spec += [
        ("mean error (deg)", "mean_error_deg", "{:.1f}"),
        ("SD (deg)", "sd_error_deg", "{:.1f}"),
    ]
    spec += [
        ("within +-45 deg", "within", "{:.0%}"),
        ("response change (%)", "response_change_pct", "{:+.1f}"),
    ]
    table = markdown_table(rows, spec)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "phase_triggered.md").write_text(table + "\n")
    print(save_figure(plot_arms(rows), args.out / "phase_triggered.png"))


if __name__ == "__main__":
    main()

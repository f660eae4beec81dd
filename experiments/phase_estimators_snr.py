"""Phase error versus SNR of the phase estimators (oracle, ecHT, AR forward prediction).

Runs :func:`closedloop.analysis.phase_estimators.phase_error_table` on a
synthetic mu rhythm (10 Hz, wandering frequency and amplitude, in 1/f plus
white noise) at a set of in-band SNRs, with the stimulus ``--latency-s``
after the last sample (5 ms by default, the order of the end-to-end latency
of real-time EEG-TMS systems [R]), and writes the table (Markdown, printed
and saved) and a figure::

    .venv/bin/python experiments/phase_estimators_snr.py --out results/phase_snr
"""

from __future__ import annotations

import argparse
from pathlib import Path

from closedloop.analysis.phase_estimators import (
    markdown_table,
    phase_error_table,
    plot_phase_errors,
)
from closedloop.plotting.figures import save_figure


def main() -> None:
    """Run the comparison and write ``phase_snr.md`` and ``phase_snr.png`` under ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/phase_snr"))
    parser.add_argument("--latency-s", type=float, default=0.005)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--snr-db", type=float, nargs="+", default=[20, 10, 5, 0, -5])
    parser.add_argument("--tolerance-deg", type=float, default=30.0)
    args = parser.parse_args()
    rows = phase_error_table(
        args.snr_db,
        latency_s=args.latency_s,
        duration_s=args.duration_s,
        tolerance_deg=args.tolerance_deg,
    )
    table = markdown_table(
        rows,
        [
            ("estimator", "estimator", "{}"),
            ("SNR (dB)", "snr_db", "{:g}"),
            ("mean error (deg)", "mean_deg", "{:.1f}"),
            ("circular SD (deg)", "sd_deg", "{:.1f}"),
            (f"within +-{args.tolerance_deg:g} deg", "within", "{:.0%}"),
        ],
    )
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "phase_snr.md").write_text(table + "\n")
    print(save_figure(plot_phase_errors(rows, args.tolerance_deg), args.out / "phase_snr.png"))


if __name__ == "__main__":
    main()

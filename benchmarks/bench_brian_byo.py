"""Issue 18 gap 3: the Brian2 loop on a network the user brings, against that network alone.

Usage: ``python benchmarks/bench_brian_byo.py [SECONDS] [REPEATS] [N_NEURONS ...]``
(defaults 8 s, 3 pairs, 1,000 and 10,000 neurons). Prints plain Brian2 CPU
time over the closed loop's (median of side-by-side pairs) for the PID's
compiled twin and for its Python ``update``; see
:mod:`closedloop.bench.brian_byo`.
"""

from __future__ import annotations

import sys

from closedloop.bench.brian_byo import byo_overhead_ratio


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    sizes = [int(a) for a in sys.argv[3:]] or [1000, 10000]
    for n_neurons in sizes:
        for engine, label in (("auto", "twin"), ("python", "python")):
            ratio = byo_overhead_ratio(n_neurons, seconds, engine, repeats)
            print(f"brian_byo/{n_neurons}/{label}: plain Brian2 / closed loop = {ratio:.3f}")


if __name__ == "__main__":
    main()

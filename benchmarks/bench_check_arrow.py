"""Benchmark: calibrate the Arrow Room checker on rendered splits (targets: real >= 0.98, each violation <= 0.02).

Too slow for CI: it needs a rendered train split (fits the recogniser once, a few minutes on 2 cores,
then cached) and rendered test splits, e.g.

    scenegen make arrow-room --split train --n 1200 --shard-size 150 --out data/arrow
    scenegen make arrow-room --split test --n 150 --out data/arrow-cal
    scenegen make arrow-room --split points_at_pair --violate points_at_pair --n 50 --out data/arrow-cal   # each kind
    python benchmarks/bench_check_arrow.py --train data/arrow/train --test data/arrow-cal [--cache DIR]

Prints the fit time and what the fit measured on its held-out scenes, the calibration table and the
checking speed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from scenegen.check.arrow.cache import load_or_fit
from scenegen.check.arrow.calibrate import calibrate
from scenegen.check.calibrate import format_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--n", type=int, default=500, help="at most this many scenes of each split")
    parser.add_argument("--json", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()

    start = time.perf_counter()
    _, meta = load_or_fit(args.train, args.cache)
    print(f"recogniser: fitted in {meta['fit_seconds']} s on {meta['scenes']} scenes (ready after {time.perf_counter() - start:.1f} s); "
          f"held-out {meta['held_out']} scenes: {json.dumps(meta['held_out_measures'])}")
    result = calibrate(args.test, args.train, args.n, cache=args.cache)
    for line in format_table(result):
        print(line)
    checked = sum(r["n"] for r in result["rows"])
    print(f"checked {checked} images in {result['check_seconds']} s ({checked / max(result['check_seconds'], 1e-9):.0f} images/s)")
    for row in result["rows"]:
        print(f"  {row['scenes']}: failures {row['reasons']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

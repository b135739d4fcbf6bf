"""Benchmark: FE dataset generation rate (samples per second) on this machine.

Generates ``--n`` samples (default 2,000; chunks of 500) with ``graded.inverse.dataset``
on all cores into a temporary directory, as ``graded dataset`` does, and reports

* ``cold``: wall time of the whole call, including worker start-up and the one-off
  construction of the superposed topology graphs in every worker;
* ``warm``: FE labelling of a second batch in this process once its graphs are cached
  (one core), i.e. the steady-state cost per sample of a long run.

Each sample is two FE solves (the U-stretched cell and the V R_I U cell).

    python benchmarks/dataset.py [--n 2000] [--workers N] [--out benchmarks/results/dataset.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from graded.inverse.dataset import chunk_designs, generate_dataset, label_designs
from graded.io.atomic import atomic_path


def run(n: int, workers: int, chunk_size: int = 500) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        summary = generate_dataset(Path(tmp) / "bench", n, seed=12345, chunk_size=chunk_size, workers=workers)
    cold = summary.computed_samples / summary.seconds
    print(f"cold: {n} samples, {workers} workers, {summary.seconds:.1f} s -> {cold:.1f} samples/s", flush=True)

    warm_n = min(n, 1000)
    designs = chunk_designs(999, 0, warm_n)
    label_designs(designs)  # builds (and caches) the graphs of the topologies drawn
    t0 = time.perf_counter()
    label_designs(designs)
    dt = time.perf_counter() - t0
    warm = warm_n / dt
    print(f"warm: {warm_n} samples, 1 process, {dt:.1f} s -> {warm:.1f} samples/s per core", flush=True)
    return {
        "n_samples": n,
        "workers": workers,
        "chunk_size": chunk_size,
        "cold_seconds": round(summary.seconds, 2),
        "cold_samples_per_second": round(cold, 1),
        "warm_samples": warm_n,
        "warm_seconds_one_core": round(dt, 2),
        "warm_samples_per_second_per_core": round(warm, 1),
        "fe_solves_per_sample": 2,
        "estimated_hours_for_200k_all_cores": round(200_000 / (warm * workers) / 3600, 2),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "dataset.json"))
    args = ap.parse_args(argv)
    load_before = os.getloadavg()[0]
    result = run(args.n, args.workers)
    doc = {
        "benchmark": "dataset",
        "what": "FE-labelled design samples generated per second (C_ort, C_hat, C per sample)",
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min_before": load_before,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "results": result,
    }
    out = Path(args.out)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return doc


if __name__ == "__main__":
    main()

"""Throughput of periodic beam homogenization over random designs of SI Table S1.

    python benchmarks/homogenize.py [--n 2000] [--workers 2] [--seed 0]

Prints cells per second and peak memory, and writes benchmarks/results/homogenize.json.
Two figures are reported: *warm* (unit-cell graphs already built, the steady state of
dataset generation, where each worker builds each of the ~560 distinct topologies once)
and *cold* (including building the graphs of every topology met).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def _work(args):
    keys, rhos, bases = args
    from graded.topology import reference_graph
    from graded.unitcell import homogenize_designs

    t0 = time.perf_counter()
    for key in keys:
        reference_graph(key)
    t1 = time.perf_counter()
    n = 0
    for key, rho, basis in zip(keys, rhos, bases):
        C = homogenize_designs(key, rho, basis)
        n += len(C)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "homogenize.json"))
    a = ap.parse_args()

    from graded.inverse.sampling import sample_designs
    from graded.topology import canonical

    d = sample_designs(a.n, np.random.default_rng(a.seed))
    basis = d.R2 @ (d.V[:, :, None] * np.eye(3)) @ d.R1 @ (d.U[:, :, None] * np.eye(3))
    groups = defaultdict(list)
    for k, t in enumerate(d.topology.tolist()):
        groups[canonical(tuple(map(tuple, t)))].append(k)
    # balance work: largest graphs first, round-robin over workers
    items = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    shards = [([], [], []) for _ in range(a.workers)]
    for i, (key, idx) in enumerate(items):
        s = shards[i % a.workers]
        s[0].append(key)
        s[1].append(d.rho[idx])
        s[2].append(basis[idx])
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers) as ex:
        res = list(ex.map(_work, shards))
    wall = time.perf_counter() - t0
    build = max(r[0] for r in res)
    fe = max(r[1] for r in res)
    n = sum(r[2] for r in res)
    peak_mb = max(r[3] for r in res) / 1024.0
    out = {
        "benchmark": "homogenize",
        "n_cells": n,
        "distinct_topologies": len(groups),
        "workers": a.workers,
        "warm_cells_per_s": n / fe,
        "cold_cells_per_s": n / (build + fe),
        "wall_s_including_process_start": wall,
        "graph_build_s": build,
        "fe_s": fe,
        "peak_rss_per_worker_mb": peak_mb,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
    }
    print(f"homogenize: {n} random cells ({len(groups)} topologies) on {a.workers} workers")
    print(f"  warm: {out['warm_cells_per_s']:.0f} cells/s   "
          f"cold (incl. graph build): {out['cold_cells_per_s']:.0f} cells/s")
    print(f"  peak memory per worker: {peak_mb:.0f} MB")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

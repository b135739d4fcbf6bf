"""Voxel homogenization: time and memory per resolution, and discretisation error per resolution.

    python benchmarks/voxel.py [--sizes 32 64 96] [--designs isotropic columnar lamellar]
                               [--convergence 16 24 32 48 64 96] [--threads 1]

Every run homogenizes spinodoid cells (wavelength 0.2 of the cell, seed 0) with periodic BCs,
6 load cases, on one torch thread unless told otherwise, each resolution in a fresh process so
that its peak memory is its own. *cpu_s* is the process CPU time of the solve (what a dataset
pays per cell per core); *wall_s* is inflated when the machine is shared. The convergence part
samples the *same* continuous field at every resolution and reports the relative error
max|C_n - C_ref| / max|C_ref| against the finest. Writes benchmarks/results/voxel.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

DESIGNS = {
    "isotropic": {"rho": 0.5, "theta": (90.0, 90.0, 90.0)},
    "columnar": {"rho": 0.4, "theta": (0.0, 30.0, 30.0)},
    "lamellar": {"rho": 0.3, "theta": (0.0, 0.0, 30.0)},
}


def one(n: int, design: str, threads: int, seed: int) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from graded.fem.voxel import homogenize_voxels
    from graded.spinodoid import SpinodoidDesign, generate_cell

    d = SpinodoidDesign(**DESIGNS[design])
    t0 = time.process_time()
    cell = generate_cell(d, n, np.random.default_rng(seed))
    gen = time.process_time() - t0
    c0, w0 = time.process_time(), time.perf_counter()
    r = homogenize_voxels(cell.solid)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {
        "n": n,
        "design": design,
        "density": cell.density,
        "removed_fraction": cell.connectivity.removed_fraction,
        "generate_cpu_s": gen,
        "cpu_s": cpu,
        "wall_s": wall,
        "iterations": int(r.iterations[0]),
        "converged": bool(r.converged[0]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "C": r.C[0].tolist(),
    }


def run_child(n: int, design: str, threads: int, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--one", str(n), "--design", design, "--threads", str(threads),
           "--seed", str(seed)]
    # one core also for the BLAS under the coarse LU (torch is limited by set_num_threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[32, 64, 96])
    ap.add_argument("--convergence", type=int, nargs="*", default=[])
    ap.add_argument("--designs", nargs="*", default=["isotropic"], choices=list(DESIGNS))
    ap.add_argument("--scatter", type=int, default=None, help="resolution of the seed-to-seed scatter study")
    ap.add_argument("--nseeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--design", default="isotropic", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "voxel.json"))
    a = ap.parse_args()
    if a.one is not None:
        print(json.dumps(one(a.one, a.design, a.threads, a.seed)))
        return

    import numpy as np

    out = {
        "benchmark": "voxel",
        "threads": a.threads,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "timing": [],
        "convergence": {},
    }
    cache: dict[tuple[int, str], dict] = {}

    def get(n: int, design: str) -> dict:
        if (n, design) not in cache:
            cache[n, design] = run_child(n, design, a.threads, a.seed)
        return cache[n, design]

    for n in a.sizes:
        for design in a.designs:
            r = get(n, design)
            out["timing"].append({k: v for k, v in r.items() if k != "C"})
            print(f"{design:9s} {n:4d}^3: cpu {r['cpu_s']:7.1f} s  wall {r['wall_s']:7.1f} s  "
                  f"{r['iterations']:4d} CG iterations  peak {r['peak_rss_mb']:6.0f} MB  rho {r['density']:.3f}")
    for design in a.designs if a.convergence else []:
        runs = [get(n, design) for n in sorted(a.convergence)]
        ref = np.array(runs[-1]["C"])
        rows = []
        for r in runs:
            C = np.array(r["C"])
            err = float(np.abs(C - ref).max() / np.abs(ref).max())
            diag = float(np.max(np.abs(np.diag(C) - np.diag(ref)) / np.diag(ref)))
            rows.append({"n": r["n"], "rel_error_max": err, "rel_error_diag": diag, "cpu_s": r["cpu_s"],
                         "iterations": r["iterations"], "C": r["C"]})
            print(f"{design:9s} {r['n']:4d}^3 vs {runs[-1]['n']}^3: max rel error {err:.4f}  "
                  f"diagonal {diag:.4f}  cpu {r['cpu_s']:.1f} s")
        out["convergence"][design] = rows
    if a.scatter:
        out["scatter"] = {}
        for design in a.designs:
            Cs = np.array([run_child(a.scatter, design, a.threads, s)["C"] for s in range(a.nseeds)])
            mean, std = Cs.mean(0), Cs.std(0, ddof=1)
            diag = std.diagonal() / mean.diagonal()
            out["scatter"][design] = {"n": a.scatter, "seeds": a.nseeds, "mean_C": mean.tolist(), "std_C": std.tolist(),
                                      "rel_std_diagonal": diag.tolist()}
            print(f"{design:9s} {a.scatter}^3, {a.nseeds} seeds: relative std of C11..C66 "
                  + " ".join(f"{v:.3f}" for v in diag))
    # a run updates the rows and studies it made and keeps the others of an existing file
    path = Path(a.out)
    if path.exists():
        kept = json.loads(path.read_text())
        fresh = {(r["n"], r["design"]) for r in out["timing"]}
        out["timing"] = [r for r in kept.get("timing", []) if (r["n"], r["design"]) not in fresh] + out["timing"]
        for study in ("convergence", "scatter"):
            merged = {**kept.get(study, {}), **out.get(study, {})}
            if merged:
                out[study] = merged
        out = {**kept, **out}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2))
    tmp.replace(path)


if __name__ == "__main__":
    main()

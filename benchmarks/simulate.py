"""Benchmark of the whole-part simulation (``graded simulate``) on this machine.

1. Solver scaling and convergence: uniform octet (1x2) and BCC (1x3) blocks of n^3 cells
   (2 mm cells, rho = 0.05), uniaxial compression with roller supports, lattice FE only;
   the apparent modulus against the homogenized one; struts from ~10^3 up to the largest
   size given; the direct solver (SuperLU) up to ``--direct-max`` struts, AMG-CG for all.
   Each size runs in its own process so the peak RSS is that size's.
2. The graded blocks of the issue: 40 mm box, 2.5 mm cells, two control points, both
   models, lattice vs continuum stiffness: "aligned" (cells 2x1+1x3+2x5 and 1x1+2x4+1x6,
   both unstretched, so whole cells fill the box) and "rotated" (the second cell stretched
   and rotated, as in ``benchmarks/build.py``: the box cuts cells at every face).

Prints one line per run and writes ``benchmarks/results/simulate.json``.

    python benchmarks/simulate.py                # default sizes
    python benchmarks/simulate.py --cells 4 8 16 24 32 --direct-max 60000
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

ROTATED_BLOCK = {
    "body": {"box": {"size": [40.0, 40.0, 40.0], "origin": [0.0, 0.0, 0.0]}},
    "cell_size": 2.5,
    "zeta": 0.5,
    "min_strut_diameter": 0.05,
    "control_points": [
        {"position": [5.0, 5.0, 5.0], "cell": {"topology": "2x1+1x3+2x5", "rho": 0.04}},
        {"position": [35.0, 35.0, 35.0],
         "cell": {"topology": "1x1+2x4+1x6", "rho": 0.08, "U": [1.2, 1.0, 0.9], "R1": [0.3, 0.0, 0.0]}},
    ],
    "loads": {"yield_strength": 880, "cases": [
        {"name": "compression z", "fixed": [{"face": "z-", "components": ["z"]}, {"face": "x-", "components": ["x"]},
                                            {"face": "y-", "components": ["y"]}],
         "loaded": [{"face": "z+", "displacement": [None, None, -0.2]}]},
        {"name": "load z", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "force": [0.0, 0.0, -1000.0]}]},
    ]},
}


ALIGNED_BLOCK = {**ROTATED_BLOCK, "control_points": [
    {"position": [5.0, 5.0, 5.0], "cell": {"topology": "2x1+1x3+2x5", "rho": 0.04}},
    {"position": [35.0, 35.0, 35.0], "cell": {"topology": "1x1+2x4+1x6", "rho": 0.08}},
]}


def _peak_gb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e9 if sys.platform == "darwin" else rss * 1024 / 1e9


def uniform_block(n: int, solver: str, topology: str = "1x2") -> dict:
    """One size, in this process: build, then the lattice solve alone (timed)."""
    import numpy as np

    from graded.build import build
    from graded.simulate import simulate
    from graded.unitcell import UnitCell

    L = 2.0 * n
    spec = {"body": {"box": {"size": [L, L, L]}}, "cell_size": 2.0,
            "control_points": [{"position": [1.0, 1.0, 1.0], "cell": {"topology": topology, "rho": 0.05}}],
            "loads": {"yield_strength": 880, "cases": [{
                "name": "uniaxial", "fixed": [{"face": "z-", "components": ["z"]}, {"face": "x-", "components": ["x"]},
                                              {"face": "y-", "components": ["y"]}],
                "loaded": [{"face": "z+", "displacement": [None, None, -0.01 * L]}]}]}}
    built = build(spec)
    graph = built.graph
    t0 = time.perf_counter()
    sim = simulate(spec, built=built, continuum=False, solver=solver)
    seconds = time.perf_counter() - t0
    lat = sim.cases[0].lattice
    C = UnitCell(topology, rho=0.05).stiffness() * 114000.0
    E33 = 1.0 / np.linalg.inv(C)[2, 2]
    return {"topology": topology, "cells_per_edge": n, "struts": graph.n_struts, "dofs": 6 * graph.n_nodes,
            "solver": lat["solver"],
            "seconds": round(seconds, 3), "solver_seconds": lat["seconds"], "iterations": lat["iterations"],
            "residual": lat["residual"], "peak_rss_gb": round(_peak_gb(), 3),
            "apparent_modulus_error": lat["apparent_modulus_MPa"] / E33 - 1.0}


def graded_block(spec: dict) -> dict:
    from graded.build import build
    from graded.simulate import simulate

    t0 = time.perf_counter()
    built = build(spec)
    graph = built.graph
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    sim = simulate(spec, built=built, continuum=False)
    lattice_s = time.perf_counter() - t1
    lattice_gb = _peak_gb()
    t2 = time.perf_counter()
    full = simulate(spec, built=built, continuum=True)
    both_s = time.perf_counter() - t2
    return {"struts": graph.n_struts, "nodes": graph.n_nodes, "build_s": round(build_s, 2),
            "lattice_s": round(lattice_s, 2), "lattice_peak_rss_gb": round(lattice_gb, 3),
            "lattice_and_continuum_s": round(both_s, 2), "peak_rss_gb": round(_peak_gb(), 3),
            "cases": full.summary()["cases"], "continuum": full.info.get("continuum"),
            "lattice_only_cases": [c.lattice for c in sim.cases]}


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, nargs="+", default=[4, 8, 10, 16, 24, 32],
                    help="octet blocks for the solver scaling")
    ap.add_argument("--bcc-cells", type=int, nargs="+", default=[4, 6, 8, 10], help="BCC blocks (convergence)")
    ap.add_argument("--direct-max", type=int, default=30_000, help="largest strut count solved by SuperLU")
    ap.add_argument("--skip-graded", action="store_true")
    ap.add_argument("--one", nargs=3, metavar=("N", "SOLVER", "TOPOLOGY"), help=argparse.SUPPRESS)  # child
    args = ap.parse_args()
    if args.one:
        print(json.dumps(uniform_block(int(args.one[0]), args.one[1], args.one[2])))
        return {}
    runs = []
    jobs = [("1x2", n) for n in args.cells] + [("1x3", n) for n in args.bcc_cells]
    for topology, n in jobs:
        for solver in ("direct", "amg"):
            if solver == "direct" and 25 * n**3 > args.direct_max:
                continue
            out = subprocess.run([sys.executable, __file__, "--one", str(n), solver, topology],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                runs.append({"cells_per_edge": n, "solver": solver, "error": out.stderr.strip().splitlines()[-1]})
                print(f"n = {n} {solver}: failed: {runs[-1]['error']}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            runs.append(r)
            print(f"{topology} block {n}^3: {r['struts']} struts, {r['dofs']} dofs, {solver}: {r['seconds']:.2f} s "
                  f"({r['iterations']} CG iterations), peak {r['peak_rss_gb']:.2f} GB, "
                  f"E_app / E_hom - 1 = {r['apparent_modulus_error']:+.4f}", flush=True)
    result = {"benchmark": "graded simulate: lattice FE scaling and the 40 mm graded blocks", "uniform_blocks": runs,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}}
    for name, block in (("aligned", ALIGNED_BLOCK), ("rotated", ROTATED_BLOCK)):
        if args.skip_graded:
            break
        g = graded_block(block)
        result[f"graded_block_{name}"] = g
        print(f"graded block 40 mm, {name} cells: {g['struts']} struts, lattice FE {g['lattice_s']:.1f} s, peak "
              f"{g['lattice_peak_rss_gb']:.2f} GB; with continuum {g['lattice_and_continuum_s']:.1f} s", flush=True)
        for c in g["cases"]:
            print(f"  {c['name']}: K_lattice = {c['lattice']['apparent_stiffness_N_per_mm']:.1f} N/mm, "
                  f"K_continuum = {c['continuum']['apparent_stiffness_N_per_mm']:.1f} N/mm, "
                  f"difference {100 * c['comparison']['stiffness_difference']:.1f} %, displacement difference "
                  f"{100 * c['comparison']['displacement_difference']:.1f} %", flush=True)
    out = Path(__file__).resolve().parent / "results" / "simulate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    print(f"-> {out}")
    return result


if __name__ == "__main__":
    main()

"""Benchmark of the whole-part simulation (``graded simulate``) on this machine.

1. Solver scaling and convergence: uniform octet (1x2) and BCC (1x3) blocks of n^3 cells
   (2 mm cells, rho = 0.05), uniaxial compression with roller supports, lattice FE only;
   the apparent modulus against the homogenized one; struts from ~10^3 up to the largest
   size given; the direct solver (SuperLU) up to ``--direct-max`` struts, AMG-CG for all.
   Each size runs in its own process so the peak RSS is that size's.
   The convergence of each topology: the observed order p of |E_app / E_hom - 1| in 1/n
   (log-log slope) and the limit of a three-term fit ``e_oo + a / n^p + b / n^(p+1)`` on
   the three largest blocks, which must be 0 if the boundary conditions (rollers: lateral
   faces free, uniaxial stress) match E_hom = 1 / S_33 of the periodic cell.
2. The graded blocks of the issue: 40 mm box, 2.5 mm cells, two control points, both
   models, lattice vs continuum stiffness: "aligned" (cells 2x1+1x3+2x5 and 1x1+2x4+1x6,
   both unstretched, so whole cells fill the box) and "rotated" (the second cell stretched
   and rotated, as in ``benchmarks/build.py``: the box cuts cells at every face).
3. The same blocks scaled to 10, 20, 30 mm (4, 8, 12 cells across, control points at 1/8
   and 7/8 of the edge): the lattice vs continuum difference against cells across, with
   a fit ``c / n`` (a surface layer of O(1) cells in a body of n); for whole cells also
   with the face struts at their periodic share (the surface layer removed); for cut
   cells the share of a force's work taken by the loaded surface fragments (nodes with
   two struts).
4. The main example (examples/bone_implant_simulate.yaml): lattice FE time and memory.

Every run is its own process, so each peak RSS is that run's. The machine is 2 cores
shared by several users: times are under contention. Prints one line per run and writes
``benchmarks/results/simulate.json``.

    python benchmarks/simulate.py                # default sizes
    python benchmarks/simulate.py --cells 4 8 16 24 32 --direct-max 60000
"""

from __future__ import annotations

import argparse
import copy
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
BLOCKS = {"aligned": ALIGNED_BLOCK, "rotated": ROTATED_BLOCK}


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
            "solver": lat["solver"], "E_apparent_MPa": lat["apparent_modulus_MPa"], "E_homogenized_MPa": E33,
            "C33_homogenized_MPa": float(C[2, 2]),
            "seconds": round(seconds, 3), "solver_seconds": lat["seconds"], "iterations": lat["iterations"],
            "residual": lat["residual"], "peak_rss_gb": round(_peak_gb(), 3),
            "apparent_modulus_error": lat["apparent_modulus_MPa"] / E33 - 1.0}


def scaled_block(block: dict, L: float) -> dict:
    """A graded block scaled to edge L (mm): the same cells, control points at L/8 and 7L/8."""
    out = copy.deepcopy(block)
    out["body"]["box"]["size"] = [L, L, L]
    for cp, f in zip(out["control_points"], (0.125, 0.875)):
        cp["position"] = [f * L] * 3
    return out


def graded_block(spec: dict, lattice_alone: bool = True) -> dict:
    """Build, the lattice FE alone (timed, peak RSS), then both models; for whole cells also both
    models with the face struts at their periodic share (:func:`graded.simulate.periodic_share`)."""
    import numpy as np

    from graded.build import build
    from graded.simulate import periodic_share, simulate

    t0 = time.perf_counter()
    built = build(spec)
    graph = built.graph
    build_s = time.perf_counter() - t0
    out = {"struts": graph.n_struts, "nodes": graph.n_nodes, "build_s": round(build_s, 2)}
    if lattice_alone:
        t1 = time.perf_counter()
        sim = simulate(spec, built=built, continuum=False)
        out.update(lattice_s=round(time.perf_counter() - t1, 2), lattice_peak_rss_gb=round(_peak_gb(), 3),
                   lattice_solves=[{k: c.lattice[k] for k in ("solver", "iterations", "residual", "seconds")}
                                   for c in sim.cases])
    t2 = time.perf_counter()
    full = simulate(spec, built=built, continuum=True)
    out.update(lattice_and_continuum_s=round(time.perf_counter() - t2, 2), peak_rss_gb=round(_peak_gb(), 3),
               cells_across=full.info["cells_across"], continuum=full.info.get("continuum"),
               cases=full.summary()["cases"])
    g = built.graph
    share = periodic_share(g.nodes, g.struts, built.body.lo, built.body.hi)
    if np.any(share < 1):  # whole cells: the diagnostic with face struts at their periodic share
        g.diameters[:] = g.diameters * np.sqrt(share)
        fair = simulate(spec, built=built, continuum=True)
        out["periodic_share_cases"] = [
            {"name": c.name, "signed_difference": c.lattice["apparent_stiffness_N_per_mm"]
             / c.continuum["apparent_stiffness_N_per_mm"] - 1.0} for c in fair.cases]
    return out


def example(path: str) -> dict:
    """The main example: build, lattice FE alone (timed, peak RSS), both models."""
    from graded.build import build
    from graded.simulate import simulate
    from graded.spec import load_spec

    spec = load_spec(path)
    built = build(spec)
    t1 = time.perf_counter()
    simulate(spec, built=built, continuum=False)
    lattice_s = time.perf_counter() - t1
    lattice_gb = _peak_gb()
    full = simulate(spec, built=built)
    return {"spec": path, "struts": built.graph.n_struts, "cells_across": full.info["cells_across"],
            "lattice_s": round(lattice_s, 3), "lattice_peak_rss_gb": round(lattice_gb, 3),
            "cases": [{"name": c.name, "K_lattice_N_per_mm": c.lattice["apparent_stiffness_N_per_mm"],
                       "K_continuum_N_per_mm": c.continuum["apparent_stiffness_N_per_mm"],
                       "stiffness_difference": c.comparison["stiffness_difference"]} for c in full.cases]}


def convergence(runs: list) -> dict:
    """Order and extrapolated limit of E_app / E_hom - 1 per topology (see the module docstring)."""
    import numpy as np

    out = {}
    for top in sorted({r["topology"] for r in runs if "topology" in r}):
        by_n = {r["cells_per_edge"]: r["apparent_modulus_error"] for r in runs if r.get("topology") == top}
        n = np.array(sorted(by_n), dtype=np.float64)
        e = np.array([by_n[k] for k in sorted(by_n)])
        if len(n) < 3:
            continue
        rate = float(-np.polyfit(np.log(n), np.log(np.abs(e)), 1)[0])
        p = round(rate)
        A = np.stack([np.ones(3), n[-3:] ** -p, n[-3:] ** -(p + 1)], axis=1)
        e_inf, a, b = np.linalg.solve(A, e[-3:])
        out[top] = {"cells_per_edge": n.astype(int).tolist(), "error": e.tolist(), "observed_order": rate,
                    "fit_on": n[-3:].astype(int).tolist(), "extrapolated_error": float(e_inf),
                    "leading_coefficient": float(a), "error_at_10": by_n.get(10)}
    return out


def cells_across_fit(sweep: list) -> dict:
    """Least-squares ``difference = c / n`` per block and case over the sweep (n = cells across)."""
    import numpy as np

    out = {}
    for name in sorted({r["block"] for r in sweep}):
        rows = sorted((r for r in sweep if r["block"] == name), key=lambda r: r["cells_across"])
        for case in rows[0]["cases"]:
            for key in ("signed_difference", "periodic_share_difference"):
                d = [next(c for c in r["cases"] if c["name"] == case["name"])[key] for r in rows]
                if any(v is None for v in d):
                    continue
                n = np.array([r["cells_across"] for r in rows])
                d = np.array(d)
                c = float(np.sum(d / n) / np.sum(1 / n**2))
                tag = "" if key == "signed_difference" else " (face struts at their periodic share)"
                out[f"{name}: {case['name']}{tag}"] = {"cells_across": n.tolist(), key: d.tolist(), "c_over_n": c,
                                                       "cells_for_10_percent": abs(c) / 0.10}
    return out


def _child(args: list) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sweep_row(name: str, L: float, g: dict) -> dict:
    cases = []
    fair = {c["name"]: c["signed_difference"] for c in g.get("periodic_share_cases", [])}
    for c in g["cases"]:
        Kl, Kc = c["lattice"]["apparent_stiffness_N_per_mm"], c["continuum"]["apparent_stiffness_N_per_mm"]
        cases.append({"name": c["name"], "K_lattice_N_per_mm": Kl, "K_continuum_N_per_mm": Kc,
                      "signed_difference": Kl / Kc - 1.0, "periodic_share_difference": fair.get(c["name"]),
                      "loaded_fragment_nodes": c["lattice"]["loaded_fragment_nodes"],
                      "fragment_work_share": c["lattice"]["fragment_work_share"],
                      "region_tolerance_mm": c["lattice"]["region_tolerance_mm"],
                      "max_displacement_mm": [c["lattice"]["max_displacement_mm"],
                                              c["continuum"]["max_displacement_mm"]]})
    return {"block": name, "edge_mm": L, "cells_across": g["cells_across"], "struts": g["struts"], "cases": cases}


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, nargs="+", default=[4, 6, 8, 10, 16, 24, 32],
                    help="octet blocks (scaling and convergence)")
    ap.add_argument("--bcc-cells", type=int, nargs="+", default=[4, 6, 8, 10], help="BCC blocks (convergence)")
    ap.add_argument("--direct-max", type=int, default=30_000, help="largest strut count solved by SuperLU")
    ap.add_argument("--sweep", type=float, nargs="*", default=[10.0, 20.0, 30.0],
                    help="edges (mm) of the scaled graded blocks (the 40 mm ones are always run)")
    ap.add_argument("--skip-graded", action="store_true")
    ap.add_argument("--keep-uniform", action="store_true",
                    help="reuse the uniform blocks of the existing results JSON, rerun the rest")
    ap.add_argument("--one", nargs=3, metavar=("N", "SOLVER", "TOPOLOGY"), help=argparse.SUPPRESS)  # child
    ap.add_argument("--graded", nargs=2, metavar=("NAME", "EDGE"), help=argparse.SUPPRESS)  # child
    ap.add_argument("--example", metavar="SPEC", help=argparse.SUPPRESS)  # child
    args = ap.parse_args()
    if args.one:
        print(json.dumps(uniform_block(int(args.one[0]), args.one[1], args.one[2])))
        return {}
    if args.graded:
        L = float(args.graded[1])
        print(json.dumps(graded_block(scaled_block(BLOCKS[args.graded[0]], L), lattice_alone=L >= 40.0)))
        return {}
    if args.example:
        print(json.dumps(example(args.example)))
        return {}
    out = Path(__file__).resolve().parent / "results" / "simulate.json"
    runs = json.loads(out.read_text())["uniform_blocks"] if args.keep_uniform else []
    jobs = [] if args.keep_uniform else [("1x2", n) for n in args.cells] + [("1x3", n) for n in args.bcc_cells]
    for topology, n in jobs:
        for solver in ("direct", "amg"):
            if solver == "direct" and 25 * n**3 > args.direct_max:
                continue
            if solver == "amg" and 25 * n**3 < 3_000:
                continue  # AMG setup dominates below ~10^3 struts; the direct runs cover them
            r = _child(["--one", str(n), solver, topology])
            if "error" in r:
                runs.append({"topology": topology, "cells_per_edge": n, "solver": solver, **r})
                print(f"{topology} n = {n} {solver}: failed: {r['error']}", flush=True)
                continue
            runs.append(r)
            print(f"{topology} block {n}^3: {r['struts']} struts, {r['dofs']} dofs, {solver}: {r['seconds']:.2f} s "
                  f"({r['iterations']} CG iterations), peak {r['peak_rss_gb']:.2f} GB, "
                  f"E_app / E_hom - 1 = {r['apparent_modulus_error']:+.4f}", flush=True)
    one_per_size = {(r["topology"], r["cells_per_edge"]): r for r in runs if "error" not in r}  # both solvers agree
    conv = convergence(list(one_per_size.values()))
    for top, c in conv.items():
        print(f"{top}: |E_app / E_hom - 1| ~ n^-{c['observed_order']:.2f}, extrapolated limit "
              f"{c['extrapolated_error']:+.4f} (fit on n = {c['fit_on']}), at n = 10: {c['error_at_10']}", flush=True)
    result = {"benchmark": "graded simulate: lattice FE scaling and the 40 mm graded blocks",
              "note": "2 cores shared by four people: times are under contention",
              "uniform_blocks": runs, "convergence": conv,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}}
    if not args.skip_graded:
        sweep = []
        for name in BLOCKS:
            for L in sorted(set(args.sweep) | {40.0}):
                g = _child(["--graded", name, str(L)])
                if "error" in g:
                    print(f"graded block {L:g} mm, {name}: failed: {g['error']}", flush=True)
                    continue
                if L >= 40.0:
                    result[f"graded_block_{name}"] = g
                    print(f"graded block 40 mm, {name} cells: {g['struts']} struts, lattice FE "
                          f"{g['lattice_s']:.1f} s, peak {g['lattice_peak_rss_gb']:.2f} GB; with continuum "
                          f"{g['lattice_and_continuum_s']:.1f} s", flush=True)
                row = _sweep_row(name, L, g)
                sweep.append(row)
                for c in row["cases"]:
                    print(f"  {name} {L:g} mm ({row['cells_across']:.0f} cells across), {c['name']}: "
                          f"K_lattice = {c['K_lattice_N_per_mm']:.1f} N/mm, K_continuum = "
                          f"{c['K_continuum_N_per_mm']:.1f} N/mm, K_l / K_c - 1 = "
                          f"{100 * c['signed_difference']:+.1f} %"
                          + ("" if c["periodic_share_difference"] is None else
                             f" (face struts at periodic share: {100 * c['periodic_share_difference']:+.1f} %)")
                          + f", loaded fragments {c['loaded_fragment_nodes']} nodes taking "
                          f"{100 * c['fragment_work_share']:.0f} % of the work", flush=True)
        result["cells_across_sweep"] = sweep
        result["cells_across_fit"] = cells_across_fit(sweep)
        for k, v in result["cells_across_fit"].items():
            print(f"  {k}: K_l / K_c - 1 ~ {v['c_over_n']:+.3f} / n", flush=True)
        ex = _child(["--example", str(Path(__file__).resolve().parents[1] / "examples" / "bone_implant_simulate.yaml")])
        result["example"] = ex
        print(f"example: {ex}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    print(f"-> {out}")
    return result


if __name__ == "__main__":
    main()

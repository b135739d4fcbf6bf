"""Benchmark of the as-built stiffness at the control points (issue 17).

Random box specs with 2-4 control points 4 to 20 cells apart (2 mm cells), each point an
explicit random cell of the design space (SI Table S1: random topology, stretches and
rotations) or, for the last specs, a reachable target (the FE stiffness of a random cell)
designed by the inverse model. Every spec is built four ways:

* ``default``: interpolating blend, polar basis blend, constrained phase fields, closed
  loop on (the spec defaults);
* ``no_loop``: the same with ``closed_loop.iterations = 0`` (for the loop's cost);
* ``si``: the SI's Gaussian weights (zeta = 0.5) and real-space basis blend, plain
  least-squares phase fields, no loop (the state before issue 17);
* ``si_loop``: the SI blend with the closed loop on.

Per control point it records the as-built error (relative Frobenius, periodic local-cell
model, against the point's own cell or target) before and after the loop, the design
error, the independent window check (3 x 3 x 3 cells of the built graph, beam FE with
affine boundary conditions) and the phase fit; per spec the build times. Prints a summary
and writes ``benchmarks/results/asbuilt.json``.

    python benchmarks/asbuilt.py [--specs 12] [--targets 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

L = 2.0  #: cell size, mm


#: Principal stretches are drawn log-uniformly in [1 / STRETCH, STRETCH].
STRETCH = 1.25
#: Rotations R_I, R_II: uniform axis, angle uniform in [0, MAX_ANGLE] (rad); half the
#: cells also get an R_II of up to ROTATED_ANGLE ("some rotated").
MAX_ANGLE = 0.3
ROTATED_ANGLE = 0.6


def _rotation(rng, max_angle: float) -> list:
    """Axis-angle (theta, e1, e2) of a rotation about a uniform axis by an angle in [0, max_angle]."""
    from scipy.spatial.transform import Rotation

    from graded.elastic import matrix_to_axis_angle

    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    return matrix_to_axis_angle(Rotation.from_rotvec(rng.uniform(0.0, max_angle) * axis).as_matrix()).tolist()


def _random_cell(rng, *, rotated: bool) -> dict:
    from graded.inverse.sampling import sample_designs

    d = sample_designs(1, rng)  # topology of the design space
    top = "+".join(f"{int(t)}x{int(i)}" for t, i in d.topology[0])
    s = lambda: np.exp(rng.uniform(-np.log(STRETCH), np.log(STRETCH), 3)).tolist()  # noqa: E731
    return {"topology": top, "rho": float(rng.uniform(0.02, 0.1)), "U": s(), "V": s(),
            "R1": _rotation(rng, MAX_ANGLE), "R2": _rotation(rng, ROTATED_ANGLE if rotated else MAX_ANGLE)}


def random_spec(rng, *, targets: bool = False) -> tuple[dict, float]:
    """A random box spec and the smallest distance between its control points (cells)."""
    from graded.unitcell import UnitCell

    k = int(rng.integers(2, 5)) if not targets else 2
    sep = float(rng.uniform(4.0, 20.0))
    size = np.array([max(sep + 4.0, 8.0), 8.0, 6.0])  # cells
    margin = 1.5
    for _ in range(10_000):
        if k == 2:
            a = rng.uniform(margin, size - margin)
            direction = rng.standard_normal(3)
            direction /= np.linalg.norm(direction)
            b = a + sep * direction
            pts = np.stack([a, b])
        else:
            pts = rng.uniform(margin, size - margin, (k, 3))
        if np.all((pts >= margin) & (pts <= size - margin)):
            dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + 1e9 * np.eye(k)
            if dist.min() >= 4.0:
                break
    else:  # pragma: no cover - the box always holds the points
        raise RuntimeError("could not place the control points")
    cps = []
    for p in pts:
        cell = _random_cell(rng, rotated=bool(rng.integers(2)))
        if targets:
            C = UnitCell.from_dict(cell).stiffness()
            cps.append({"position": (L * p).tolist(), "target": {"stiffness": C.tolist(), "units": "normalized"}})
        else:
            cps.append({"position": (L * p).tolist(), "cell": cell})
    spec = {"body": {"box": {"size": (L * size).tolist()}}, "cell_size": L, "control_points": cps,
            "min_strut_diameter": 0.0}
    return spec, float(dist.min())


VARIANTS = {
    "default": {},
    "no_loop": {"closed_loop": {"iterations": 0}},
    "si": {"blend": {"kind": "gaussian", "basis": "linear"}, "zeta": 0.5, "closed_loop": {"iterations": 0}},
    "si_loop": {"blend": {"kind": "gaussian", "basis": "linear"}, "zeta": 0.5},
}


def run_variant(spec: dict, variant: str) -> dict:
    from graded.build import build

    s = dict(spec, **VARIANTS[variant])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = build(s)
        except Exception as exc:  # a variant the blend cannot build (e.g. SI blend degenerates)
            return {"variant": variant, "error": f"{type(exc).__name__}: {exc}"}
    seconds = time.perf_counter() - t0
    loop = result.closed_loop
    fit = result.grading.phase.fit
    points = []
    for i, (lp, w) in enumerate(zip(loop.points, result.windows)):
        points.append({
            "reference": lp.reference,
            "design_error": lp.design_error,
            "error_before": lp.error_before,
            "error_after": lp.error_after,
            "within": lp.within,
            "corrections": lp.corrections,
            "window_vs_reference": None if w is None else w.error_vs_reference,
            "window_vs_local": None if w is None else w.error_vs_local,
            "window_complete": None if w is None else w.complete,
            "basis_error": float(fit.point_basis_error[i]) if fit is not None and len(fit.point_basis_error) else None,
        })
    return {"variant": variant, "seconds": seconds, "closed_loop_s": loop.time_s, "rebuilds": loop.rebuilds,
            "phase_residual": None if fit is None else float(fit.residual), "struts": result.graph.n_struts,
            "grains": None if result.grading.grains is None else [list(g) for g in result.grading.grains.groups],
            "points": points}


def _stats(values) -> dict:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if len(v) == 0:
        return {"n": 0}
    return {"n": int(len(v)), "median": float(np.median(v)), "max": float(v.max())}


def summarise(runs: list) -> dict:
    out = {}
    for variant in VARIANTS:
        rs = [r[variant] for r in runs if variant in r and "points" in r[variant]]
        sep = {id(r[variant]): r["min_separation_cells"] for r in runs if variant in r}
        pts = [p for r in rs for p in r["points"]]
        apart = {n: [p for r in rs if sep[id(r)] >= n for p in r["points"] if p["reference"] == "cell"] for n in (5, 8)}
        expl = [p for p in pts if p["reference"] == "cell"]
        tgt = [p for p in pts if p["reference"] == "target"]
        out[variant] = {
            "builds": len(rs),
            "failed_builds": sum(1 for r in runs if variant in r and "error" in r[variant]),
            "explicit_before": _stats(p["error_before"] for p in expl),
            "explicit_after": _stats(p["error_after"] for p in expl),
            "explicit_window": _stats(p["window_vs_reference"] for p in expl),
            "explicit_window_5_cells_apart": _stats(p["window_vs_reference"] for p in apart[5]),
            "explicit_window_8_cells_apart": _stats(p["window_vs_reference"] for p in apart[8]),
            "built_in_grains": sum(1 for r in rs if r.get("grains")),
            "window_vs_local": _stats(p["window_vs_local"] for p in pts),
            "target_excess_after": _stats(p["error_after"] - p["design_error"] for p in tgt
                                          if p["error_after"] is not None),
            "target_design_error": _stats(p["design_error"] for p in tgt),
            "points_without_figure": sum(1 for p in pts if p["error_after"] is None),
            "build_s": _stats(r["seconds"] for r in rs),
        }
    ratios = [r["default"]["seconds"] / r["no_loop"]["seconds"] for r in runs
              if "seconds" in r.get("default", {}) and "seconds" in r.get("no_loop", {})]
    ratios_si = [r["si_loop"]["seconds"] / r["si"]["seconds"] for r in runs
                 if "seconds" in r.get("si_loop", {}) and "seconds" in r.get("si", {})]
    out["loop_cost_ratio"] = _stats(ratios)
    out["loop_cost_ratio_si"] = _stats(ratios_si)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--specs", type=int, default=12, help="random explicit-cell specs")
    ap.add_argument("--targets", type=int, default=2, help="random target specs (inverse design)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    variants = args.variants.split(",")
    runs = []
    for n in range(args.specs + args.targets):
        spec, sep = random_spec(rng, targets=n >= args.specs)
        run = {"spec": spec, "min_separation_cells": sep}
        for v in variants:
            run[v] = run_variant(spec, v)
        runs.append(run)
        d = run[variants[0]]
        errs = [p["error_after"] for p in d.get("points", [])]
        print(f"spec {n}: {len(spec['control_points'])} points, {sep:.1f} cells apart, "
              f"{variants[0]} as-built errors {[None if e is None else round(e, 4) for e in errs]}", flush=True)
    summary = summarise(runs)
    result = {"benchmark": "as-built stiffness at the control points, random box specs (issue 17)",
              "seed": args.seed, "summary": summary, "runs": runs,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform()}}
    out = Path(__file__).resolve().parent / "results" / "asbuilt.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, out)
    for v in variants:
        s = summary[v]
        print(f"{v:8s} explicit as-built vs own cell: before {s['explicit_before']}, after {s['explicit_after']}; "
              f"window {s['explicit_window']}; targets excess {s['target_excess_after']}; "
              f"no figure {s['points_without_figure']}; failed builds {s['failed_builds']}; build {s['build_s']}")
    print(f"loop cost (default / no_loop): {summary['loop_cost_ratio']}; SI: {summary['loop_cost_ratio_si']} -> {out}")
    return result


if __name__ == "__main__":
    main()

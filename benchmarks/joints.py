"""Benchmark: hull-joint meshing per node, vectorised over nodes of one kind against one qhull run per node.

``graded.mesh.joints.build_joint_surface`` on regular and graded lattices, with
``vectorise=True`` (the default: one qhull run per kind of node, borrowed by the others after a
convexity certificate) and ``vectorise=False`` (the reference path: qhull and the Python work
around it for every node). Each is timed ``--repeats`` times; the minimum is kept (the machine
is shared). Prints milliseconds per node and the ratio, writes ``benchmarks/results/joints.json``.

``--baseline TREE`` also times ``build_joint_surface`` of another source tree on the same inputs
(in a subprocess with that tree first on the path), for example the code before joints were
vectorised::

    git worktree add /tmp/before 893a7c3
    python benchmarks/joints.py --baseline /tmp/before

    python benchmarks/joints.py [--repeats 3] [--baseline TREE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from graded.graph import LatticeGraph
from graded.io.atomic import atomic_path
from graded.mesh import bcc_graph, octet_graph
from graded.mesh.joints import build_joint_surface
from graded.mesh.solid import BALL_MARGIN
from graded.mesh.tessellation import area_scale, segments_for_radius

OUT = Path(__file__).resolve().parent / "results" / "joints.json"


def joint_inputs(g: LatticeGraph):
    """The arguments ``mesh_graph`` gives ``build_joint_surface`` for one layer of ``g``."""
    radius = np.stack([g.diameters, g.diameters], axis=1) / 2.0
    seg = segments_for_radius(radius.max(axis=1))
    vr = radius * area_scale(seg)[:, None]
    node_r = np.zeros(g.n_nodes)
    np.maximum.at(node_r, g.struts[:, 0], radius[:, 0])
    np.maximum.at(node_r, g.struts[:, 1], radius[:, 1])
    bseg = segments_for_radius(node_r)
    br = node_r * area_scale(bseg) + np.minimum(BALL_MARGIN * node_r, 0.005)
    return g.nodes, g.struts, vr, seg, bseg, br


def lattices():
    """Regular (one diameter) and graded (diameters vary along x) lattices of ~10-20k struts."""
    yield "bcc uniform", bcc_graph((12, 12, 12), d_min=0.4, d_max=0.4)
    yield "bcc graded", bcc_graph((12, 12, 12), d_min=0.3, d_max=0.5)
    yield "octet graded", octet_graph((8, 8, 8), d_min=0.25, d_max=0.45)


#: Run in the baseline tree's interpreter: times its build_joint_surface on saved inputs.
_BASELINE = """
import json, sys, time
import numpy as np
from graded.mesh.joints import build_joint_surface
path, repeats = sys.argv[1], int(sys.argv[2])
d = np.load(path)
args = [d[k] for k in ("nodes", "struts", "radii", "segments", "ball_segments", "ball_radius")]
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    surf = build_joint_surface(*args)
    times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": min(times), "triangles": int(len(surf.triangles))}))
"""


def time_baseline(tree: Path, inputs, repeats: int) -> dict:
    """Best time (s) and triangle count of ``tree``'s ``build_joint_surface`` on ``inputs``."""
    keys = ("nodes", "struts", "radii", "segments", "ball_segments", "ball_radius")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inputs.npz"
        np.savez(path, **dict(zip(keys, inputs, strict=True)))
        env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
        out = subprocess.run([sys.executable, "-c", _BASELINE, str(path), str(repeats)], env=env, cwd=tmp,
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--baseline", type=Path, help="another source tree whose build_joint_surface is timed too")
    args = ap.parse_args()
    rows = []
    for name, g in lattices():
        inputs = joint_inputs(g)
        best = {}
        for vectorise in (True, False):
            times = []
            for _ in range(max(1, args.repeats)):
                t0 = time.perf_counter()
                surf = build_joint_surface(*inputs, vectorise=vectorise)
                times.append(time.perf_counter() - t0)
            best[vectorise] = min(times)
        row = {"lattice": name, "nodes": int(g.n_nodes), "struts": int(len(g.struts)),
               "triangles": int(len(surf.triangles)),
               "vectorised_ms_per_node": round(1e3 * best[True] / g.n_nodes, 4),
               "per_node_ms_per_node": round(1e3 * best[False] / g.n_nodes, 4),
               "speedup": round(best[False] / best[True], 2)}
        line = (f"{name}: {row['nodes']} nodes, vectorised {row['vectorised_ms_per_node']} ms/node, "
                f"one qhull per node {row['per_node_ms_per_node']} ms/node: {row['speedup']}x")
        if args.baseline is not None:
            base = time_baseline(args.baseline, inputs, max(1, args.repeats))
            row.update(baseline_ms_per_node=round(1e3 * base["seconds"] / g.n_nodes, 4),
                       baseline_triangles=base["triangles"], speedup_vs_baseline=round(base["seconds"] / best[True], 2))
            line += f"; baseline {row['baseline_ms_per_node']} ms/node: {row['speedup_vs_baseline']}x"
        rows.append(row)
        print(line, flush=True)
    doc = {"benchmark": "joints: hull-joint meshing per node, vectorised vs one qhull run per node",
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "load_average_1min": os.getloadavg()[0]},
           "repeats": args.repeats, "results": rows}
    if args.baseline is not None:
        doc["baseline"] = {"tree": str(args.baseline), "commit": _commit(args.baseline)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"-> {args.out}")


def _commit(tree: Path) -> str | None:
    """The git commit checked out in ``tree``, or None."""
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


if __name__ == "__main__":
    main()

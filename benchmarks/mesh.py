"""Benchmark: lattice struts meshed per second into one watertight solid.

Regular BCC and octet lattices (cell 2 mm, strut diameters graded 0.3-0.5 mm) of about
2,000 / 8,000 / 20,000 struts are meshed with ``graded.mesh.mesh_graph``; the time covers
the whole call (geometry, union, conversion to trimesh, facts). The plain manifold3d batch
union (``method="union"``) is timed for comparison up to ``--union-max`` struts.

    python benchmarks/mesh.py [--sizes 2000 8000 20000] [--union-max 2000] [--out benchmarks/results/mesh.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from graded.io.atomic import atomic_path
from graded.mesh import bcc_graph, mesh_graph, octet_graph, superpose


def _bcc_shape(target: int):
    cells = max(1, round(target / 8))
    n = max(1, round(cells ** (1 / 3)))
    for a in range(n, 0, -1):
        for b in range(a, 0, -1):
            if cells % (a * b) == 0:
                return (a, b, cells // (a * b))
    return (n, n, max(1, cells // (n * n)))


def make_graph(lattice: str, target: int):
    if lattice == "bcc":
        return bcc_graph(_bcc_shape(target))
    if lattice == "bcc+octet":
        # superposed topologies (35-degree strut pairs at the corners): 32abc + 4(ab+bc+ca) struts
        best = None
        for a in range(1, 20):
            for b in range(a, a + 2):
                for c in range(b, 3 * a + 1):
                    count = 32 * a * b * c + 4 * (a * b + b * c + c * a)
                    if best is None or abs(count - target) < abs(best[1] - target):
                        best = ((a, b, c), count)
        return superpose(bcc_graph(best[0]), octet_graph(best[0]))
    # octet: the FCC nearest-neighbour graph on an a x b x c block has exactly
    # 24abc + 4(ab + bc + ca) struts; pick the near-cubic block closest to the target
    best = None
    for a in range(2, 25):
        for b in range(a, a + 2):
            for c in range(b, 3 * a):
                count = 24 * a * b * c + 4 * (a * b + b * c + c * a)
                if best is None or abs(count - target) < abs(best[1] - target):
                    best = ((a, b, c), count)
    return octet_graph(best[0])


def run(sizes, lattices, union_max, repeat=1):
    rows = []
    for lattice in lattices:
        for target in sizes:
            g = make_graph(lattice, target)
            methods = ["joints"] + (["union"] if g.n_struts <= union_max else [])
            for method in methods:
                best = None
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    res = mesh_graph(g, method=method)
                    dt = time.perf_counter() - t0
                    best = dt if best is None else min(best, dt)
                f = res.facts
                row = {
                    "lattice": lattice,
                    "target_struts": target,
                    "struts": g.n_struts,
                    "nodes": g.n_nodes,
                    "method": method,
                    "seconds": round(best, 3),
                    "struts_per_second": round(g.n_struts / best, 1),
                    "triangles": f.triangles,
                    "volume_mm3": round(f.volume, 4),
                    "strut_volume_mm3": round(g.strut_volume, 4),
                    "watertight": f.watertight,
                    "is_volume": f.is_volume,
                    "bodies": f.bodies,
                    "fallback_struts": res.stats["fallback_struts"],
                    "fallback_nodes": res.stats["fallback_nodes"],
                }
                rows.append(row)
                print(
                    f"{lattice:9s} {g.n_struts:6d} struts {method:6s} {best:7.2f} s "
                    f"{row['struts_per_second']:8.0f} struts/s  {f.triangles:8d} tri  "
                    f"V={f.volume:9.2f} mm3 (strut volume {g.strut_volume:9.2f})  "
                    f"watertight={f.watertight} bodies={f.bodies}",
                    flush=True,
                )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 20000])
    kinds = ["bcc", "octet", "bcc+octet"]
    ap.add_argument("--lattices", nargs="+", default=kinds, choices=kinds)
    ap.add_argument("--union-max", type=int, default=2500, help="largest graph also timed with method='union'")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mesh.json"))
    args = ap.parse_args(argv)
    rows = run(args.sizes, args.lattices, args.union_max, args.repeat)
    doc = {
        "benchmark": "mesh",
        "what": "struts meshed per second, graph -> watertight manifold trimesh incl. facts",
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "results": rows,
    }
    out = Path(args.out)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return doc


if __name__ == "__main__":
    main()

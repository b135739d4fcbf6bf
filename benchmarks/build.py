"""Benchmark of the grading engine: a 40 x 40 x 40 mm box of 2 mm cells (8,000 cells).

Two control points with explicit cells at opposite corners, zeta = 0.5. Prints the wall
time and peak memory of ``build_graph`` and writes ``benchmarks/results/build.json``.
Targets: under 60 s and under 4 GB on the development machine (2 cores).

    python benchmarks/build.py
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

SPEC = {
    "body": {"box": {"size": [40.0, 40.0, 40.0], "origin": [0.0, 0.0, 0.0]}},
    "cell_size": 2.0,
    "zeta": 0.5,
    "min_strut_diameter": 0.05,
    "control_points": [
        {"position": [5.0, 5.0, 5.0], "cell": {"topology": "2x1+1x3+2x5", "rho": 0.04}},
        {"position": [35.0, 35.0, 35.0],
         "cell": {"topology": "1x1+2x4+1x6", "rho": 0.08, "U": [1.2, 1.0, 0.9], "R1": [0.3, 0.0, 0.0]}},
    ],
}


def main() -> dict:
    from graded.build import build_graph

    t0 = time.perf_counter()
    graph = build_graph(SPEC)
    seconds = time.perf_counter() - t0
    # ru_maxrss: kilobytes on Linux (bytes on macOS)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_gb = rss / 1e9 if sys.platform == "darwin" else rss * 1024 / 1e9
    result = {
        "benchmark": "build_graph 40x40x40 mm box, 2 mm cells, 2 control points",
        "seconds": round(seconds, 2),
        "peak_rss_gb": round(peak_gb, 3),
        "targets": {"seconds": 60, "peak_rss_gb": 4},
        "nodes": graph.n_nodes,
        "struts": graph.n_struts,
        "struts_per_s": round(graph.n_struts / seconds),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    out = Path(__file__).resolve().parent / "results" / "build.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    print(f"build_graph: {seconds:.1f} s, peak RSS {peak_gb:.2f} GB, "
          f"{graph.n_nodes} nodes, {graph.n_struts} struts -> {out}")
    return result


if __name__ == "__main__":
    main()

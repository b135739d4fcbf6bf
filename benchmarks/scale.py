"""Scale benchmark: build time and peak memory against strut count; dataset throughput against workers.

Builds: boxes of 2 mm cells (the two control points of ``benchmarks/build.py``), edge
``--sizes`` mm, written as STL and 3MF. Each size runs in its own process so its peak memory
is its own; the peak is sampled (psutil, every 0.2 s) over the whole process tree (the build
and its Dask worker processes together), and ``ru_maxrss`` of the build process is given too.
Parts above :data:`graded.mesh.tiles.TILED_ABOVE` struts are meshed in tiles on a LocalCluster
of ``--workers`` processes.

Datasets: ``--dataset-n`` FE samples with 1 and 2 workers, on the plain process pool and on
Dask (``--scheduler local``), and the Dask overhead against the pool at the same worker count.

Results go to ``benchmarks/results/scale.json`` (merged with what is there, so sizes can be run
one at a time). Timings on the shared 2-core development machine are under contention.

    python benchmarks/scale.py --sizes 10,20 --dataset-n 2000
    python benchmarks/scale.py --sizes 40 --no-dataset
    python benchmarks/scale.py --sizes "" --dataset-n 20000 --dataset-workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "scale.json"


def spec_for(size: float) -> dict:
    return {
        "body": {"box": {"size": [size, size, size], "origin": [0.0, 0.0, 0.0]}},
        "cell_size": 2.0,
        "zeta": 0.5,
        "min_strut_diameter": 0.05,
        "control_points": [
            {"position": [0.125 * size] * 3, "cell": {"topology": "2x1+1x3+2x5", "rho": 0.04}},
            {"position": [0.875 * size] * 3,
             "cell": {"topology": "1x1+2x4+1x6", "rho": 0.08, "U": [1.2, 1.0, 0.9], "R1": [0.3, 0.0, 0.0]}},
        ],
        "outputs": {"files": ["stl", "3mf"]},
    }


class TreePeak:
    """Peak resident memory of this process and all its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in [self.proc] + self.proc.children(recursive=True):
            try:
                total += p.memory_info().rss
            except Exception:  # a worker that just ended
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def one_build(size: float, workers: int, keep: bool) -> dict:
    from graded.build import build
    from graded.mesh.tiles import TILED_ABOVE

    out = Path(tempfile.mkdtemp(prefix=f"scale-{size:g}-"))
    t0 = time.perf_counter()
    with TreePeak() as peak:
        result = build(spec_for(size), output_dir=out / "part",
                       scheduler="local" if workers else None)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    solid = result.solid
    files = {k: Path(v).stat().st_size for k, v in result.files.items()}
    row = {
        "box_mm": size,
        "struts": result.graph.n_struts,
        "tiled": result.graph.n_struts > TILED_ABOVE,
        "seconds": round(seconds, 1),
        "timings_s": {k: round(v, 1) for k, v in result.timings.items()},
        "peak_tree_rss_gb": round(peak.peak / 1e9, 2),
        "peak_build_process_rss_gb": round(rss / 1e9, 2),
        "triangles": solid.facts.triangles,
        "volume_mm3": solid.facts.volume,
        "watertight": solid.facts.watertight,
        "bodies": solid.facts.bodies,
        "file_bytes": files,
    }
    for k in ("tiles", "tile_grid", "halo_mm", "meshed_struts", "seam_half_edges", "seam_triangles_split",
              "worker_peak_rss_gb"):
        if k in solid.stats:
            row[k] = solid.stats[k]
    if not keep:
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    else:
        row["output_dir"] = str(out)
    return row


def dataset_rows(n: int, chunk: int, worker_counts=(1, 2)) -> list[dict]:
    from graded.inverse.dataset import generate_dataset

    rows = []
    for workers in worker_counts:
        for scheduler in (None, "local"):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                s = generate_dataset(Path(tmp) / "d", n=n, seed=0, chunk_size=chunk, workers=workers,
                                     scheduler=scheduler)
                seconds = time.perf_counter() - t0
            rows.append({"workers": workers, "path": "dask local" if scheduler else "process pool",
                         "samples": n, "chunk_size": chunk, "seconds": round(seconds, 2),
                         "samples_per_second": round(n / seconds, 1), "library_seconds": round(s.seconds, 2)})
    for workers in worker_counts:
        pool = next(r for r in rows if r["workers"] == workers and r["path"] == "process pool")
        dask = next(r for r in rows if r["workers"] == workers and r["path"] == "dask local")
        dask["overhead_vs_pool"] = round(dask["seconds"] / pool["seconds"] - 1.0, 3)
    return rows


def merge(update: dict) -> dict:
    doc = json.loads(OUT.read_text()) if OUT.exists() else {}
    builds = {r["box_mm"]: r for r in doc.get("builds", [])}
    for r in update.get("builds", []):
        builds[r["box_mm"]] = r
    doc["benchmark"] = "scale: big builds (tiled meshing) and Dask datasets"
    doc["note"] = "2-core machine shared with other jobs: timings are under contention"
    doc["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                      "load_average_1min": os.getloadavg()[0]}
    doc["builds"] = [builds[k] for k in sorted(builds)]
    if "dataset" in update:  # rows of other sample counts or worker counts stay
        key = lambda r: (r["samples"], r["workers"], r["path"])  # noqa: E731
        rows = {key(r): r for r in doc.get("dataset", [])}
        rows.update({key(r): r for r in update["dataset"]})
        doc["dataset"] = [rows[k] for k in sorted(rows)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, OUT)
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,20", help="box edges (mm), comma-separated; 40 is ~603k struts")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster workers for tiled builds")
    ap.add_argument("--dataset-n", type=int, default=2000)
    ap.add_argument("--dataset-chunk", type=int, default=250)
    ap.add_argument("--dataset-workers", default="1,2", help="worker counts of the dataset runs, comma-separated")
    ap.add_argument("--no-dataset", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the written parts (their folder is printed)")
    ap.add_argument("--one-build", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one_build is not None:
        print(json.dumps(one_build(args.one_build, args.workers, args.keep)))
        return
    update: dict = {"builds": []}
    for size in [float(s) for s in args.sizes.split(",") if s.strip()]:
        cmd = [sys.executable, __file__, "--one-build", str(size), "--workers", str(args.workers)]
        if args.keep:
            cmd.append("--keep")
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            update["builds"].append({"box_mm": size, "failed": done.stderr.strip().splitlines()[-1:]})
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        update["builds"].append(row)
        print(f"box {size:g} mm: {row['struts']} struts, {row['seconds']} s, peak {row['peak_tree_rss_gb']} GB "
              f"(tree), {row['triangles']} triangles, watertight {row['watertight']}, bodies {row['bodies']}")
    if not args.no_dataset:
        update["dataset"] = dataset_rows(args.dataset_n, args.dataset_chunk,
                                         [int(w) for w in args.dataset_workers.split(",") if w.strip()])
        for r in update["dataset"]:
            print(r)
    merge(update)
    print(f"-> {OUT}")


if __name__ == "__main__":
    main()

"""Fuzz the build: random valid specs -> one watertight body inside the body, or a clear refusal.

Draws ``--n`` specs (``tests/fuzzspecs.py``: box and STL-cylinder bodies, 1-4 explicit cells
with random topologies, densities 0.002-0.1, stretches 0.5-2, rotations, printer minima
0-0.2 mm), builds each in a worker process and writes ``benchmarks/results/fuzz.json`` with
the counts, the maximum excursion outside the body, and every failing spec (seed and the
spec itself) for the regression list of ``tests/test_fuzz.py``.

    python benchmarks/fuzz.py --n 200 --workers 2
    python benchmarks/fuzz.py --seeds 15,25 --out fuzz_grains.json   # chosen seeds
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from fuzzspecs import EXCURSION_TOL, random_spec, run_spec  # noqa: E402

from graded.workers import SINGLE_THREADED_BLAS, process_pool  # noqa: E402


def _one(seed: int) -> dict:
    import shutil

    folder = Path(tempfile.mkdtemp(prefix=f"fuzz-{seed}-"))
    try:
        return asdict(run_spec(seed, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--seeds", default=None, help="comma-separated seeds instead of --first-seed/--n")
    ap.add_argument("--out", default="fuzz.json", help="file name under benchmarks/results")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args(argv)
    seeds = ([int(v) for v in args.seeds.split(",")] if args.seeds
             else list(range(args.first_seed, args.first_seed + args.n)))
    t0 = time.perf_counter()
    outcomes = []
    with process_pool(args.workers, env=SINGLE_THREADED_BLAS) as pool:
        for k, out in enumerate(pool.map(_one, seeds), 1):
            outcomes.append(out)
            print(f"{k}/{len(seeds)} specs: seed {out['seed']} {out['kind']} in {out['seconds']:.0f} s, "
                  f"{out['struts']} struts {out['message'][:100]}", flush=True)
    built = [o for o in outcomes if o["kind"] == "built"]
    failed = [o for o in outcomes if o["kind"] == "failed"]
    refused = [o for o in outcomes if o["kind"] == "refused"]
    result = {
        "benchmark": "fuzzed builds of random valid specs",
        "specs": len(outcomes),
        "built": len(built),
        "refused": len(refused),
        "failed": len(failed),
        "max_excursion_mm": max((o["excursion_mm"] for o in built), default=0.0),
        "excursion_tol_mm": EXCURSION_TOL,
        "seconds": round(time.perf_counter() - t0, 1),
        "median_build_s": sorted(o["seconds"] for o in built)[len(built) // 2] if built else None,
        "refusals": dict(Counter(o["message"].split(":")[0] for o in refused).most_common()),
        "skinned_built": sum(1 for o in built if "skin" in random_spec(o["seed"])),
        "stl_bodies_built": sum(1 for o in built if "file" in random_spec(o["seed"])["body"]),
        "outcomes": [{"seed": o["seed"], "kind": o["kind"], "struts": o["struts"],
                      "seconds": round(o["seconds"], 2), "message": o["message"][:160]} for o in outcomes],
        "failing": [{**o, "spec": random_spec(o["seed"])} for o in failed],
    }
    out = HERE / "results" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    print(f"{result['specs']} specs: {result['built']} built (max excursion {result['max_excursion_mm']:.2g} mm), "
          f"{result['refused']} refused clearly, {result['failed']} failed; {result['seconds']} s -> {out}")
    return result


if __name__ == "__main__":
    main()

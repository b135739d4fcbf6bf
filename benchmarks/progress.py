"""Progress granularity of the main job: the longest wait between two lines of ``graded build``.

Runs ``graded build examples/bone_implant.yaml`` in a child process whose stderr is a pipe
(no terminal: the build prints a progress line per message), timestamps every line as it
arrives and reports the longest gap, counting from the launch of the command to its first
line and from its last line to its exit. Writes ``benchmarks/results/progress.json``.
Target: at most 3 s between two lines (the README's promise), 2.5 s on a quiet machine.

    python benchmarks/progress.py [--spec examples/bone_implant.yaml] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Gaps listed one by one in the result (seconds).
LONG_GAP_S = 1.0


def measure(spec: Path, verbose: bool = False) -> dict:
    """Run one build and time its output lines.

    Parameters
    ----------
    spec : Path
        The spec to build (into a temporary folder).
    verbose : bool
        Pass ``-v`` (log lines besides the progress lines).

    Returns
    -------
    dict
        ``max_gap_s``, ``gap_after`` (the line the longest wait followed), ``seconds``,
        ``lines`` and ``long_gaps`` (each gap above :data:`LONG_GAP_S` with the line before it).
    """
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "graded.cli.main", *(["-v"] if verbose else []), "build", str(spec),
               "-o", str(Path(tmp) / "out")]
        stamps: list[tuple[float, str]] = []
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)

        def read(stream) -> None:
            for line in stream:
                stamps.append((time.perf_counter() - t0, line.rstrip("\n")))

        readers = [threading.Thread(target=read, args=(s,)) for s in (proc.stdout, proc.stderr)]
        for r in readers:
            r.start()
        rc = proc.wait()
        for r in readers:
            r.join()
        t_end = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"graded build exited with {rc}:\n" + "\n".join(s for _, s in stamps[-20:]))
    stamps.sort(key=lambda s: s[0])
    times = [0.0] + [t for t, _ in stamps] + [t_end]
    before = ["(launch)"] + [s for _, s in stamps]
    gaps = [(times[i + 1] - times[i], before[i]) for i in range(len(times) - 1)]
    worst = max(gaps, key=lambda g: g[0])
    return {"max_gap_s": round(worst[0], 2), "gap_after": worst[1], "seconds": round(t_end, 2),
            "lines": len(stamps),
            "long_gaps": [{"seconds": round(g, 2), "after": s} for g, s in gaps if g > LONG_GAP_S]}


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=ROOT / "examples" / "bone_implant.yaml")
    ap.add_argument("--verbose", action="store_true", help="build with -v")
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result = {"benchmark": f"longest wait between output lines of graded build {args.spec.name}, no terminal",
              **measure(args.spec.resolve(), args.verbose), "verbose": args.verbose,
              "target_s": 3.0, "load_average_1min": None if load is None else round(load, 2),
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform()}}
    out = Path(__file__).resolve().parent / "results" / "progress.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    print(f"longest wait {result['max_gap_s']:.2f} s after {result['gap_after']!r}; "
          f"{result['lines']} lines in {result['seconds']:.1f} s -> {out}")
    return result


if __name__ == "__main__":
    main()

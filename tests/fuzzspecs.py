"""Random valid build specs, for the fuzz test and ``benchmarks/fuzz.py``.

Not a test module: :func:`random_spec` draws a spec from a seed, :func:`run_spec` builds it
and classifies the outcome. Every valid spec must give one watertight body inside its body,
or a clear refusal (a ``ValidationError`` naming a field).
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["EXCURSION_TOL", "Outcome", "random_spec", "run_spec"]

#: Largest distance (mm) the solid may reach outside its body: float32 STL coordinates of a
#: 20 mm part are exact to about 1e-6 mm, a box clips 1e-5 mm outside its faces
#: (graded.build.CLIP_MARGIN); 1e-3 mm is the bar the part must meet.
EXCURSION_TOL = 1e-3


def _cell(rng: np.random.Generator) -> dict:
    n_parts = int(rng.integers(1, 4))
    parts = "+".join(f"{int(rng.integers(1, 3))}x{int(rng.integers(1, 8))}" for _ in range(n_parts))

    def rot():
        theta = float(rng.uniform(0, math.pi)) if rng.random() < 0.5 else 0.0
        e = rng.normal(size=3)
        e /= np.linalg.norm(e)
        if e[2] < 0:
            e = -e
        return [theta, float(e[0]), float(e[1])]

    def stretch():
        return [float(v) for v in np.exp(rng.uniform(np.log(0.5), np.log(2.0), 3))]
    return {"topology": parts, "rho": float(np.exp(rng.uniform(np.log(0.002), np.log(0.1)))),
            "U": stretch(), "V": stretch(), "R1": rot(), "R2": rot()}


def random_spec(seed: int, folder: Path | None = None) -> dict:
    """A random valid spec: a box or an STL cylinder body, 1-4 explicit cells, a skin on a quarter of them.

    The spec depends on the seed only; the cylinder's STL is written into ``folder`` when one is given.
    """
    rng = np.random.default_rng(seed)
    size = rng.uniform(6.0, 20.0, 3)
    body: dict = {"box": {"size": [float(v) for v in size]}}
    if rng.random() < 0.3:
        r = float(size[:2].min()) / 2
        body = {"file": f"body_{seed}.stl"}
        if folder is not None:
            import trimesh

            cyl = trimesh.creation.cylinder(radius=r, height=float(size[2]), sections=48)
            cyl.apply_translation([r, r, size[2] / 2])
            cyl.export(Path(folder) / body["file"])
        size = np.array([2 * r, 2 * r, size[2]])
    cell_size = float(size.min() / rng.uniform(2.5, 6.0))
    n = int(rng.integers(1, 5))
    lo = 0.15 * size
    pts = []
    while len(pts) < n:
        p = lo + rng.random(3) * (size - 2 * lo)
        if body.get("file"):
            r = size[0] / 2
            if np.hypot(p[0] - r, p[1] - r) > 0.8 * r:
                continue
        pts.append([float(v) for v in p])
    min_d = float(rng.choice([0.0, 0.05, 0.1, 0.2]))
    spec = {
        "body": body,
        "cell_size": cell_size,
        "control_points": [{"position": p, "cell": _cell(rng)} for p in pts],
        "zeta": float(rng.uniform(0.3, 1.0)),
        "min_strut_diameter": min_d,
        "seed": int(seed),
        "outputs": {"files": ["stl", "report"]},
    }
    if rng.random() < 0.25:
        spec["skin"] = {"thickness": float(rng.uniform(max(min_d, 0.1), 0.1 * size.min()))}
    return spec


@dataclass
class Outcome:
    """What a fuzzed build gave: ``kind`` is ``"built"``, ``"refused"`` or ``"failed"``."""

    seed: int
    kind: str
    message: str = ""
    struts: int = 0
    excursion_mm: float = math.nan
    seconds: float = math.nan


def run_spec(seed: int, folder: Path) -> Outcome:
    """Build :func:`random_spec` (seed) into ``folder`` and check the part."""
    import time

    import trimesh

    from graded.build import build
    from graded.mesh.facts import mesh_facts
    from graded.spec import parse_spec
    from graded.validation import ValidationError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = random_spec(seed, folder)
    t0 = time.perf_counter()
    try:
        result = build(parse_spec(data, base_dir=folder), output_dir=folder / f"out_{seed}")
    except ValidationError as exc:
        msg = str(exc)
        clear = "\n" not in msg and ":" in msg and ";" in msg
        return Outcome(seed, "refused" if clear else "failed", msg, seconds=time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - anything else is a defect to record
        return Outcome(seed, "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}",
                       seconds=time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    stl = trimesh.load(folder / f"out_{seed}" / "part.stl", file_type="stl")
    exc_mm = float(result.body.excursion(stl.vertices))
    # solid bodies, not connected surfaces: a skinned part is an outer shell and a cavity shell
    bodies = mesh_facts(stl).bodies
    ok = stl.is_watertight and stl.is_volume and bodies == 1 and exc_mm <= EXCURSION_TOL
    why = "" if ok else (f"watertight={stl.is_watertight} volume={stl.is_volume} bodies={bodies} "
                         f"excursion={exc_mm:.3g} mm")
    return Outcome(seed, "built" if ok else "failed", why, struts=result.graph.n_struts, excursion_mm=exc_mm,
                   seconds=seconds)

"""The as-built stiffness over the whole part, not only at the control points.

At the centre of every built cell inside the body (a coarser grid when there are more than
:data:`MAX_MAP_SAMPLES`), the as-built local periodic cell is homogenized by FE, exactly as
at the control points (:func:`graded.grading.local.local_stiffness`), and compared with
the *blended reference*: the blend weights' mix of what every control point asked for,
``C_ref(x) = sum_i N_i(x) C_i / sum_i N_i(x)`` with ``C_i`` the point's target (or its own
cell's FE stiffness for an explicit cell). That mix is exact at the control points and a
plain, documented choice in between (no physical law prescribes the stiffness between two
targets); the figure of merit between the points is the as-built field itself (directional
moduli, smooth or not, printable or not), the error against the mix says how far the
lattice strays from a straight blend.

Where the blend leaves no printable strut (all blended diameters below the printer
minimum), the lattice there is empty: stiffness 0, error 1, counted as ``empty``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..elastic.metrics import relative_frobenius
from .local import local_stiffness
from .pipeline import Prepared

__all__ = ["AsBuiltMap", "MAX_MAP_SAMPLES", "map_as_built", "map_points", "directional_moduli"]

#: Most cells sampled: one local-cell FE costs about 1-2 ms, so 2,000 samples cost a few
#: seconds, small against meshing; larger parts are sampled on a coarser grid.
MAX_MAP_SAMPLES = 2000


@dataclass
class AsBuiltMap:
    """As-built stiffness sampled over the part.

    Attributes
    ----------
    points : ndarray, shape (N, 3), float64
        Sample positions, mm (built cell centres inside the body).
    C : ndarray, shape (N, 6, 6), float64
        As-built local stiffness, normalised by E_s (zeros where the lattice is empty).
    C_ref : ndarray, shape (N, 6, 6), float64
        Blended reference (module docstring), normalised by E_s.
    moduli : ndarray, shape (N, 3), float64
        Directional Young's moduli along x, y, z (1 / S_ii), normalised by E_s.
    error : ndarray, shape (N,), float64
        Relative Frobenius error of ``C`` against ``C_ref``.
    empty : ndarray, shape (N,), bool
        No printable strut at the sample.
    spacing : float
        Grid spacing, mm.
    seconds : float
    """

    points: np.ndarray
    C: np.ndarray
    C_ref: np.ndarray
    moduli: np.ndarray
    error: np.ndarray
    empty: np.ndarray
    spacing: float
    seconds: float

    def summary(self) -> dict:
        """Median, 90th percentile and maximum error; the count of empty samples."""
        e = self.error
        return {"samples": int(len(e)), "samples_empty": int(self.empty.sum()), "spacing_mm": self.spacing,
                "error_median": float(np.median(e)) if len(e) else None,
                "error_p90": float(np.percentile(e, 90)) if len(e) else None,
                "error_max": float(e.max()) if len(e) else None, "seconds": self.seconds}


def directional_moduli(C: np.ndarray) -> np.ndarray:
    """Young's moduli along x, y, z of stiffness matrices (..., 6, 6) (Voigt): ``1 / S_ii``.

    Zero for a zero (empty) stiffness.
    """
    C = np.asarray(C, dtype=np.float64)
    out = np.zeros(C.shape[:-2] + (3,))
    full = np.abs(C).reshape(*C.shape[:-2], 36).max(axis=-1) > 0
    if np.any(full):
        S = np.linalg.inv(C[full])
        out[full] = 1.0 / np.diagonal(S, axis1=-2, axis2=-1)[..., :3]
    return out


def map_points(prep: Prepared, max_samples: int = MAX_MAP_SAMPLES) -> tuple[np.ndarray, float]:
    """Built cell centres inside the body (N, 3), mm, and the grid spacing (mm).

    The grid has the built cell edge (cell corners at the body's lower corner, as the
    lattice), coarsened by whole factors until at most ``max_samples`` points lie inside.
    """
    body = prep.body
    h = prep.cell_edge
    largest = float(np.max(body.hi - body.lo))
    while True:
        axes = [np.arange(lo + h / 2, hi, h) for lo, hi in zip(body.lo, body.hi)]
        # the inside test is only run on grids a few times the wanted count (a body fills
        # at least an eighth of its box in any part worth sampling)
        if math.prod(len(a) for a in axes) <= 8 * max_samples or h >= largest:
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
            x = grid[body.contains(grid)]
            if len(x) <= max_samples or h >= largest:
                return x, h
        h *= 2.0


def map_as_built(prep: Prepared, references: list[np.ndarray], *, max_samples: int = MAX_MAP_SAMPLES,
                 progress=None) -> AsBuiltMap:
    """Sample the as-built stiffness over the part (module docstring).

    Parameters
    ----------
    prep : Prepared
    references : list of ndarray (6, 6)
        What each control point asked for, normalised by E_s, in spec order.
    max_samples : int
    progress : callable, optional
        ``progress(done, total, message)`` every few hundred samples.
    """
    t0 = time.perf_counter()
    x, h = map_points(prep, max_samples)
    nu = prep.spec.material.nu
    refs = np.asarray(references, dtype=np.float64)
    w = prep.field.weights(x) if len(x) else np.zeros((0, len(refs)))
    w = w / np.maximum(w.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    C_ref = np.einsum("nk,kij->nij", w, refs)
    C = np.zeros((len(x), 6, 6))
    empty = np.zeros(len(x), dtype=bool)
    for n, p in enumerate(x):
        try:
            C[n] = local_stiffness(prep, p, nu=nu)
        except RuntimeError:  # no printable strut left here: the lattice is empty
            empty[n] = True
        if progress is not None and (n + 1) % 250 == 0:
            progress(n + 1, len(x), f"as-built map: {n + 1} of {len(x)} cells")
    err = np.array([relative_frobenius(r, c) for r, c in zip(C_ref, C)])
    return AsBuiltMap(points=x, C=C, C_ref=C_ref, moduli=directional_moduli(C), error=err, empty=empty,
                      spacing=h, seconds=time.perf_counter() - t0)

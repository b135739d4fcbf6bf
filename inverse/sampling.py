"""Random draws from the lattice design space of SI Table S1.

A design Theta is three elementary topologies with their tessellations, a relative
density rho, the principal stretches U and V and two rotations R_I, R_II (main text
Eq. 1: ``x = R_II V R_I U X``). :func:`sample_designs` draws them as SI section 1 says:

* each of the three parts ``(t_i, S_i)`` uniformly from ``{1, 2} x {1, ..., 7}``,
  repetitions allowed; the three parts of a draw are then sorted (lexicographically by
  ``(t, S)``) because the compound lattice does not depend on their order, so one
  topology always has one encoding;
* ``rho ~ U(0.002, 0.1)``, every ``U_i, V_i ~ U(0.5, 2)`` independently;
* each rotation as an angle ``theta ~ U(-pi, pi)`` about an axis drawn uniformly on the
  unit sphere S^2.

The rotation recipe is the paper's, and it is **not** the uniform (Haar) distribution
on SO(3): Haar-uniform rotations have angle density ``(1 - cos theta) / pi`` on
``[0, pi]``, while this recipe puts uniform density on the angle, so small rotations are
over-represented relative to Haar. We keep the paper's recipe so our dataset covers
the design space the same way; a network trained on it sees every orientation, only
not with equal weight.

All randomness comes from the ``numpy.random.Generator`` passed in; nothing here
touches global state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from graded.elastic import axis_angle_to_matrix
from graded.validation import ValidationError, check_shape, fail

__all__ = [
    "Bounds",
    "TABLE_S1",
    "Designs",
    "sample_designs",
    "design_basis",
    "random_rotations",
]


@dataclass(frozen=True)
class Bounds:
    """Ranges of the design space (SI Table S1).

    Attributes
    ----------
    rho : (float, float)
        Relative density range.
    U, V : (float, float)
        Range of every principal stretch of the first / second stretch tensor.
    topology_ids : tuple of int
        Elementary topologies to draw from (1-based, SI Fig. S1).
    tessellations : tuple of int
        Tessellations to draw from (1 = 1x1x1, 2 = 2x2x2).
    """

    rho: tuple[float, float] = (0.002, 0.1)
    U: tuple[float, float] = (0.5, 2.0)
    V: tuple[float, float] = (0.5, 2.0)
    topology_ids: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    tessellations: tuple[int, ...] = (1, 2)

    def __post_init__(self) -> None:
        for name in ("rho", "U", "V"):
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
                fail(f"bounds.{name}", f"({lo}, {hi}) is not an interval 0 < lo < hi", "give lo < hi, both > 0")
        if self.rho[1] >= 1:
            fail("bounds.rho", f"upper bound {self.rho[1]} must be < 1", "relative density is a volume fraction")
        if not self.topology_ids or not set(self.topology_ids) <= set(range(1, 8)):
            fail("bounds.topology_ids", f"{self.topology_ids} must be a non-empty subset of 1..7", None)
        if not self.tessellations or not set(self.tessellations) <= {1, 2}:
            fail("bounds.tessellations", f"{self.tessellations} must be a non-empty subset of {{1, 2}}", None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists instead of tuples)."""
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bounds:
        """Inverse of :meth:`to_dict`; raises ``ValidationError`` on unknown or missing keys."""
        if not isinstance(data, dict):
            fail("bounds", f"expected a mapping, got {type(data).__name__}", None)
        names = {f for f in cls.__dataclass_fields__}
        extra = set(data) - names
        if extra:
            fail("bounds", f"unknown keys {sorted(extra)}", f"use only {sorted(names)}")
        try:
            kwargs = {
                k: tuple(int(x) for x in v) if k in ("topology_ids", "tessellations") else tuple(float(x) for x in v)
                for k, v in data.items()
            }
        except (TypeError, ValueError) as exc:
            raise ValidationError("bounds", f"malformed values ({exc})", None) from None
        return cls(**kwargs)


#: The design space of SI Table S1.
TABLE_S1 = Bounds()


@dataclass(frozen=True, eq=False)
class Designs:
    """A batch of ``n`` designs (arrays share their first axis).

    Attributes
    ----------
    topology : (n, 3, 2) int8
        Three parts per design, each ``[tessellation, topology_id]``, sorted.
    rho : (n,) float64
        Relative density.
    U, V : (n, 3) float64
        Principal stretches of the first and second stretch tensor.
    R1, R2 : (n, 3, 3) float64
        Rotations R_I and R_II (proper orthogonal).
    """

    topology: np.ndarray
    rho: np.ndarray
    U: np.ndarray
    V: np.ndarray
    R1: np.ndarray
    R2: np.ndarray
    _n: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        topo = np.asarray(self.topology)
        if topo.ndim != 3 or topo.shape[1:] != (3, 2):
            fail("topology", f"has shape {topo.shape}, expected (N, 3, 2)", None)
        n = topo.shape[0]
        object.__setattr__(self, "topology", topo.astype(np.int8, copy=False))
        for name, shape in (("rho", (n,)), ("U", (n, 3)), ("V", (n, 3)), ("R1", (n, 3, 3)), ("R2", (n, 3, 3))):
            object.__setattr__(self, name, check_shape(name, getattr(self, name), shape))
        object.__setattr__(self, "_n", n)

    def __len__(self) -> int:
        return self._n

    def subset(self, index: Any) -> Designs:
        """The designs selected by ``index`` (slice, integer array or boolean mask)."""
        return Designs(*(getattr(self, k)[index] for k in ("topology", "rho", "U", "V", "R1", "R2")))

    @property
    def basis_stretched(self) -> np.ndarray:
        """(n, 3, 3) lattice basis ``U`` of the stretched, unrotated cell (gives C_ort)."""
        return _diag(self.U)

    @property
    def basis_hat(self) -> np.ndarray:
        """(n, 3, 3) lattice basis ``V R_I U`` (gives C_hat; R_II is applied by the Bond matrix)."""
        return design_basis(self.U, self.V, self.R1)

    @property
    def basis(self) -> np.ndarray:
        """(n, 3, 3) full lattice basis ``F = R_II V R_I U`` (columns = translation vectors)."""
        return design_basis(self.U, self.V, self.R1, self.R2)


def design_basis(U, V, R1, R2=None) -> np.ndarray:
    """Lattice basis ``F = R_II V R_I U`` (..., 3, 3) of designs (columns = translation vectors).

    Parameters
    ----------
    U, V : array_like, shape (..., 3)
        Principal stretches.
    R1 : array_like, shape (..., 3, 3)
        Rotation R_I.
    R2 : array_like, shape (..., 3, 3), optional
        Rotation R_II; without it the basis ``V R_I U`` of the cell before R_II (whose
        stiffness is ``C_hat``).

    Returns
    -------
    ndarray, shape (..., 3, 3), float64
    """
    if R2 is None:
        return _diag(V) @ np.asarray(R1, dtype=np.float64) @ _diag(U)
    return np.asarray(R2, dtype=np.float64) @ _diag(V) @ np.asarray(R1, dtype=np.float64) @ _diag(U)


def _diag(s) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    out = np.zeros(s.shape[:-1] + (3, 3))
    idx = np.arange(3)
    out[..., idx, idx] = s
    return out


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rotations drawn as in SI section 1 (uniform angle, uniform axis; not Haar).

    Parameters
    ----------
    n : int
        Number of rotations.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    (n, 3, 3) float64
        Proper rotation matrices (:func:`graded.elastic.axis_angle_to_matrix`).
    """
    theta = rng.uniform(-np.pi, np.pi, size=n)
    axis = rng.standard_normal(size=(n, 3))
    norm = np.linalg.norm(axis, axis=1, keepdims=True)
    # A standard normal vector is exactly zero with probability zero; guard anyway.
    axis = np.where(norm > 0, axis / np.where(norm > 0, norm, 1.0), np.array([0.0, 0.0, 1.0]))
    return axis_angle_to_matrix(theta, axis[:, 0], axis[:, 1], axis[:, 2])


def sample_designs(n: int, rng: np.random.Generator, bounds: Bounds = TABLE_S1) -> Designs:
    """Draw ``n`` designs uniformly from the design space (SI section 1).

    Parameters
    ----------
    n : int
        Number of designs (>= 0).
    rng : numpy.random.Generator
        The only source of randomness; the same generator state gives the same designs.
    bounds : Bounds
        Ranges to draw from; SI Table S1 by default.

    Returns
    -------
    Designs
        ``n`` designs; see the module docstring for the distribution of each field.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        fail("n", f"{n!r} is not a non-negative integer", "give a count such as 1000")
    if not isinstance(rng, np.random.Generator):
        fail("rng", f"expected numpy.random.Generator, got {type(rng).__name__}", "pass numpy.random.default_rng(seed)")
    if not isinstance(bounds, Bounds):
        fail("bounds", f"expected Bounds, got {type(bounds).__name__}", "use graded.inverse.sampling.Bounds")
    n = int(n)
    tess = rng.choice(np.asarray(bounds.tessellations, dtype=np.int8), size=(n, 3))
    ids = rng.choice(np.asarray(bounds.topology_ids, dtype=np.int8), size=(n, 3))
    # Sort the three parts of each design by (tessellation, id): key = 8 t + id is unique.
    order = np.argsort(8 * tess.astype(np.int16) + ids, axis=1, kind="stable")
    topology = np.stack([np.take_along_axis(tess, order, 1), np.take_along_axis(ids, order, 1)], axis=-1)
    rho = rng.uniform(*bounds.rho, size=n)
    U = rng.uniform(*bounds.U, size=(n, 3))
    V = rng.uniform(*bounds.V, size=(n, 3))
    R1 = random_rotations(n, rng)
    R2 = random_rotations(n, rng)
    return Designs(topology=topology, rho=rho, U=U, V=V, R1=R1, R2=R2)

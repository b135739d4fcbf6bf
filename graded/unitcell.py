"""The unit-cell descriptor: topology + relative density + affine map (main text Eq. 1).

A :class:`UnitCell` is the design vector Theta of SI Table S1: three superposed parts
(tessellation x elementary topology), relative density ``rho``, two stretch tensors
``U = diag(U1, U2, U3)``, ``V = diag(V1, V2, V3)`` and two rotations ``R1 = R_I``,
``R2 = R_II``. The reference cube [0, 1]^3 is mapped by ``x = R2 V R1 U X``; the cell's
basis ``F = R2 V R1 U`` has the lattice translation vectors as columns.

Relative density is the strut volume of the distinct periodic struts divided by the
cell volume, node to node, without overlap correction (DESIGN §4):
``rho = (pi d^2 / 4) sum L / V_cell`` with one diameter d for all struts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .elastic import as_rotation, matrix_to_axis_angle
from .fem import homogenize
from .tol import TOL
from .topology import (
    Topology,
    canonical,
    format_topology,
    parse_topology,
    reference_graph,
    validate_parts,
)
from .validation import check_positive, check_range, fail

__all__ = [
    "UnitCell",
    "TABLE_S1",
    "DesignBounds",
    "diameter_from_density",
    "density_from_diameter",
    "homogenize_designs",
]


@dataclass(frozen=True)
class DesignBounds:
    """Continuous ranges of the design space (SI Table S1)."""

    rho: tuple[float, float] = (0.002, 0.1)
    stretch: tuple[float, float] = (0.5, 2.0)


TABLE_S1 = DesignBounds()

_OPT_OUT = "or pass strict=False to leave the design space of SI Table S1 on purpose"


def _total_length(topology: Topology, basis: np.ndarray) -> np.ndarray:
    """Summed physical length of the distinct periodic struts, shape (...)."""
    g = reference_graph(canonical(topology)).periodic
    return np.linalg.norm(g.bond_vectors(basis), axis=-1).sum(-1)


def diameter_from_density(topology: Topology, rho, basis) -> np.ndarray:
    """Strut diameter giving relative density ``rho`` in a cell with basis ``basis`` (..., 3, 3).

    Same length unit as the basis.
    """
    basis = np.asarray(basis, dtype=np.float64)
    vol = np.abs(np.linalg.det(basis))
    return np.sqrt(4.0 * np.asarray(rho, dtype=np.float64) * vol / (np.pi * _total_length(topology, basis)))


def density_from_diameter(topology: Topology, diameter, basis) -> np.ndarray:
    """Inverse of :func:`diameter_from_density`."""
    basis = np.asarray(basis, dtype=np.float64)
    vol = np.abs(np.linalg.det(basis))
    return np.pi * np.asarray(diameter, dtype=np.float64) ** 2 / 4.0 * _total_length(topology, basis) / vol


def homogenize_designs(topology: Topology | str, rho, basis, *, E: float = 1.0, nu: float = 0.3) -> np.ndarray:
    """FE stiffness of many cells that share one topology.

    Parameters
    ----------
    topology : str or tuple of (tessellation, id)
    rho : ndarray, shape (B,)
        Relative densities.
    basis : ndarray, shape (B, 3, 3)
        Cell bases (columns = translation vectors); the scale does not matter.
    E, nu : float
        Base material (E = 1 gives stiffness normalised by E_s).

    Returns
    -------
    ndarray, shape (B, 6, 6)
    """
    if isinstance(topology, str):
        topology = parse_topology(topology)
    key = canonical(topology)
    basis = np.asarray(basis, dtype=np.float64).reshape(-1, 3, 3)
    rho = np.broadcast_to(np.asarray(rho, dtype=np.float64), (len(basis),))
    d = diameter_from_density(key, rho, basis)
    return homogenize(reference_graph(key).periodic, basis, d, E=E, nu=nu)


def _as_stretch(name: str, value, strict: bool) -> np.ndarray:
    hint = f"stretches must be > 0; {TABLE_S1.stretch} is the design range"
    arr = np.broadcast_to(check_positive(name, value, hint=hint), (3,)).copy()
    if strict:
        check_range(name, arr, *TABLE_S1.stretch, source="SI Table S1", hint=f"pass stretches inside it, {_OPT_OUT}")
    return arr


@dataclass(frozen=True)
class UnitCell:
    """A truss unit cell of the design space (SI Table S1).

    Parameters
    ----------
    topology : str or sequence of (tessellation, id)
        E.g. ``"2x1+1x3+2x5"``; three parts in the design space, any number allowed.
    rho : float
        Relative density.
    U, V : array_like, shape (3,) or scalar
        Principal stretches of the two stretch tensors.
    R1, R2 : array_like, shape (3, 3) or (3,)
        Rotations R_I and R_II as matrices or axis-angle ``(theta, e1, e2)``.
    strict : bool
        Check rho and stretches against SI Table S1 (default). Experts may opt out.

    Examples
    --------
    >>> cell = UnitCell("1x2", rho=0.01)
    >>> round(cell.diameter(cell_size=1.0), 6)
    0.027391
    """

    topology: Topology
    rho: float
    U: np.ndarray = field(default_factory=lambda: np.ones(3))
    V: np.ndarray = field(default_factory=lambda: np.ones(3))
    R1: np.ndarray = field(default_factory=lambda: np.eye(3))
    R2: np.ndarray = field(default_factory=lambda: np.eye(3))
    strict: bool = True

    def __post_init__(self) -> None:
        top = parse_topology(self.topology) if isinstance(self.topology, str) else validate_parts(self.topology)
        if self.strict and len(top) != 3 and len(set(top)) > 3:
            fail("topology", f"has {len(top)} parts", f"the design space superposes three parts, {_OPT_OUT}")
        rho = float(check_positive("rho", self.rho, hint="relative density is a volume fraction > 0"))
        if rho >= 1:
            fail("rho", f"{rho:.6g} is not a volume fraction", "give 0 < rho < 1")
        if self.strict:
            check_range("rho", rho, *TABLE_S1.rho, source="SI Table S1", hint=f"pass a value inside it, {_OPT_OUT}")
        object.__setattr__(self, "topology", top)
        object.__setattr__(self, "rho", rho)
        object.__setattr__(self, "U", _as_stretch("U", self.U, self.strict))
        object.__setattr__(self, "V", _as_stretch("V", self.V, self.strict))
        object.__setattr__(self, "R1", as_rotation("R1", self.R1))
        object.__setattr__(self, "R2", as_rotation("R2", self.R2))
        det = np.linalg.det(self.basis)
        if not abs(det) > TOL.singular_map:
            fail("U, V", f"the affine map is singular (det = {det:.3g})", "use stretches well away from zero")

    # -- geometry ---------------------------------------------------------------------
    @property
    def basis(self) -> np.ndarray:
        """``F = R2 V R1 U`` (3, 3): columns are the translation vectors of a unit cell."""
        return self.R2 @ np.diag(self.V) @ self.R1 @ np.diag(self.U)

    @property
    def topology_string(self) -> str:
        return format_topology(self.topology)

    @property
    def reference(self):
        """The superposed :class:`graded.topology.ReferenceGraph` of this cell's parts."""
        return reference_graph(self.topology)

    def diameter(self, cell_size: float = 1.0) -> float:
        """Strut diameter for a cell whose reference cube edge is ``cell_size`` (length unit of it)."""
        return float(diameter_from_density(canonical(self.topology), self.rho, cell_size * self.basis))

    def nodes(self, cell_size: float = 1.0) -> np.ndarray:
        """Physical node positions of the cube representation, shape (N, 3)."""
        return cell_size * self.reference.nodes @ self.basis.T

    # -- mechanics --------------------------------------------------------------------
    def stiffness(self, E: float = 1.0, nu: float = 0.3) -> np.ndarray:
        """Homogenized Voigt stiffness by FE (6, 6), in units of E (normalised for E = 1)."""
        return homogenize_designs(self.topology, [self.rho], self.basis[None], E=E, nu=nu)[0]

    # -- conversions ------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready parameters, rotations as axis-angle (theta, e1, e2) as in the SI tables."""
        return {
            "topology": self.topology_string,
            "rho": self.rho,
            "U": self.U.tolist(),
            "V": self.V.tolist(),
            "R1": matrix_to_axis_angle(self.R1).tolist(),
            "R2": matrix_to_axis_angle(self.R2).tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, *, strict: bool = True) -> UnitCell:
        """Build from a mapping with keys topology, rho and optionally U, V, R1, R2."""
        if not isinstance(data, dict):
            fail("cell", f"expected a mapping, got {type(data).__name__}", "give topology, rho, U, V, R1, R2")
        allowed = {"topology", "rho", "U", "V", "R1", "R2"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            fail(f"cell.{unknown[0]}", "is not a unit-cell parameter", f"allowed: {sorted(allowed)}")
        for key in ("topology", "rho"):
            if key not in data:
                fail(f"cell.{key}", "is missing", "a cell needs at least topology and rho")
        return cls(
            topology=data["topology"],
            rho=data["rho"],
            U=data.get("U", 1.0),
            V=data.get("V", 1.0),
            R1=data.get("R1", np.eye(3)),
            R2=data.get("R2", np.eye(3)),
            strict=strict,
        )

    def rotated(self, R: np.ndarray) -> UnitCell:
        """The same cell with an extra rigid rotation applied after R2 (C rotates by Bond(R))."""
        return UnitCell(self.topology, self.rho, self.U, self.V, self.R1, np.asarray(R) @ self.R2, strict=self.strict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnitCell):
            return NotImplemented
        return (
            canonical(self.topology) == canonical(other.topology)
            and self.rho == other.rho
            and all(np.array_equal(getattr(self, k), getattr(other, k)) for k in ("U", "V", "R1", "R2"))
        )

    __hash__ = None  # type: ignore[assignment]

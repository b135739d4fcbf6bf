"""Bone-like target stiffnesses: the Zysset-Curnier fabric-elasticity relation.

Trabecular bone's apparent stiffness is, to within 10-20 %, a function of its bone volume
fraction ``rho`` (BV/TV) and of a second-order fabric tensor ``M = sum_i m_i M_i`` (the
mean intercept length tensor normalised to ``tr M = 3``; ``M_i = e_i (x) e_i``). Zysset
and Curnier (Mech. Mater. 21:243-250, 1995) give it in the fabric frame as an orthotropic
material with the engineering constants

.. math::

    E_i = E_0 \\rho^k m_i^{2l}, \\qquad
    \\frac{\\nu_{ij}}{E_i} = \\frac{\\nu_0}{E_0 \\rho^k m_i^l m_j^l}, \\qquad
    G_{ij} = \\mu_0 \\rho^k m_i^l m_j^l ,

so that isotropic fabric (``m_i = 1``) gives an isotropic material with Young's modulus
``E_0 rho^k``, Poisson's ratio ``nu_0`` and shear modulus ``mu_0 rho^k``.

Constants (:class:`ZyssetCurnier`, MPa): ``E_0 = 8534.64``, ``nu_0 = 0.246``,
``k = 1.63`` -- the density relation of human trabecular bone that Vautrin et al.
(J. Mech. Behav. Biomed. Mater. 158:106688, 2024) map onto homogenized FE models,
``E = 8534.64 (BV/TV)^1.63 MPa, nu = 0.246`` --, ``mu_0 = E_0 / (2 (1 + nu_0))`` (the
isotropic shear modulus, so isotropic fabric is exactly isotropic) and ``l = 1``
(fitted fabric exponents of human trabecular bone lie between 0.8 and 1.1, Zysset,
J. Biomech. 36:1469-1485, 2003).

A target (:func:`bone_targets`) draws ``rho`` uniform on :data:`BV_TV_RANGE`, the degree
of anisotropy ``m_3 / m_1`` uniform on :data:`ANISOTROPY_RANGE`, ``m_2 = m_1 (m_3 / m_1)^t``
with ``t`` uniform on [0, 1], and a Haar-uniform orientation ``R`` of the fabric frame
(``C = K(R) C_fabric K(R)^T``); the tensor in MPa is divided by the base material's
Young's modulus (Ti-6Al-4V, 114 GPa, by default) and, where its rotation-invariant
magnitude (:func:`~graded.inverse.scaling.stiffness_scale`) falls outside what the truss
design space reaches (:data:`graded.inverse.design.REACH`, less :data:`REACH_MARGIN`), scaled
onto the nearest bound -- shape kept, size made reachable (``scale`` records by how much).

The shipped set (:func:`shipped_bone_targets`, ``data/bone_targets.csv`` of ``graded.inverse``) is
:func:`bone_targets` with ``n = 50`` and ``seed = 20``, written by :func:`write_bone_csv`
in the CSV form ``graded design TARGET --row NAME`` reads (21 constants in GPa per row),
with the parameters of each target in ``bone_targets_params.csv`` beside it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from graded.elastic import NAMES_21, from_21, rotate_voigt, to_21
from graded.io.atomic import atomic_path
from graded.validation import check_count, check_positive, fail

from .scaling import stiffness_scale

__all__ = [
    "ZyssetCurnier",
    "BoneTargets",
    "fabric_stiffness",
    "bone_targets",
    "write_bone_csv",
    "read_bone_csv",
    "shipped_bone_targets",
    "BV_TV_RANGE",
    "ANISOTROPY_RANGE",
    "REACH_MARGIN",
    "E_TI64_GPA",
    "SHIPPED_SEED",
    "SHIPPED_N",
]

#: Bone volume fraction of human trabecular bone (vertebra ~0.08-0.15, femoral neck and
#: head ~0.2-0.35).
BV_TV_RANGE = (0.08, 0.30)
#: Degree of anisotropy m_3 / m_1 of the fabric (MIL) of human trabecular bone: ~1.2 in the
#: vertebra to ~2.4 in the femoral head.
ANISOTROPY_RANGE = (1.2, 2.4)
#: Relative margin inside the design space's reach onto which an out-of-reach magnitude is
#: scaled: targets at the very edge of the reach are met only at rho = 0.1 exactly.
REACH_MARGIN = 0.05
#: Young's modulus of Ti-6Al-4V in GPa (the default base material of ``graded design``).
E_TI64_GPA = 114.0
#: Seed and size of the shipped bone-like set.
SHIPPED_SEED = 20
SHIPPED_N = 50
#: Columns of the parameter table beside the bone-target CSV.
_PARAMS = ("bv_tv", "m1", "m2", "m3", "scale", "r1", "r2", "r3")


@dataclass(frozen=True)
class ZyssetCurnier:
    """Constants of the Zysset-Curnier relation (module docstring).

    Attributes
    ----------
    E0 : float
        Young's modulus of fully dense, isotropic bone (MPa).
    nu0 : float
        Poisson's ratio.
    mu0 : float or None
        Shear modulus (MPa); None: ``E0 / (2 (1 + nu0))``.
    k : float
        Density exponent.
    l : float
        Fabric exponent.
    """

    E0: float = 8534.64
    nu0: float = 0.246
    mu0: float | None = None
    k: float = 1.63
    l: float = 1.0  # noqa: E741 -- the symbol of the paper

    @property
    def shear(self) -> float:
        return self.E0 / (2.0 * (1.0 + self.nu0)) if self.mu0 is None else float(self.mu0)


@dataclass
class BoneTargets:
    """Bone-like targets and the parameters that made them.

    Attributes
    ----------
    C : (n, 6, 6) float64
        Stiffness normalised by the base material's Young's modulus (Voigt).
    bv_tv : (n,)
        Bone volume fraction.
    fabric : (n, 3)
        Fabric eigenvalues ``m_1 <= m_2 <= m_3``, summing to 3.
    R : (n, 3, 3)
        Fabric frame (columns: the fabric's eigenvectors).
    scale : (n,)
        Factor applied to bring the magnitude into reach (1 where it already was).
    E_base : float
        Base material's Young's modulus (GPa) the targets are normalised by.
    names : list of str
    """

    C: np.ndarray
    bv_tv: np.ndarray
    fabric: np.ndarray
    R: np.ndarray
    scale: np.ndarray
    E_base: float
    names: list[str]

    def __len__(self) -> int:
        return int(self.C.shape[0])


def fabric_stiffness(bv_tv, fabric, R=None, constants: ZyssetCurnier | None = None) -> np.ndarray:
    """Zysset-Curnier stiffness (MPa) of bone volume fractions and fabrics.

    Parameters
    ----------
    bv_tv : array_like, shape (n,) or ()
        Bone volume fraction in (0, 1].
    fabric : array_like, shape (n, 3) or (3,)
        Fabric eigenvalues (positive; the relation assumes ``sum = 3``).
    R : array_like, shape (n, 3, 3) or (3, 3), optional
        Rotation whose columns are the fabric's eigenvectors; None: the fabric frame.
    constants : ZyssetCurnier, optional

    Returns
    -------
    ndarray, shape (n, 6, 6) or (6, 6), float64
        Voigt stiffness in MPa.
    """
    c = constants or ZyssetCurnier()
    rho = np.asarray(bv_tv, dtype=np.float64)
    m = np.asarray(fabric, dtype=np.float64)
    single = m.ndim == 1
    m = m.reshape(-1, 3)
    rho = np.broadcast_to(rho.reshape(-1), (m.shape[0],))
    if np.any(~np.isfinite(rho)) or np.any((rho <= 0) | (rho > 1)):
        fail("bv_tv", "must lie in (0, 1]", "give bone volume fractions BV/TV, e.g. 0.15")
    if np.any(~np.isfinite(m)) or np.any(m <= 0):
        fail("fabric", "eigenvalues must be positive", "give the fabric tensor's eigenvalues, summing to 3")
    dens = rho ** c.k
    ml = m ** c.l
    S = np.zeros((m.shape[0], 6, 6))
    for i in range(3):
        S[:, i, i] = 1.0 / (c.E0 * dens * ml[:, i] ** 2)
        for j in range(3):
            if j != i:
                S[:, i, j] = -c.nu0 / (c.E0 * dens * ml[:, i] * ml[:, j])
    for a, (i, j) in zip((3, 4, 5), ((1, 2), (0, 2), (0, 1))):
        S[:, a, a] = 1.0 / (c.shear * dens * ml[:, i] * ml[:, j])
    C = np.linalg.inv(S)
    if R is not None:
        C = rotate_voigt(C, np.broadcast_to(np.asarray(R, dtype=np.float64), (m.shape[0], 3, 3)))
    C = 0.5 * (C + np.swapaxes(C, -1, -2))  # exactly symmetric (inverse and rotation leave round-off)
    return C[0] if single else C


def bone_targets(n: int, rng: np.random.Generator, *, E_base: float = E_TI64_GPA,
                 constants: ZyssetCurnier | None = None, bv_tv_range=BV_TV_RANGE,
                 anisotropy_range=ANISOTROPY_RANGE, reach: tuple[float, float] | None = None,
                 prefix: str = "bone") -> BoneTargets:
    """``n`` bone-like targets drawn as the module docstring says.

    Parameters
    ----------
    n : int
    rng : numpy.random.Generator
        Source of every random number (a fixed seed gives identical targets).
    E_base : float
        Base material's Young's modulus in GPa.
    constants : ZyssetCurnier, optional
    bv_tv_range, anisotropy_range : (float, float)
        Ranges of BV/TV and of m_3 / m_1.
    reach : (float, float), optional
        Reachable range of the magnitude ``s`` (normalised); default
        :data:`graded.inverse.design.REACH`.
    prefix : str
        Names are ``f"{prefix}_{i:03d}"``.

    Returns
    -------
    BoneTargets
    """
    n = check_count("n", n, 1)
    if not isinstance(rng, np.random.Generator):
        fail("rng", f"is a {type(rng).__name__}", "pass numpy.random.default_rng(seed)")
    E_base = float(check_positive("E_base", E_base, hint="Young's modulus in GPa, e.g. 114"))
    if reach is None:
        from .design import REACH

        reach = REACH
    rho = rng.uniform(*bv_tv_range, size=n)
    da = rng.uniform(*anisotropy_range, size=n)
    t = rng.uniform(0.0, 1.0, size=n)
    m = np.stack([np.ones(n), da ** t, da], axis=1)
    m *= 3.0 / m.sum(axis=1, keepdims=True)
    R = Rotation.random(n, random_state=rng).as_matrix()
    C = fabric_stiffness(rho, m, R, constants) / (1000.0 * E_base)
    s = stiffness_scale(to_21(C))
    lo, hi = reach[0] * (1.0 + REACH_MARGIN), reach[1] * (1.0 - REACH_MARGIN)
    scale = np.clip(s, lo, hi) / s
    return BoneTargets(C=C * scale[:, None, None], bv_tv=rho, fabric=m, R=R, scale=scale, E_base=E_base,
                       names=[f"{prefix}_{i:03d}" for i in range(n)])


def write_bone_csv(targets: BoneTargets, path: str | os.PathLike, *, header: str = "") -> tuple[Path, Path]:
    """Write targets as the CSV ``graded design TARGET --row NAME`` reads, atomically.

    Two files: ``path`` with ``name, C11, ..., C66`` in GPa (what ``graded design`` and a
    spec's control point read), and beside it ``<stem>_params.csv`` with
    ``name, bv_tv, m1, m2, m3, scale, r1, r2, r3`` (``r``: the fabric frame as a rotation
    vector, radians), read back by :func:`read_bone_csv`.

    Returns
    -------
    (Path, Path)
        The two files.
    """
    path = Path(path)
    params = _params_path(path)
    note = [f"# {h}" for h in header.splitlines()]
    c21 = to_21(targets.C) * targets.E_base
    rv = Rotation.from_matrix(targets.R).as_rotvec()
    rows = [",".join(["name", *NAMES_21])]
    prow = [",".join(["name", *_PARAMS])]
    for i, name in enumerate(targets.names):
        rows.append(",".join([name] + [repr(float(v)) for v in c21[i]]))
        vals = [targets.bv_tv[i], *targets.fabric[i], targets.scale[i], *rv[i]]
        prow.append(",".join([name] + [repr(float(v)) for v in vals]))
    for p, lines in ((path, note + rows), (params, note + prow)):
        with atomic_path(p) as tmp:
            Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, params


def _params_path(path: Path) -> Path:
    return path.with_name(path.stem + "_params.csv")


def _table(path: Path, columns: list[str]) -> tuple[list[str], np.ndarray]:
    try:
        rows = [r for r in path.read_text(encoding="utf-8").splitlines() if r.strip() and not r.startswith("#")]
    except FileNotFoundError:
        fail("path", f"{path} does not exist", "write it with write_bone_csv")
    if not rows or rows[0].split(",") != ["name", *columns]:
        fail("path", f"{path} is not a bone-target table (header {rows[0][:40] if rows else ''!r})",
             "write it with write_bone_csv")
    names = [r.split(",", 1)[0] for r in rows[1:]]
    return names, np.array([[float(v) for v in r.split(",")[1:]] for r in rows[1:]])


def read_bone_csv(path: str | os.PathLike, E_base: float = E_TI64_GPA) -> BoneTargets:
    """Targets written by :func:`write_bone_csv` (both files)."""
    path = Path(path)
    names, c21 = _table(path, list(NAMES_21))
    pnames, v = _table(_params_path(path), list(_PARAMS))
    if pnames != names:
        fail("path", f"{_params_path(path).name} does not list the targets of {path.name}", "write both again")
    return BoneTargets(C=from_21(c21 / E_base), bv_tv=v[:, 0], fabric=v[:, 1:4],
                       R=Rotation.from_rotvec(v[:, 5:8]).as_matrix(), scale=v[:, 4], E_base=float(E_base),
                       names=names)


@functools.lru_cache(maxsize=1)
def _shipped() -> BoneTargets:
    from importlib import resources

    with resources.as_file(resources.files("graded.inverse") / "data" / "bone_targets.csv") as path:
        return read_bone_csv(path)


def shipped_bone_targets() -> BoneTargets:
    """The bone-like test set shipped with the package (:data:`SHIPPED_N` targets, seed
    :data:`SHIPPED_SEED`, Ti-6Al-4V), read once per process."""
    return _shipped()

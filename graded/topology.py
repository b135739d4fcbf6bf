"""Elementary topologies, their tessellation and superposition into one periodic unit cell.

A *part* is a pair ``(tessellation, topology_id)``: one of the seven elementary
topologies of SI Fig. S1 (ids 1-7) used 1x1x1 or 2x2x2 inside the reference cube
[0, 1]^3. A unit cell superposes several parts (three in the design space of SI
Table S1). Superposition splits struts wherever they cross or touch another strut's
node, and removes duplicates, so the result is a clean periodic graph.

Two representations are produced (:class:`ReferenceGraph`):

* the *cube* representation: nodes in the closed cube, including both copies of
  nodes on opposite faces, and the struts inside the cube -- used to place cells of a
  graded lattice, where neighbouring cells share their face nodes;
* the *periodic* representation (:class:`graded.fem.PeriodicGraph`): nodes in
  [0, 1)^3 and bonds with integer lattice offsets, each physical strut of the infinite
  lattice counted once per cell -- used for homogenization and relative density.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

import numpy as np
from scipy.spatial import cKDTree

from .fem import PeriodicGraph
from .tol import TOL
from .validation import fail

__all__ = [
    "Part",
    "Topology",
    "TOPOLOGY_IDS",
    "TESSELLATIONS",
    "elementary",
    "parse_topology",
    "format_topology",
    "canonical",
    "reference_graph",
    "ReferenceGraph",
]

Part = tuple[int, int]
Topology = tuple[Part, ...]

TOPOLOGY_IDS = (1, 2, 3, 4, 5, 6, 7)
TESSELLATIONS = (1, 2)


@cache
def _elementary_table() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    text = resources.files("graded").joinpath("data/elementary_topologies.json").read_text()
    raw = json.loads(text)["topologies"]
    return {
        int(k): (np.asarray(v["nodes"], dtype=np.float64), np.asarray(v["struts"], dtype=np.int64))
        for k, v in raw.items()
    }


def elementary(topology_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (N, 3) in [0, 1]^3 and struts (M, 2) of elementary topology 1-7 (SI Fig. S1)."""
    if topology_id not in TOPOLOGY_IDS:
        fail("topology", f"unknown topology id {topology_id!r}", "ids are 1 to 7 (SI Fig. S1)")
    nodes, struts = _elementary_table()[topology_id]
    return nodes.copy(), struts.copy()


_PART_RE = re.compile(r"^\s*(?:(\d+)\s*[xX*]\s*)?(\d+)\s*$")


def parse_topology(text: str) -> Topology:
    """Parse ``"2x1+1x3+2x5"`` (tessellation x topology id, joined by ``+``).

    A bare id means tessellation 1 (``"3"`` == ``"1x3"``).

    >>> parse_topology("2x1+1x3+2x5")
    ((2, 1), (1, 3), (2, 5))
    """
    if not isinstance(text, str) or not text.strip():
        fail("topology", f"{text!r} is not a topology string", "write it like '2x1+1x3+2x5' (tessellation x id)")
    parts = []
    for token in text.split("+"):
        m = _PART_RE.match(token)
        if m is None:
            fail("topology", f"cannot read {token.strip()!r} in {text!r}",
                 "write parts as TxS joined by '+', e.g. '2x1+1x3+2x5' with T in {1, 2} and S in 1..7")
        parts.append((int(m.group(1) or 1), int(m.group(2))))
    return validate_parts(parts)


def validate_parts(parts: Iterable[Sequence[int]]) -> Topology:
    """Check a sequence of (tessellation, id) pairs and return it as a tuple."""
    out = []
    for p in parts:
        try:
            t, s = (int(v) for v in p)
        except (TypeError, ValueError):
            fail("topology", f"part {p!r} is not a (tessellation, id) pair", "give pairs like (2, 1)")
        if t not in TESSELLATIONS:
            fail("tessellation", f"{t} is not allowed", "use 1 (single cell) or 2 (2x2x2)")
        if s not in TOPOLOGY_IDS:
            fail("topology", f"unknown topology id {s}", "ids are 1 to 7 (SI Fig. S1)")
        out.append((t, s))
    if not out:
        fail("topology", "is empty", "give at least one part, e.g. '1x2'")
    return tuple(out)


def format_topology(parts: Topology) -> str:
    """Inverse of :func:`parse_topology`: ``((2, 1), (1, 3))`` -> ``"2x1+1x3"``."""
    return "+".join(f"{t}x{s}" for t, s in parts)


def canonical(parts: Topology) -> Topology:
    """Order- and repetition-free key: the set of parts, sorted."""
    return tuple(sorted(set(validate_parts(parts))))


@dataclass(frozen=True, eq=False)
class ReferenceGraph:
    """A superposed unit-cell topology in the reference cube.

    Attributes
    ----------
    parts : tuple of (tessellation, id)
        The constituent parts, in the order membership columns refer to.
    nodes : ndarray, shape (N, 3)
        Cube representation: nodes in [0, 1]^3, face nodes present on both faces.
    struts : ndarray, shape (M, 2)
        Struts of the cube representation (all inside the closed cube).
    membership : ndarray, shape (M, P), bool
        ``membership[s, p]``: strut s lies on a strut of part p.
    periodic : PeriodicGraph
        The periodic representation (bond membership in ``periodic.membership``).
    cube_to_periodic : ndarray, shape (M,)
        Index of the periodic bond each cube strut is an image of.
    """

    parts: Topology
    nodes: np.ndarray
    struts: np.ndarray
    membership: np.ndarray
    periodic: PeriodicGraph
    cube_to_periodic: np.ndarray


def _part_segments(part: Part) -> tuple[np.ndarray, np.ndarray]:
    """Segments (K, 2, 3) of one part in the cube."""
    t, s = part
    nodes, struts = elementary(s)
    seg = nodes[struts]  # (m, 2, 3)
    if t == 1:
        return seg
    shifts = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.float64)
    return ((seg[None] + shifts[:, None, None, :]) / 2.0).reshape(-1, 2, 3)


def _key(points: np.ndarray) -> np.ndarray:
    """Integer keys of points on a grid finer than TOL.merge allows to separate."""
    return np.round(points / (10 * TOL.merge)).astype(np.int64)


def _unique_points(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, first, inverse = np.unique(_key(points), axis=0, return_index=True, return_inverse=True)
    return points[first], inverse.reshape(-1)


def _crossings(seg: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Points where two non-parallel segments of different parts meet.

    Struts of one part (one elementary topology, tessellated or not) meet only at its
    nodes, so only pairs from different parts are tested; a bounding-box test prunes
    the pairs first. Closest distance below TOL.on_segment counts as a meeting.
    """
    mid = seg.mean(axis=1)
    half = np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1) / 2.0
    ia_all, ib_all = [], []
    groups = [np.flatnonzero(owner == k) for k in np.unique(owner)]
    for x in range(len(groups)):
        for y in range(x + 1, len(groups)):
            a, b = groups[x], groups[y]
            # two segments can meet only if their midpoints are closer than the half-lengths
            hits = cKDTree(mid[b]).query_ball_point(mid[a], half[a] + half[b].max() + TOL.on_segment)
            counts = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
            if counts.sum() == 0:
                continue
            ia_all.append(np.repeat(a, counts))
            ib_all.append(b[np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])])
    if not ia_all:
        return np.zeros((0, 3))
    ia, ib = np.concatenate(ia_all), np.concatenate(ib_all)
    p, u = seg[:, 0], seg[:, 1] - seg[:, 0]
    uu, vv = np.sum(u[ia] ** 2, 1), np.sum(u[ib] ** 2, 1)
    uv = np.sum(u[ia] * u[ib], 1)
    w = p[ia] - p[ib]
    uw, vw = np.sum(u[ia] * w, 1), np.sum(u[ib] * w, 1)
    den = uu * vv - uv**2
    nonpar = den > 1e-12 * uu * vv
    ia, ib, uu, vv, uv, uw, vw, den = (a[nonpar] for a in (ia, ib, uu, vv, uv, uw, vw, den))
    s = (uv * vw - vv * uw) / den
    t = (uu * vw - uv * uw) / den
    inside = (s >= -TOL.on_segment) & (s <= 1 + TOL.on_segment) & (t >= -TOL.on_segment) & (t <= 1 + TOL.on_segment)
    pa = p[ia] + s[:, None] * u[ia]
    pb = p[ib] + t[:, None] * u[ib]
    meet = inside & (np.linalg.norm(pa - pb, axis=1) < TOL.on_segment)
    return (pa[meet] + pb[meet]) / 2.0


def _split(seg: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split every segment at the points lying inside it. Returns (pieces (K, 2, 3), parent (K,))."""
    p, u = seg[:, 0], seg[:, 1] - seg[:, 0]
    L2 = np.sum(u**2, 1)
    # only points within half a length of a segment's midpoint can lie on it
    hits = cKDTree(points).query_ball_point(p + u / 2.0, np.sqrt(L2) / 2.0 + TOL.on_segment)
    counts = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
    si = np.repeat(np.arange(len(seg)), counts)
    qi = np.concatenate([np.asarray(h, dtype=np.int64) for h in hits]) if counts.sum() else np.zeros(0, np.int64)
    t = np.einsum("nk,nk->n", points[qi] - p[si], u[si]) / L2[si]
    eps = TOL.on_segment / np.sqrt(L2[si])
    cand = (t > eps) & (t < 1 - eps)
    si, qi, t = si[cand], qi[cand], t[cand]
    d = np.linalg.norm(p[si] + t[:, None] * u[si] - points[qi], axis=1)
    on = d < TOL.on_segment
    si, ti = si[on], t[on]
    # breakpoints of every segment: 0, the inner points, 1 -- consecutive ones make pieces
    n = len(seg)
    seg_id = np.concatenate([np.arange(n), si, np.arange(n)])
    param = np.concatenate([np.zeros(n), ti, np.ones(n)])
    order = np.lexsort((param, seg_id))
    seg_id, param = seg_id[order], param[order]
    same = seg_id[1:] == seg_id[:-1]
    a, b, k = param[:-1][same], param[1:][same], seg_id[:-1][same]
    keep = b - a > 1e-12
    a, b, k = a[keep], b[keep], k[keep]
    pieces = np.stack([p[k] + a[:, None] * u[k], p[k] + b[:, None] * u[k]], axis=1)
    return pieces, k


def _reduce(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split points into a cell offset (int) and a position in [0, 1)^3."""
    shift = np.floor(points + TOL.merge)
    r = points - shift
    r[np.abs(r) < TOL.merge] = 0.0
    return r, shift.astype(np.int64)


@cache
def _part_candidates(part: Part) -> tuple[np.ndarray, np.ndarray]:
    """Struts of one part's infinite lattice that touch the closed cube, (K, 2, 3),
    and whether each is the untranslated strut, (K,)."""
    seg = _part_segments(part)
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=np.float64)
    all_seg = (seg[None] + shifts[:, None, None, :]).reshape(-1, 2, 3)
    from_origin = np.repeat(np.all(shifts == 0, axis=1), len(seg))
    lo = np.minimum(all_seg[:, 0], all_seg[:, 1])
    hi = np.maximum(all_seg[:, 0], all_seg[:, 1])
    touch = np.all((hi >= -TOL.merge) & (lo <= 1 + TOL.merge), axis=1)
    return all_seg[touch], from_origin[touch]


@cache
def _pair_crossings(a: Part, b: Part) -> np.ndarray:
    """Crossing points of the lattices of two parts inside the closed cube (cached per pair:
    the ~470 three-part topologies share ~100 pairs)."""
    sa, sb = _part_candidates(a)[0], _part_candidates(b)[0]
    return _crossings(np.concatenate([sa, sb]), np.repeat([0, 1], [len(sa), len(sb)]))


@lru_cache(maxsize=1024)
def _reference_graph_cached(parts: Topology) -> ReferenceGraph:
    P = len(parts)
    # Candidates: every strut of the infinite lattice that touches the closed cube.
    cands = [_part_candidates(part) for part in parts]
    cand = np.concatenate([c[0] for c in cands])
    cand_origin = np.concatenate([c[1] for c in cands])
    cand_own = np.repeat(np.arange(P), [len(c[0]) for c in cands])
    distinct = sorted(set(parts))
    crossings = [_pair_crossings(a, b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]]
    points = np.concatenate([cand.reshape(-1, 3), *crossings])
    points, _ = _unique_points(points)
    pieces, parent = _split(cand, points)
    piece_own = cand_own[parent]
    piece_origin = cand_origin[parent]

    # periodic representation: every piece of the lattice has exactly one image whose
    # midpoint lies in [0, 1)^3, and that image is split at all its points (they lie in
    # the closed cube). Pieces of candidates that only touch the cube are left out here.
    mid = pieces.mean(axis=1)
    home = np.all((mid >= -TOL.merge) & (mid < 1.0 - TOL.merge), axis=1)
    a_red, a_shift = _reduce(pieces[home, 0])
    b_red, b_shift = _reduce(pieces[home, 1])
    pnodes, inv = _unique_points(np.concatenate([a_red, b_red]))
    nh = int(home.sum())
    ia, ib = inv[:nh], inv[nh:]
    off = b_shift - a_shift
    # canonical direction: (i < j) or (i == j and offset lexicographically positive)
    sign = np.sign(off[:, 0] * 9 + off[:, 1] * 3 + off[:, 2])
    flip = (ia > ib) | ((ia == ib) & (sign < 0))
    ci = np.where(flip, ib, ia)
    cj = np.where(flip, ia, ib)
    coff = np.where(flip[:, None], -off, off)
    key = np.concatenate([ci[:, None], cj[:, None], coff], axis=1)
    ukey, bond_of_piece = np.unique(key, axis=0, return_inverse=True)
    bond_of_piece = bond_of_piece.reshape(-1)
    if np.any((ukey[:, 0] == ukey[:, 1]) & np.all(ukey[:, 2:] == 0, axis=1)):
        raise RuntimeError(f"topology {format_topology(parts)}: a strut collapsed to a point while splitting")
    bmember = np.zeros((len(ukey), P), dtype=bool)
    np.logical_or.at(bmember, (bond_of_piece, piece_own[home]), True)
    # a sub-strut lies on a strut of part p if any piece mapped to the bond came from p
    periodic = PeriodicGraph(pnodes, ukey[:, :2], ukey[:, 2:], bmember)

    # cube representation: the pieces of untranslated struts
    cube = pieces[piece_origin]
    cnodes, cinv = _unique_points(cube.reshape(-1, 3))
    cstruts = cinv.reshape(-1, 2)
    ckey = np.sort(cstruts, axis=1)
    _, first = np.unique(ckey, axis=0, return_index=True)
    first = np.sort(first)
    cstruts = cstruts[first]
    # which periodic bond each cube strut is an image of
    ca_red, ca_shift = _reduce(cnodes[cstruts[:, 0]])
    cb_red, cb_shift = _reduce(cnodes[cstruts[:, 1]])
    lookup = {tuple(k): n for n, k in enumerate(_key(pnodes).tolist())}
    ci_ = np.array([lookup[tuple(k)] for k in _key(ca_red).tolist()], dtype=np.int64)
    cj_ = np.array([lookup[tuple(k)] for k in _key(cb_red).tolist()], dtype=np.int64)
    coff_ = cb_shift - ca_shift
    bond_lookup = {tuple(k): n for n, k in enumerate(ukey.tolist())}
    cube_bonds = np.empty(len(cstruts), dtype=np.int64)
    for n, (i_, j_, o_) in enumerate(zip(ci_.tolist(), cj_.tolist(), coff_.tolist())):
        k_ = bond_lookup.get((i_, j_, *o_))
        if k_ is None:
            k_ = bond_lookup[(j_, i_, *(-v for v in o_))]
        cube_bonds[n] = k_
    return ReferenceGraph(
        parts=parts,
        nodes=cnodes,
        struts=cstruts,
        membership=bmember[cube_bonds],
        periodic=periodic,
        cube_to_periodic=cube_bonds,
    )


def reference_graph(parts: Topology | str) -> ReferenceGraph:
    """Superpose parts into one reference unit cell (cached).

    Parameters
    ----------
    parts : str or sequence of (tessellation, id)
        E.g. ``"2x1+1x3+2x5"`` or ``((2, 1), (1, 3), (2, 5))``. Order and repetitions
        do not change the geometry; membership columns follow the given order.
    """
    if isinstance(parts, str):
        parts = parse_topology(parts)
    return _reference_graph_cached(validate_parts(parts))

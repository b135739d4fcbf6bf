"""Figures: elastic surfaces (as in the main paper's Fig. 3A) and parity plots.

Everything draws on a private ``matplotlib.figure.Figure`` with the Agg canvas, so no
pyplot state or interactive backend is touched, and every PNG is written atomically
(temporary file in the target directory, then ``os.replace``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .elastic import check_admissible, directional_modulus, from_21, r2_score, sphere_directions
from .io.atomic import atomic_path, check_suffix
from .validation import check_finite, fail

__all__ = ["plot_elastic_surfaces", "plot_field_map", "plot_parity", "save_figure"]

#: The coordinate planes of the cut panels: (label, index of first axis, index of second axis).
_PLANES = (("e1-e2", 0, 1), ("e1-e3", 0, 2), ("e2-e3", 1, 2))
_LINESTYLES = ("-", "--", "-.", ":")


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; returns the path."""
    path = check_suffix(path, (".png",))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _as_stiffness(name: str, C) -> np.ndarray:
    arr = check_finite(f"stiffnesses[{name!r}]", C)
    if arr.shape == (21,):
        arr = from_21(arr)
    return check_admissible(arr, f"stiffnesses[{name!r}]")


def plot_elastic_surfaces(
    stiffnesses: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    title: str | None = None,
    resolution: int = 48,
    unit: str = "E_s",
) -> Path:
    """Elastic surfaces E(d) (SI Eq. 1) of one or more stiffnesses, e.g. target vs design.

    Top row: for each stiffness the surface ``r(d) = E(d) d`` over the unit sphere,
    coloured by E(d) on one colour scale shared by all panels. Bottom row: the cuts of
    all surfaces with the three coordinate planes (e1-e2, e1-e3, e2-e3), overlaid, so
    target and design can be compared directly.

    Parameters
    ----------
    stiffnesses : mapping of str to (6, 6) or (21,) array
        Voigt stiffnesses (normalised by E_s, or any common unit), by legend label;
        each must be symmetric positive definite. At most 6.
    path : path-like
        Output PNG.
    title : str, optional
        Figure title.
    resolution : int
        Grid points per half great circle (>= 8).
    unit : str
        Unit of the stiffnesses for the colour-bar label: ``"E_s"`` (normalised) or e.g. ``"GPa"``.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    if not isinstance(stiffnesses, Mapping) or not stiffnesses:
        fail("stiffnesses", "is empty or not a mapping", "pass a dict such as {'target': C1, 'design': C2}")
    if len(stiffnesses) > 6:
        fail("stiffnesses", f"has {len(stiffnesses)} entries", "plot at most 6 stiffnesses per figure")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8:
        fail("resolution", f"{resolution!r} must be an integer >= 8", None)
    Cs = {str(k): _as_stiffness(str(k), v) for k, v in stiffnesses.items()}

    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    d, shape = sphere_directions(resolution, 2 * resolution)
    E = {k: directional_modulus(C, d).reshape(shape) for k, C in Cs.items()}
    phi = np.linspace(0.0, 2.0 * np.pi, 8 * resolution + 1)
    circle = np.stack([np.cos(phi), np.sin(phi)], 1)
    cuts = {}
    for k, C in Cs.items():
        for plane, i, j in _PLANES:
            dirs = np.zeros((len(phi), 3))
            dirs[:, i], dirs[:, j] = circle[:, 0], circle[:, 1]
            cuts[k, plane] = directional_modulus(C, dirs)[:, None] * circle

    e_min = min(float(e.min()) for e in E.values())
    e_max = max(float(e.max()) for e in E.values())
    norm = Normalize(vmin=e_min, vmax=e_max if e_max > e_min else e_min * (1 + 1e-6) + 1e-30)
    cmap = colormaps["viridis"]
    fig = _new_figure(max(3.6 * len(Cs), 10.0), 7.5)
    top = fig.add_gridspec(1, len(Cs), left=0.0, right=0.9, bottom=0.45, top=0.92, wspace=0.05)
    bottom = fig.add_gridspec(1, 3, left=0.07, right=0.9, bottom=0.08, top=0.39, wspace=0.35)
    lim = e_max * 1.05
    d3 = d.reshape(*shape, 3)
    for n, (k, e) in enumerate(E.items()):
        ax = fig.add_subplot(top[0, n], projection="3d")
        xyz = e[..., None] * d3
        ax.plot_surface(xyz[..., 0], xyz[..., 1], xyz[..., 2], facecolors=cmap(norm(e)),
                        rstride=1, cstride=1, linewidth=0, antialiased=False, shade=False)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), zlim=(-lim, lim), xlabel="e1", ylabel="e2", zlabel="e3")
        ax.set_box_aspect((1, 1, 1))
        ax.locator_params(nbins=3)
        ax.tick_params(labelsize=6, pad=0)
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.label.set_size(8)
            axis.get_offset_text().set_fontsize(6)
        ax.set_title(k, fontsize=10)
    sm = ScalarMappable(norm=norm, cmap=cmap)
    cax = fig.add_axes((0.93, 0.58, 0.012, 0.3))
    fig.colorbar(sm, cax=cax).set_label("E(d) / E_s" if unit == "E_s" else f"E(d) [{unit}]", fontsize=8)
    cax.tick_params(labelsize=7)

    colours = [f"C{i}" for i in range(len(Cs))]
    for p, (plane, i, j) in enumerate(_PLANES):
        ax = fig.add_subplot(bottom[0, p])
        for n, k in enumerate(Cs):
            xy = cuts[k, plane]
            ax.plot(xy[:, 0], xy[:, 1], color=colours[n], ls=_LINESTYLES[n % 4], lw=1.6, label=k)
        ax.set_aspect("equal")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim))
        ax.axhline(0, color="0.8", lw=0.6, zorder=0)
        ax.axvline(0, color="0.8", lw=0.6, zorder=0)
        ax.set_xlabel(f"e{i + 1}", fontsize=8)
        ax.set_ylabel(f"e{j + 1}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(style="sci", scilimits=(-2, 3))
        ax.set_title(f"cut {plane}", fontsize=9)
        if p == 0:
            ax.legend(fontsize=7, loc="upper left", framealpha=0.8)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def plot_parity(
    true: np.ndarray,
    pred: np.ndarray,
    path: str | os.PathLike,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    r2_target: float | None = None,
    max_points: int = 4000,
    axis_labels: tuple[str, str] = ("true", "predicted"),
) -> np.ndarray:
    """Predicted vs true scatter, one panel per component, with R^2 in each title.

    Parameters
    ----------
    true, pred : (n, k) arrays
        Reference (e.g. FE) and predicted values.
    path : path-like
        Output PNG.
    labels : sequence of k str, optional
        Component names (e.g. :data:`graded.elastic.NAMES_21`); default ``c0, c1, ...``.
    title : str, optional
        Figure title.
    r2_target : float, optional
        Panels whose R^2 falls below it get a red title.
    max_points : int
        At most this many points are drawn per panel (a fixed random subset); R^2 always
        uses all ``n``.
    axis_labels : (str, str)
        Names of the horizontal (``true``) and vertical (``pred``) axes, e.g.
        ``("target", "FE of design")``.

    Returns
    -------
    (k,) float64
        R^2 of every component (:func:`graded.elastic.r2_score`).
    """
    t = check_finite("true", true)
    p = check_finite("pred", pred)
    if t.ndim == 1:
        t, p = t[:, None], p.reshape(-1, 1)
    if t.ndim != 2 or p.shape != t.shape or t.shape[0] < 2:
        fail("pred", f"shapes {p.shape} and {t.shape} do not match or are not (n >= 2, k)",
             "give two arrays of the same shape (n, k)")
    n, k = t.shape
    if labels is None:
        labels = [f"c{i}" for i in range(k)]
    if len(labels) != k:
        fail("labels", f"has {len(labels)} names for {k} components", "give one name per column")
    if (not isinstance(axis_labels, (tuple, list)) or len(axis_labels) != 2
            or not all(isinstance(a, str) for a in axis_labels)):
        fail("axis_labels", f"{axis_labels!r} is not two strings", 'give (x label, y label), e.g. ("FE", "model")')
    r2 = r2_score(t, p)
    shown = np.arange(n)
    if n > max_points:
        shown = np.sort(np.random.default_rng(0).choice(n, size=max_points, replace=False))
    ncols = min(k, 7 if k > 9 else 3 if k > 4 else k)
    nrows = math.ceil(k / ncols)
    fig = _new_figure(2.3 * ncols, 2.3 * nrows + (0.5 if title else 0.2))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for c in range(nrows * ncols):
        ax = axes.flat[c]
        if c >= k:
            ax.set_visible(False)
            continue
        x, y = t[shown, c], p[shown, c]
        lo = float(min(x.min(), y.min()))
        hi = float(max(x.max(), y.max()))
        pad = 0.05 * (hi - lo or abs(hi) or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=0.8, zorder=0)
        ax.scatter(x, y, s=2, alpha=0.4, color="C0", linewidths=0, rasterized=True)
        ax.set(xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad))
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
        ax.ticklabel_format(style="sci", scilimits=(-2, 3))
        ax.xaxis.get_offset_text().set_fontsize(6)
        ax.yaxis.get_offset_text().set_fontsize(6)
        bad = r2_target is not None and r2[c] < r2_target
        ax.set_title(f"{labels[c]}  R²={r2[c]:.4f}", fontsize=8, color="C3" if bad else "black")
        if c % ncols == 0:
            ax.set_ylabel(axis_labels[1], fontsize=7)
        if c // ncols == nrows - 1 or c + ncols >= k:
            ax.set_xlabel(axis_labels[0], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    return r2


def plot_field_map(
    points: np.ndarray,
    fields: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    title: str | None = None,
    markers: np.ndarray | None = None,
) -> Path:
    """Scalar fields sampled at points of a part, one 3D scatter panel per field.

    Parameters
    ----------
    points : ndarray, shape (N, 3)
        Sample positions, mm.
    fields : mapping of label -> ndarray, shape (N,)
        Values to colour by; the label carries the unit (e.g. ``"E_z (GPa)"``).
    path : path-like
        PNG to write (atomically).
    title : str, optional
    markers : ndarray, shape (M, 3), optional
        Points to mark (the control points), mm.
    """
    x = check_finite("points", points)
    if x.ndim != 2 or x.shape[1] != 3:
        fail("points", f"has shape {x.shape}", "give an (N, 3) array of positions in mm")
    fig = _new_figure(5.2 * max(len(fields), 1), 4.6)
    for k, (label, v) in enumerate(fields.items()):
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (len(x),):
            fail(f"fields[{label!r}]", f"has shape {v.shape}", f"give one value per point ({len(x)})")
        ax = fig.add_subplot(1, len(fields), k + 1, projection="3d")
        sc = ax.scatter(x[:, 0], x[:, 1], x[:, 2], c=v, cmap="viridis", s=14, depthshade=False)
        if markers is not None and len(markers):
            m = np.asarray(markers, dtype=np.float64)
            ax.scatter(m[:, 0], m[:, 1], m[:, 2], marker="x", c="red", s=60, depthshade=False,
                       label="control points")
            ax.legend(loc="upper left", fontsize=7)
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
        ax.set_zlabel("z (mm)")
        span = np.ptp(x, axis=0) if len(x) else np.ones(3)
        ax.set_box_aspect(np.maximum(span, 1e-9 + 0.05 * span.max()))
        fig.colorbar(sc, ax=ax, shrink=0.6, label=label)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)

"""``report.json`` and figures of a voxel-cell build (layout: docs/report.md, family ``voxel``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..elastic import to_21
from ..elastic.metrics import relative_frobenius
from ..io.atomic import atomic_path
from ..report import (
    BUILD_REPORT_VERSION,
    ERROR_DEFINITIONS,
    MAX_RENDER_TRIANGLES,
    REPORT_FORMAT,
    FileSteps,
    jsonable,
    render_mesh,
    slug,
)

__all__ = ["PAPER_ERROR_DEFINITION", "build_voxel_report", "write_voxel_report"]

PAPER_ERROR_DEFINITION = ("voxel family: Eq. 4 of Yang et al., the mean over C11, C12, C44 of |C - C_target| divided "
                          "by that constant's range over the model's training data, against the cubic projection of "
                          "the target")


def build_voxel_report(result, files=None) -> dict:
    """The JSON document of a :class:`graded.voxelcell.part.VoxelBuild`."""
    spec = result.spec
    E = spec.material.E
    points = []
    for p in result.points:
        built = p.C_as_built is not None
        points.append({
            "name": p.name, "position_mm": p.position, "source": "generated",
            "cell": {"family": "voxel", "resolution": int(p.solid.shape[0]), "volume_fraction": float(p.solid.mean()),
                     "target_volume_fraction": p.target_volume_fraction,
                     "generated": {"accepted": p.accepted, "drawn": p.drawn},
                     "thinner_than_printer_minimum": p.thin_fraction,
                     "as_built_percolates_in_directions": None if p.connectivity is None
                     else p.connectivity.winding_rank},
            "stiffness": {"unit": "GPa", "target": to_21(p.C_target) * E, "designed": to_21(p.C_cell) * E,
                          "as_built": to_21(p.C_as_built) * E if built else None},
            "errors": {"paper_error": p.paper_error, "target_non_cubic": p.non_cubic,
                       "design_vs_target": {"rel_error": p.design_error},
                       "as_built_vs_cell": {"rel_error": p.error_vs_cell} if built else None,
                       "as_built_vs_target": {"rel_error": float(relative_frobenius(p.C_target, p.C_as_built))}
                       if built else None},
            "note": None if built else "the part holds no solid at this point",
        })
    solid = result.solid
    definitions = {k: ERROR_DEFINITIONS[k] for k in ("as_built_vs_cell", "design_vs_target", "as_built_vs_target")}
    definitions["paper_error"] = PAPER_ERROR_DEFINITION
    doc = {
        "format": REPORT_FORMAT, "format_version": BUILD_REPORT_VERSION, "schema": "docs/report.md",
        "family": "voxel", "spec": spec.source,
        "units": {"length": "mm", "stiffness": "GPa", "E_GPa": E, "nu": spec.material.nu},
        "definitions": definitions,
        "settings": {"cell_size_mm": spec.cell_size,
                     "blend": {"kind": spec.blend.kind, "width_cells": spec.blend.width},
                     "zeta": spec.zeta, "seed": spec.seed, "fe_resolution": result.resolution,
                     "voxel_size_mm": None if solid is None else solid.voxel_size},
        "control_points": points,
        "mesh": None if solid is None else {**solid.facts.to_dict(), "islands_removed": solid.removed_shells,
                                            "islands_removed_mm3": solid.removed_volume},
        "outputs": {str(k): {"path": str(v)} for k, v in (files or {}).items()},
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
    }
    return jsonable(doc)


def _cell_png(solid: np.ndarray, path: Path, title: str) -> Path:
    """Three mid-plane sections and the face of a cell (solid dark)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = solid.shape[0]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    for ax, (name, img) in zip(axes, (("face (x = 0)", solid[0]), ("x = 1/4", solid[n // 4]),
                                       ("x = 1/2", solid[n // 2]))):
        ax.imshow(img, cmap="Greys", origin="lower", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def write_voxel_report(result, folder, progress=None) -> dict:
    """Write ``report.json``, ``render.png``, and per point ``surfaces_<point>.png`` and ``cell_<point>.png``.

    Returns
    -------
    dict
        Key -> path of every file written.
    """
    from ..plot import plot_elastic_surfaces

    out = Path(folder)
    doc = build_voxel_report(result, result.files)
    written: dict[str, Path] = {}
    solid = result.solid
    tell = FileSteps(progress, 2 + 2 * len(result.points))
    if solid is not None and len(solid.mesh.faces) <= MAX_RENDER_TRIANGLES:
        tell("render.png")
        written["render"] = render_mesh(solid.mesh.vertices, solid.mesh.faces, out / "render.png",
                                        title=f"{result.title}, {len(solid.mesh.faces):,} triangles")
    E = result.spec.material.E
    for entry, p in zip(doc["control_points"], result.points):
        surfaces = {"target": p.C_target * E, "generated cell": p.C_cell * E}
        if p.C_as_built is not None:
            surfaces["as built"] = p.C_as_built * E
        path = out / f"surfaces_{slug(p.name)}.png"
        tell(path.name)
        plot_elastic_surfaces(surfaces, path, unit="GPa",
                              title=f"{p.name}: generated cell vs target {p.design_error:.1%} (Frobenius)")
        entry["surface_png"] = path.name
        written[f"surfaces_{slug(p.name)}"] = path
        cell_path = out / f"cell_{slug(p.name)}.png"
        tell(cell_path.name)
        written[f"cell_{slug(p.name)}"] = _cell_png(p.solid, cell_path, f"{p.name}: volume fraction "
                                                    f"{p.solid.mean():.3f}, Eq. 4 error {100 * p.paper_error:.2f} %")
        entry["cell_png"] = cell_path.name
    doc["figures"] = {k: v.name for k, v in written.items()}
    path = out / "report.json"
    tell(path.name)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=lambda o: np.asarray(o).tolist()) + "\n")
    written["report"] = path
    return written

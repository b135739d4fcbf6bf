"""``report.json`` and figures of a spinodoid build (layout: docs/report.md, family ``spinodoid``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..elastic import nmse, to_21
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

__all__ = ["build_spinodoid_report", "write_spinodoid_report"]


def build_spinodoid_report(result, files=None) -> dict:
    """The JSON document of a :class:`graded.spinodoid.part.SpinodoidBuild`."""
    spec = result.spec
    E = spec.material.E
    points = []
    for p in result.points:
        d = p.design
        err = None if p.C_as_built is None else {"rel_error": p.error_vs_cell,
                                                 "nmse": float(nmse(p.C_cell, p.C_as_built))}
        target = p.C_target is not None
        errors = {"as_built_vs_cell": err}
        if target:
            errors["design_vs_target"] = {"rel_error": p.design_error, "nmse": float(nmse(p.C_target, p.C_cell))}
            errors["design_mean_vs_target"] = {"rel_error": p.design_error_expected}
            errors["cell_scatter"] = p.scatter
            errors["target_non_orthotropic"] = p.non_orthotropic
            errors["as_built_vs_target"] = None if p.C_as_built is None else {
                "rel_error": float(relative_frobenius(p.C_target, p.C_as_built)),
                "nmse": float(nmse(p.C_target, p.C_as_built))}
        points.append({
            "name": p.name, "position_mm": p.position, "source": "designed" if target else "explicit",
            "cell": {"family": "spinodoid", "rho": d.rho, "theta_deg": list(d.theta), "R": d.R,
                     "wavelength_cells": d.wavelength, "wavelength_mm": d.wavelength * spec.cell_size,
                     "n_waves": d.n_waves, "wave_seed": p.wave_seed, "density_voxels": p.density_cell,
                     "percolates_in_directions": p.connectivity.winding_rank,
                     "thinner_than_printer_minimum": p.thin_fraction},
            "stiffness": {"unit": "GPa", "target": to_21(p.C_target) * E if target else None,
                          "designed": to_21(p.C_cell) * E,
                          "as_built": None if p.C_as_built is None else to_21(p.C_as_built) * E},
            "errors": errors,
            "note": None if p.C_as_built is not None else "the part holds no solid at this point",
        })
    solid = result.solid
    doc = {
        "format": REPORT_FORMAT,
        "format_version": BUILD_REPORT_VERSION,
        "schema": "docs/report.md",
        "family": "spinodoid",
        "spec": spec.source,
        "units": {"length": "mm", "stiffness": "GPa", "E_GPa": E, "nu": spec.material.nu},
        "definitions": {k: ERROR_DEFINITIONS[k] for k in ("as_built_vs_cell", "design_vs_target", "as_built_vs_target",
                                                          "design_mean_vs_target", "cell_scatter")
                        if k in ERROR_DEFINITIONS},
        "settings": {"cell_size_mm": spec.cell_size, "zeta": spec.zeta, "seed": spec.seed,
                     "fe_resolution": result.resolution,
                     "voxel_size_mm": None if solid is None else solid.voxel_size},
        "control_points": points,
        "mesh": None if solid is None else {**solid.facts.to_dict(), "islands_removed": solid.removed_shells,
                                            "islands_removed_mm3": solid.removed_volume},
        "outputs": {str(k): {"path": str(v)} for k, v in (files or {}).items()},
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
    }
    return jsonable(doc)


def write_spinodoid_report(result, folder, progress=None) -> dict:
    """Write ``report.json``, ``render.png`` and ``surfaces_<point>.png`` into ``folder``.

    Parameters
    ----------
    result : graded.spinodoid.part.SpinodoidBuild
    folder : path-like
    progress : callable, optional
        ``progress(done, total, message)`` before each figure and before ``report.json``.

    Returns
    -------
    dict
        Key -> path of every file written.
    """
    from ..plot import plot_elastic_surfaces

    out = Path(folder)
    doc = build_spinodoid_report(result, result.files)
    written: dict[str, Path] = {}
    solid = result.solid
    tell = FileSteps(progress, 2 + len(result.points))
    if solid is not None and len(solid.mesh.faces) <= MAX_RENDER_TRIANGLES:
        tell("render.png")
        written["render"] = render_mesh(solid.mesh.vertices, solid.mesh.faces, out / "render.png",
                                        title=f"{result.title}, {len(solid.mesh.faces):,} triangles")
    E = result.spec.material.E
    for entry, p in zip(doc["control_points"], result.points):
        surfaces = {} if p.C_target is None else {"target": p.C_target * E}
        surfaces["designed cell"] = p.C_cell * E
        if p.C_as_built is not None:
            surfaces["as built"] = p.C_as_built * E
        path = out / f"surfaces_{slug(p.name)}.png"
        tell(path.name)
        title = p.name if p.error_vs_cell is None else f"{p.name}: as built vs own cell: {p.error_vs_cell:.1%}"
        plot_elastic_surfaces(surfaces, path, unit="GPa", title=title)
        entry["surface_png"] = path.name
        written[f"surfaces_{slug(p.name)}"] = path
    doc["figures"] = {k: v.name for k, v in written.items()}
    path = out / "report.json"
    tell(path.name)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=lambda o: np.asarray(o).tolist()) + "\n")
    written["report"] = path
    return written

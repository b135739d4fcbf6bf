"""``graded build spec.yaml``: build the graded part of a spec and write its files."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .options import ProgressBar, echo_json, handle_errors, is_quiet, json_option, scheduler_option

__all__ = ["build"]


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


@click.command("build")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--outdir", type=click.Path(path_type=Path), default=None,
              help="Output folder, replaced as a whole (default: outputs.directory of the spec, relative to it).")
@click.option("--no-progress", is_flag=True, help="No progress bar or progress lines.")
@scheduler_option("the meshing tiles of a big part (by default a LocalCluster; see docs/cluster.md)")
@json_option
@handle_errors
def build(spec: Path, outdir: Path | None, no_progress: bool, scheduler: str | None, as_json: bool) -> None:
    """Build the graded part of SPEC (a spec.yaml): cells, lattice, solid, STL / 3MF and report.

    Parts above the tiling threshold (graded.mesh.tiles.TILED_ABOVE struts) are meshed in
    spatial tiles, in parallel, and streamed to disk as one watertight body; --scheduler runs
    the tiles on a Dask cluster (docs/cluster.md).
    """
    t0 = time.perf_counter()
    from graded.build import build as run_build
    from graded.spec import load_spec

    s = load_spec(spec)
    out = outdir if outdir is not None else s.resolve(s.outputs.directory)
    def on_cluster(info: dict) -> None:
        if not as_json and not is_quiet():
            click.echo(f"Dask scheduler {info['scheduler']} with {info['workers']} workers; "
                       f"dashboard {info['dashboard']}", err=True)

    with ProgressBar("build", enabled=not no_progress and not as_json) as bar:
        result = run_build(s, progress=bar, output_dir=out,
                           output_field="--outdir" if outdir is not None else "outputs.directory",
                           scheduler=scheduler, on_cluster=on_cluster)
    family = getattr(result, "family", "truss")
    fields, lines = {"truss": _truss_summary, "spinodoid": _spinodoid_summary, "voxel": _voxel_summary}[family](result)
    summary = {"spec": str(spec), "output_dir": str(out), **fields,
               "files": {k: str(v) for k, v in result.files.items()},
               "seconds": round(time.perf_counter() - t0, 3)}
    if as_json:
        echo_json(summary)
        return
    if is_quiet():
        return
    for line in lines(summary["seconds"]):
        click.echo(line)
    for key, path in summary["files"].items():
        click.echo(f"  {key}: {path}")


def _truss_summary(result):
    """The summary fields of a lattice build, and its printed lines (a function of the seconds)."""
    g = result.graph
    points = [{"name": c.name, "source": c.source, "topology": c.cell.topology_string,
               "design_error": c.design_error, "as_built_vs_target": ab.error_vs_target,
               "as_built_vs_cell": ab.error_vs_cell, "note": ab.note} for c, ab in zip(result.cells, result.as_built)]
    d = [float(g.diameters.min()), float(g.diameters.max())]
    fields = {"nodes": g.n_nodes, "struts": g.n_struts, "diameter_mm": d, "control_points": points}

    def lines(seconds: float) -> list[str]:
        out = [f"{g.n_nodes} nodes, {g.n_struts} struts, diameters {d[0]:.3g}-{d[1]:.3g} mm ({seconds:.1f} s)",
               "relative error (Frobenius)   design vs target   as built vs target   as built vs own cell"]
        out += [f"  {p['name']:<26} {_pct(p['design_error']):>16}   {_pct(p['as_built_vs_target']):>18}   "
                f"{_pct(p['as_built_vs_cell']):>20}" + (f"   ({p['note']})" if p["note"] else "") for p in points]
        return out

    return fields, lines


def _spinodoid_summary(result):
    """The summary fields of a spinodoid build, and its printed lines."""
    solid = result.solid
    points = [{"name": p.name, "rho": p.design.rho, "theta_deg": list(p.design.theta),
               "design_vs_target": p.design_error, "as_built_vs_cell": p.error_vs_cell} for p in result.points]
    designed = any(p["design_vs_target"] is not None for p in points)
    fields = {"family": "spinodoid", "triangles": None if solid is None else int(len(solid.mesh.faces)),
              "relative_density": None if solid is None else solid.facts.relative_density,
              "control_points": points}

    def lines(seconds: float) -> list[str]:
        out = [] if solid is None else [f"spinodoid part: {fields['triangles']:,} triangles, relative density "
                                        f"{fields['relative_density']:.3f} ({seconds:.1f} s)"]
        if designed:
            out.append("relative error (Frobenius)   design vs target   as built vs own cell")
            out += [f"  {p['name']:<26} {_pct(p['design_vs_target']):>16} {_pct(p['as_built_vs_cell']):>22}"
                    for p in points]
        else:
            out.append("relative error (Frobenius)   as built vs own cell")
            out += [f"  {p['name']:<26} {_pct(p['as_built_vs_cell']):>20}" for p in points]
        return out

    return fields, lines


def _voxel_summary(result):
    """The summary fields of a voxel-cell build, and its printed lines."""
    solid = result.solid
    points = [{"name": p.name, "volume_fraction": float(p.solid.mean()), "paper_error": p.paper_error,
               "design_vs_target": p.design_error, "target_non_cubic": p.non_cubic,
               "as_built_vs_cell": p.error_vs_cell} for p in result.points]
    fields = {"family": "voxel", "triangles": None if solid is None else int(len(solid.mesh.faces)),
              "relative_density": None if solid is None else solid.facts.relative_density,
              "control_points": points}

    def lines(seconds: float) -> list[str]:
        out = [] if solid is None else [f"voxel-cell part: {fields['triangles']:,} triangles, relative density "
                                        f"{fields['relative_density']:.3f} ({seconds:.1f} s)"]
        out.append("error                        Eq. 4 (cubic)   design vs target (Frobenius)   as built vs own cell")
        out += [f"  {p['name']:<26} {_pct(p['paper_error']):>13}   {_pct(p['design_vs_target']):>28}   "
                f"{_pct(p['as_built_vs_cell']):>20}" for p in points]
        return out

    return fields, lines

"""``graded build spec.yaml``: grade a lattice through a body and write the beam graph."""

from __future__ import annotations

from pathlib import Path

import click

from .options import ProgressBar, echo_json, handle_errors, json_option

__all__ = ["build"]


@click.command("build")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--outdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory (default: outputs.directory of the spec, relative to it).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
@handle_errors
def build(spec: Path, outdir: Path | None, no_progress: bool, as_json: bool) -> None:
    """Build the graded lattice of SPEC (a spec.yaml) and write its beam graph."""
    from graded.build import build as run_build
    from graded.spec import load_spec

    s = load_spec(spec)
    out = outdir if outdir is not None else s.resolve(s.outputs.directory)
    with ProgressBar("grading", enabled=not no_progress and not as_json) as bar:
        graph = run_build(s, progress=bar, output_dir=out)
    summary = {
        "spec": str(spec),
        "output_dir": str(out),
        "nodes": graph.n_nodes,
        "struts": graph.n_struts,
        "diameter_mm": [float(graph.diameters.min()), float(graph.diameters.max())],
        "files": graph.meta.get("outputs", {}),
        "seconds": round(graph.meta["timings"]["total_s"], 3),
    }
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"{graph.n_nodes} nodes, {graph.n_struts} struts, diameters "
                   f"{summary['diameter_mm'][0]:.3g}-{summary['diameter_mm'][1]:.3g} mm "
                   f"({summary['seconds']:.1f} s)")
        for key, path in summary["files"].items():
            click.echo(f"  {key}: {path}")

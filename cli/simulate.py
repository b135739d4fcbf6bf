"""``graded simulate spec.yaml``: load cases on the built lattice (beam FE) and the homogenized continuum."""

from __future__ import annotations

from pathlib import Path

import click

from .options import ProgressBar, echo_json, handle_errors, json_option

__all__ = ["simulate"]


@click.command("simulate")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--outdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory (default: outputs.directory of the spec, relative to it).")
@click.option("--no-continuum", is_flag=True, help="Only the lattice beam FE, no homogenized continuum model.")
@click.option("--mesh-size", type=float, default=None,
              help="Continuum mesh box edge in mm (default: one built cell edge).")
@click.option("--order", type=click.Choice(["1", "2"]), default="2", show_default=True,
              help="Continuum displacement interpolation (P1 or P2 tetrahedra).")
@click.option("--solver", type=click.Choice(["auto", "direct", "amg"]), default="auto", show_default=True,
              help="Sparse direct (SuperLU) or AMG-preconditioned CG; auto picks by size.")
@click.option("--no-png", is_flag=True, help="No PNG renders.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
@handle_errors
def simulate(spec: Path, outdir: Path | None, no_continuum: bool, mesh_size: float | None, order: str, solver: str,
             no_png: bool, no_progress: bool, as_json: bool) -> None:
    """Simulate the load cases (loads: section) of SPEC on the built part and write VTU, PNG and report.json."""
    from graded.simulate import simulate as run_simulation
    from graded.simulate import write_simulation
    from graded.spec import load_spec

    s = load_spec(spec)
    if s.loads is None:
        raise click.UsageError("loads: is missing from the spec; add a loads: section with yield_strength and cases")
    out = outdir if outdir is not None else s.resolve(s.outputs.directory)
    with ProgressBar("simulating", enabled=not no_progress and not as_json) as bar:
        sim = run_simulation(s, progress=bar, continuum=not no_continuum, mesh_size=mesh_size, order=int(order),
                             solver=solver)
    files = write_simulation(sim, out, png=not no_png)
    summary = {"spec": str(spec), "output_dir": str(out), **sim.summary(),
               "files": {k: str(v) for k, v in files.items()}}
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{sim.graph.n_struts} struts, {sim.graph.n_nodes} nodes ({sim.info['seconds']:.1f} s)")
    for c in sim.cases:
        lat = c.lattice
        line = (f"  {c.name}: lattice K = {lat['apparent_stiffness_N_per_mm'] or float('nan'):.4g} N/mm, "
                f"max |u| = {lat['max_displacement_mm']:.3g} mm, max stress {lat['max_von_mises_MPa']:.3g} MPa, "
                f"min safety factor {lat['min_safety_factor']:.3g}")
        if c.continuum is not None:
            Kc = c.continuum["apparent_stiffness_N_per_mm"]
            d = c.comparison["stiffness_difference"]
            line += f"; continuum K = {Kc or float('nan'):.4g} N/mm"
            if d is not None:
                line += f" ({100 * d:.1f} % off)"
        click.echo(line)
    for key, path in files.items():
        click.echo(f"  {key}: {path}")

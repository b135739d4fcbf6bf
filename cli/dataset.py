"""``graded dataset``: generate (or resume) an FE dataset of random lattice designs."""

from __future__ import annotations

import click

from graded.validation import ValidationError, fail

from .options import ProgressBar, echo_json, handle_errors, json_option

__all__ = ["dataset"]


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--family", type=click.Choice(["truss", "spinodoid", "voxel"]), default="truss", show_default=True,
              help="Cell family: truss lattices (SI Table S1), spinodoids (voxel FE at 32^3) or free-form "
                   "cubic voxel cells (C11, C12, C44, volume fraction).")
@click.option("--n", "n", type=int, default=200_000, show_default=True, help="Number of samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the whole dataset.")
@click.option("--chunk-size", type=int, default=None,
              help="Samples per chunk file (unit of parallel work and of resume) "
                   "[default: 2000 truss, 40 spinodoid, 200 voxel].")
@click.option("--workers", type=int, default=None,
              help="Worker processes, also of --scheduler local [default: all cores].")
@click.option("--scheduler", default=None, metavar="ADDRESS|local",
              help="Run the chunks as Dask tasks: 'local' starts a LocalCluster, an address "
                   "(tcp://HOST:8786) uses a running cluster; OUT must be on storage every worker sees.")
@click.option("--device", default=None, metavar="cpu|cuda",
              help="Where the voxel FE of spinodoid and voxel cells runs (cuda: a GPU; one --workers per GPU) "
                   "[default: cpu].")
@click.option("--resolution", type=int, default=None,
              help="Voxels per cell edge of --family voxel (even, >= 8) [default: 32].")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
@handle_errors
def dataset(out: str, family: str, n: int, seed: int, chunk_size: int | None, workers: int | None,
            scheduler: str | None, device: str | None, resolution: int | None, no_progress: bool,
            as_json: bool) -> None:
    """Sample N designs and label them by FE into directory OUT.

    Trusses (--family truss): designs from SI Table S1, labelled by periodic beam FE.

    Every sample gets C_ort (U-stretched cell), C_hat (V R_I U cell) and
    C = Bond(R_II) C_hat. The data depend only on --seed and --chunk-size. Chunks are
    written atomically: if a run is interrupted, the same command resumes it. The full
    training and test sets are:

    \b
        graded dataset datasets/train --n 200000 --seed 0 --chunk-size 2000
        graded dataset datasets/test --n 5000 --seed 1 --chunk-size 1000

    Spinodoids (--family spinodoid): (rho, theta) designs, one cell each at 32^3 voxels,
    labelled by periodic voxel FE (1.5-10 CPU seconds per cell); the shipped models were
    trained on

    \b
        graded dataset datasets/spinodoid-train --family spinodoid --n 1600 --seed 0
        graded dataset datasets/spinodoid-test --family spinodoid --n 200 --seed 1

    Voxel cells (--family voxel): free-form cubic-symmetric cells (graded.voxelcell), one
    per sample at --resolution voxels per edge, stored as packed octants and labelled by two
    periodic voxel-FE load cases (C11, C12, C44, volume fraction; about 0.5 CPU seconds per
    cell at 32^3); for example

    \b
        graded dataset datasets/voxel-train --family voxel --n 20000 --seed 0
        graded dataset datasets/voxel-test --family voxel --n 1000 --seed 1

    With --scheduler the same chunks (bit for bit) are computed on a Dask cluster;
    see docs/cluster.md.
    """
    from graded.inverse.dataset import generate_dataset
    from graded.inverse.spinodoid.dataset import generate_spinodoid_dataset
    from graded.inverse.voxelcell.dataset import DEFAULT_CHUNK_SIZE, RESOLUTION, generate_voxel_dataset, voxel_bounds

    if chunk_size is None:
        chunk_size = {"truss": 2000, "spinodoid": 40, "voxel": DEFAULT_CHUNK_SIZE}[family]
    if resolution is not None and family != "voxel":
        fail("--resolution", f"applies to --family voxel only (not {family})",
             "drop --resolution")
    if family == "truss":
        if device is not None:
            fail("--device", "applies to --family spinodoid and voxel only (truss labels are beam FE on the CPU)",
                 "drop --device")
        run = generate_dataset
    elif family == "spinodoid":
        def run(*args, **kwargs):
            return generate_spinodoid_dataset(*args, device=device, **kwargs)
    else:
        try:
            bounds = voxel_bounds(resolution=RESOLUTION if resolution is None else resolution)
        except ValidationError as exc:
            raise ValidationError("--resolution", exc.problem, exc.hint) from None

        def run(*args, **kwargs):
            return generate_voxel_dataset(*args, bounds=bounds, device=device, **kwargs)

    def on_cluster(info: dict) -> None:
        click.echo(f"Dask scheduler {info['scheduler']} with {info['workers']} workers; "
                   f"dashboard {info['dashboard']}", err=True)

    with ProgressBar("FE labels", enabled=not no_progress) as bar:
        summary = run(out, n=n, seed=seed, chunk_size=chunk_size, workers=workers, progress=bar,
                      scheduler=scheduler, on_cluster=on_cluster)
    result = {
        "path": summary.path,
        "n_samples": summary.n_samples,
        "chunks": summary.n_chunks,
        "computed_chunks": summary.computed,
        "skipped_chunks": summary.skipped,
        "seconds": round(summary.seconds, 3),
        "samples_per_second": round(summary.samples_per_second, 2) if summary.computed_samples else None,
        "workers": summary.workers,
        "scheduler": summary.scheduler,
        "dashboard": summary.dashboard,
    }
    if as_json:
        echo_json(result)
    else:
        rate = f", {result['samples_per_second']} samples/s" if summary.computed_samples else ""
        click.echo(f"{summary.path}: {summary.n_samples} samples in {summary.n_chunks} chunks "
                   f"({summary.computed} computed, {summary.skipped} already present; "
                   f"{summary.seconds:.1f} s{rate})")

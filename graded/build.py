"""``graded.build``: from a spec to a graded lattice graph, optionally with its files."""

from __future__ import annotations

from pathlib import Path

from .graph import LatticeGraph
from .spec import Spec, load_spec, parse_spec

__all__ = ["build", "write_outputs"]


def build(spec_or_path, progress=None, *, output_dir=None, write: bool = False) -> LatticeGraph:
    """Build the graded strut graph of a spec (SI section 5, DESIGN §3).

    Parameters
    ----------
    spec_or_path : Spec, dict, or path to spec.yaml
    progress : callable, optional
        ``progress(done, total, message)``.
    output_dir : path-like, optional
        Write the output files there (implies ``write``). Relative paths are taken as given.
    write : bool
        Write the files into the spec's ``outputs.directory`` (relative to the spec file).

    Returns
    -------
    LatticeGraph
        With ``meta["outputs"]`` listing the written files when any were written.

    Notes
    -----
    Nothing is written unless the whole graph was built; the files are staged in a
    temporary directory and moved into place together (see
    :mod:`graded.grading.outputs`).
    """
    from .grading.pipeline import build_graph

    if isinstance(spec_or_path, (str, Path)):
        spec = load_spec(spec_or_path)
    elif isinstance(spec_or_path, dict):
        spec = parse_spec(spec_or_path)
    elif isinstance(spec_or_path, Spec):
        spec = spec_or_path
    else:
        raise TypeError("spec_or_path: give a Spec, a dict or the path of a spec.yaml")
    graph = build_graph(spec, progress=progress)
    if output_dir is not None or write:
        out = Path(output_dir) if output_dir is not None else spec.resolve(spec.outputs.directory)
        graph.meta["outputs"] = {k: str(v) for k, v in write_outputs(spec, graph, out, progress=progress).items()}
    return graph


def write_outputs(spec: Spec, graph: LatticeGraph, out_dir, progress=None) -> dict:
    """Write every file the spec asks for into ``out_dir``, all or nothing.

    The solid is meshed first (the slow, fallible step), then the part files, the report
    and the graph files are written into a staging directory next to ``out_dir`` and
    moved in together, so a failure leaves what was there untouched.

    Returns
    -------
    dict
        Output key -> final path (report figures included).
    """
    from .grading.outputs import GRAPH_FILES, staged_directory, write_graph_files
    from .grading.pipeline import make_body
    from .io.printable import SOLID_FILES, write_solid_outputs

    files = list(dict.fromkeys(spec.outputs.files))
    solid = [f for f in files if f in SOLID_FILES]
    graph_keys = [f for f in files if f in GRAPH_FILES]
    title = f"{Path(spec.source).name if spec.source else 'graded lattice'}: {graph.n_struts} struts"
    body = make_body(spec).mesh if solid else None
    with staged_directory(out_dir) as tmp:
        written = {}
        if solid:
            written.update(write_solid_outputs(tmp, graph, solid, body=body, progress=progress))
        written.update(write_graph_files(tmp, graph, graph_keys, title=title))
    return {k: Path(out_dir) / Path(p).relative_to(tmp) for k, p in written.items()}

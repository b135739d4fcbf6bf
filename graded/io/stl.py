"""Binary STL (millimetres): the format every slicer reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path, check_suffix

__all__ = ["write_stl", "read_stl", "stl_records", "StlStream", "STL_DTYPE"]

#: One binary-STL record: facet normal, three vertices (float32, little endian), attribute word.
STL_DTYPE = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])


def _header(header: str) -> bytes:
    head = header.encode("ascii", "replace")[:80]
    if head.lower().startswith(b"solid"):
        head = b"binary " + head[:73]
    return head.ljust(80, b" ")


def stl_records(tri: np.ndarray) -> np.ndarray:
    """Binary-STL records (T,) of :data:`STL_DTYPE` from triangle corners (T, 3, 3) mm.

    Normals are computed from the corners in the precision given (zero for degenerate triangles).
    """
    tri = np.asarray(tri)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.divide(n, norm, out=np.zeros_like(n), where=norm > 0)
    rec = np.zeros(len(tri), dtype=STL_DTYPE)
    rec["normal"] = n
    rec["vertices"] = tri
    return rec


class StlStream:
    """A binary STL written block by block, its triangle count patched in at the end.

    Use as a context manager: ``with StlStream(path) as out: out.write_records(rec)``. The
    file appears (atomically, under its final name) only when the block ends without an
    error; memory is one block.
    """

    def __init__(self, path, *, header: str = "graded lattice, mm"):
        self.path = check_suffix(path, (".stl",))
        self.header = header
        self.count = 0
        self._ctx = None
        self._fh = None

    def __enter__(self) -> StlStream:
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self._fh = open(tmp, "wb")
        self._fh.write(_header(self.header))
        self._fh.write(np.uint32(0).tobytes())
        return self

    def write_records(self, rec: np.ndarray) -> None:
        """Append records of :data:`STL_DTYPE`."""
        rec = np.ascontiguousarray(rec, dtype=STL_DTYPE)
        if self.count + len(rec) > np.iinfo(np.uint32).max:
            raise ValueError(f"{self.path}: a binary STL holds at most 2^32 - 1 triangles")
        self._fh.write(rec.tobytes())
        self.count += len(rec)

    def write_triangles(self, tri: np.ndarray) -> None:
        """Append triangles given by their corners (T, 3, 3) mm."""
        self.write_records(stl_records(np.asarray(tri, dtype=np.float64)))

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._fh.seek(80)
                self._fh.write(np.uint32(self.count).tobytes())
        finally:
            self._fh.close()
        self._ctx.__exit__(exc_type, exc, tb)


def write_stl(path, vertices: np.ndarray, triangles: np.ndarray, *, header: str = "graded lattice, mm") -> Path:
    """Write a binary STL atomically.

    Parameters
    ----------
    path : str or Path, ending in ``.stl``
    vertices : (V, 3) float, mm
    triangles : (T, 3) int, counter-clockwise seen from outside
    header : str, at most 80 ASCII characters (must not start with "solid")

    Returns
    -------
    Path written. Coordinates are stored as float32 (relative precision 6e-8).
    """
    path = check_suffix(path, (".stl",))
    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(triangles, dtype=np.int64)
    tri = v[t]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.divide(n, norm, out=np.zeros_like(n), where=norm > 0)
    rec = np.zeros(len(t), dtype=STL_DTYPE)
    rec["normal"] = n
    rec["vertices"] = tri
    head = header.encode("ascii", "replace")[:80]
    if head.lower().startswith(b"solid"):
        head = b"binary " + head[:73]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(head.ljust(80, b" "))
            fh.write(np.uint32(len(t)).tobytes())
            fh.write(rec.tobytes())
    return path


def read_stl(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a binary STL: ``(triangle_vertices (T, 3, 3) float64, normals (T, 3) float64)``."""
    data = Path(path).read_bytes()
    count = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
    if len(data) != 84 + count * STL_DTYPE.itemsize:
        raise ValueError(f"{path}: not a binary STL ({len(data)} bytes for {count} triangles)")
    rec = np.frombuffer(data, dtype=STL_DTYPE, count=count, offset=84)
    return rec["vertices"].astype(np.float64), rec["normal"].astype(np.float64)

"""Regenerate ``implant_stem.stl``: an implant-like body for the bone example (mm).

A tapered stem with elliptical cross-sections, 60 mm long: 24 x 18 mm at the distal end
(z = 0) widening to 36 x 24 mm at the proximal end (z = 60), the convex hull of the two
end ellipses (64 segments each), axis at x = 18, y = 12. Run from the repository root:

    python examples/data/make_implant_stem.py
"""

from pathlib import Path

import manifold3d as mf
import numpy as np

from graded.io import write_stl
from graded.mesh import to_trimesh


def stem(n: int = 64) -> mf.Manifold:
    phi = 2 * np.pi * np.arange(n) / n
    rings = []
    for z, (a, b) in ((0.0, (12.0, 9.0)), (60.0, (18.0, 12.0))):
        rings.append(np.stack([a * np.cos(phi), b * np.sin(phi), np.full(n, z)], axis=1))
    return mf.Manifold.hull_points(np.concatenate(rings)).translate([18.0, 12.0, 0.0])


if __name__ == "__main__":
    mesh = to_trimesh(stem())
    out = write_stl(Path(__file__).with_name("implant_stem.stl"), mesh.vertices, mesh.faces,
                    header="graded example: implant stem, mm")
    print(f"{out}: {len(mesh.faces)} triangles, volume {mesh.volume:.1f} mm^3, watertight {mesh.is_watertight}")

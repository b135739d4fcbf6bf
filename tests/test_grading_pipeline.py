"""The build pipeline end to end: degenerate control points."""

import pytest

from graded import build
from graded.validation import ValidationError


def test_point_whose_own_cell_is_not_printable_is_refused_with_the_cell_size_that_prints():
    # the second point's cell has 0.148 mm struts at 6 mm cells, below the 0.15 mm printer
    # minimum: building it would drop the point's own struts silently; the build refuses and
    # names the cell size at which the same cell prints
    spec = {
        "body": {"box": {"size": [36, 12, 12]}},
        "cell_size": 6.0,
        "control_points": [
            {"position": [3, 6, 6], "cell": {"topology": "1x7+1x2+2x5", "rho": 0.08}},
            {"position": [33, 6, 6], "cell": {"topology": "2x5+2x2+1x1", "rho": 0.05}},
        ],
        "min_strut_diameter": 0.15,
    }
    with pytest.raises(ValidationError, match=r"control_points\[1\]: the cell of point 1 .* has struts 0.148 mm thick "
                       r".*; use cell_size >= 6.08 mm"):
        build(spec)
    spec["cell_size"] = 6.1
    result = build(spec)
    assert all(ab.C is not None for ab in result.as_built)

"""Progress of long work: one ``progress(done, total, message)`` bar over several stages.

Library functions take a ``progress`` callback and never print; the CLI turns it into a bar
or log lines (:class:`cli.options.ProgressBar`). A command made of stages (design, grading,
meshing; or building, the continuum, the load cases) maps each stage's own ``(done, total)``
onto its share of one bar, so the bar never runs backwards.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "StageProgress", "within"]

#: ``progress(done, total, message)``.
Progress = Callable[[int, int, str], None]


class StageProgress:
    """Maps each stage's own ``(done, total)`` onto one bar of ``sum(STAGES.values())`` steps."""

    def __init__(self, progress: Progress | None, stages: dict):
        self.progress = progress
        self.stages = stages
        self.total = sum(stages.values())
        self.start = {}
        acc = 0
        for name, share in stages.items():
            self.start[name] = acc
            acc += share

    def __call__(self, name: str) -> Progress | None:
        if self.progress is None:
            return None
        base, share = self.start[name], self.stages[name]

        def report(done: int, total: int, message: str = "") -> None:
            frac = min(max(done / total, 0.0), 1.0) if total else 0.0
            self.progress(base + int(round(share * frac)), self.total, message)

        return report

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.total, self.total, "done")


def within(progress: Progress, k: int, n: int) -> Progress:
    """The ``progress`` of step ``k`` of ``n``: its own ``(done, total)`` mapped inside that step."""

    def report(done: int, total: int, message: str = "") -> None:
        frac = min(max(done / total, 0.0), 1.0) if total else 0.0
        progress(int(round(100 * (k + frac))), 100 * n, message)

    return report

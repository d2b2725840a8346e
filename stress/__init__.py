"""Stress harnesses (issue 15): hostile inputs now; kills, tampering, concurrency to follow.

``python -m stress [--quick] [--only NAME]`` runs the sections of `SECTIONS` (name ->
``run(quick) -> dict of counts``), prints their counts, writes ``build/stress/results.json``
and, for a full run, the section's table in ``docs/stress.md``. A new harness is a module
with a ``run(quick: bool) -> dict[str, int]`` function and one line in `SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable

from stress import fuzz, hostile

Counts = dict[str, int]

#: name -> run(quick) -> counts. Each section documents its counts in its module docstring.
SECTIONS: dict[str, Callable[[bool], Counts]] = {
    "hostile": hostile.run,
    "fuzz": fuzz.run,
}

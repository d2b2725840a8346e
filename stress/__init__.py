"""Stress harnesses (issue 15): `python -m stress [--quick] [--only NAME]`.

Each section is a module with ``run(quick: bool) -> dict`` of counts, listed once in
`SECTIONS`: ``hostile`` (hostile media, recipes and policies fed to the CLI), ``fuzz``
(hypothesis over the loaders and parsers), ``kill`` (SIGKILL at every durable write and at
random moments), ``tamper`` (random changes to every file of a case and its report) and
``concurrent`` (writers side by side). ``python -m stress`` prints their counts, writes
``build/stress/results.json`` and, for a full run, the section's table in ``docs/stress.md``.
A new harness is one module and one line in `SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stress import concurrent, fuzz, hostile, kill, tamper

Counts = dict[str, Any]

#: name -> run(quick) -> counts. Each section documents its counts in its module docstring.
SECTIONS: dict[str, Callable[[bool], Counts]] = {
    "hostile": hostile.run,
    "fuzz": fuzz.run,
    "kill": kill.run,
    "tamper": tamper.run,
    "concurrent": concurrent.run,
}

"""Numbered checks and their verdicts: the machinery `forensic verify` shares for cases
(`forensic.verify`) and reports (`forensic.report.check`).

A verifier is a list of named checks, run in order by `run_checks`. Each check gets its
`Check` record to fill in (``detail``, ``notes``) and ends in one of three ways:

* it returns: the check passed (unless it marked itself `FAIL`, which it may do to keep its
  detail and notes and still let the later checks run);
* it raises `CheckFailed` (or any `ForensicError`): the check failed, with that one sentence
  as its detail;
* it never ran: an earlier *blocking* check failed (one whose failure leaves the later checks
  meaningless, such as an unreadable journal). It is reported as skipped, never as passed.

A verdict (`CheckResults`) is ok when every check passed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from forensic.errors import ForensicError

PASS, FAIL, SKIP = "ok", "FAILED", "skipped"
#: The detail of a check that did not run because an earlier, blocking check failed.
NOT_RUN = "not run: an earlier check failed"


@dataclass
class Check:
    """One numbered check and its outcome (a verdict line)."""

    number: int
    name: str
    status: str = SKIP
    detail: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == PASS

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "notes": self.notes,
        }


class CheckFailed(Exception):
    """Ends one check with a failure sentence."""


#: A check: fills in its `Check`; raises `CheckFailed` or `ForensicError` to fail.
CheckFn = Callable[[Check], None]


def run_checks(
    checks: Sequence[tuple[str, CheckFn]],
    *,
    blocking: Collection[int],
    progress: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Run ``checks`` (name, function) in order, numbered from 1, and return their records.

    A failure of a check whose number is in ``blocking`` marks every later check as not run
    (`SKIP`). Never raises for a failing check: `CheckFailed` and `ForensicError` become `FAIL`
    with their message as the detail. ``progress`` sees each check once it has its outcome.
    """
    out: list[Check] = []
    blocked = False
    for number, (name, fn) in enumerate(checks, start=1):
        check = Check(number, name)
        out.append(check)
        if blocked:
            check.detail = NOT_RUN
            if progress is not None:
                progress(check)
            continue
        try:
            fn(check)
            if check.status != FAIL:
                check.status = PASS
        except CheckFailed as failure:
            check.status, check.detail = FAIL, str(failure)
        except ForensicError as exc:
            check.status, check.detail = FAIL, exc.message
        blocked = check.status == FAIL and number in blocking
        if progress is not None:
            progress(check)
    return out


class CheckResults:
    """What every verdict made of numbered checks offers; subclasses (dataclasses) hold the
    ``checks`` field."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        """Every check passed (a skipped check is not a pass)."""
        return all(c.ok for c in self.checks)

    @property
    def first_failure(self) -> Check | None:
        """The first failed check, or None."""
        return next((c for c in self.checks if c.status == FAIL), None)


__all__ = [
    "FAIL",
    "NOT_RUN",
    "PASS",
    "SKIP",
    "Check",
    "CheckFailed",
    "CheckFn",
    "CheckResults",
    "run_checks",
]

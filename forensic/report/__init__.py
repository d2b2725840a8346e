"""The signed PDF chain-of-custody report: issue, approve and verify.

* `issue` -- `issue_report` verifies the case, builds, signs, stores, journals and writes a
  report; `approve_report` adds a second examiner's signature;
* `check` -- `verify_report` checks a report alone, or against its case, in numbered checks;
* `build` -- the unsigned PDF, a pure function of the journal (sections in `front`, `runs`,
  `back`; shared pieces in `layout`, `context`, `model`);
* `embedded` -- the files a report embeds, derived from the journal;
* `pdf` -- attachments, signatures and their validation (pyHanko);
* `templates` -- the lab's wording and fonts.
"""

from __future__ import annotations

from forensic.report.check import REPORT_CHECKS, TIME_FORMAT, ReportVerdict, verify_report
from forensic.report.embedded import (
    MANIFEST,
    REQUIRED,
    builder_versions,
    collect_attachments,
    key_attachments,
)
from forensic.report.issue import Issued, approve_report, issue_report
from forensic.report.model import Attachment, ReportRequest
from forensic.store import REPORTS_DIR

__all__ = [
    "MANIFEST",
    "REPORTS_DIR",
    "REPORT_CHECKS",
    "REQUIRED",
    "TIME_FORMAT",
    "Attachment",
    "Issued",
    "ReportRequest",
    "ReportVerdict",
    "approve_report",
    "builder_versions",
    "collect_attachments",
    "issue_report",
    "key_attachments",
    "verify_report",
]

"""What a report is made from besides the case: the request (what it covers) and the files
embedded in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from forensic.hashing import sha256_hex
from forensic.timeutil import utc_timestamp


@dataclass(frozen=True)
class ReportRequest:
    """What a report covers: everything a rebuild needs besides the case and templates."""

    number: int  # the report's number in the case: 1 + earlier report.generated entries
    count: int  # journal entries covered (a prefix of the journal)
    exhibits: tuple[str, ...] | None  # None: every exhibit
    signer: str  # fingerprint of the examiner who signs the report
    checkpoint: str  # the signed checkpoint line (DSSE envelope) covering ``count`` entries
    now: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "entries": self.count,
            "exhibits": None if self.exhibits is None else list(self.exhibits),
            "signer": self.signer,
            "checkpoint": self.checkpoint,
            "generated_at": utc_timestamp(self.now),
        }


@dataclass(frozen=True)
class Attachment:
    """A file embedded in the signed PDF: name in the PDF, bytes, what it is."""

    name: str
    data: bytes
    mime: str
    description: str
    #: How the file relates to the report, as PDF/A-3 associated files say it
    #: (``/AFRelationship``): ``Source`` for what the pages are rendered from (journal,
    #: checkpoint, case manifest, policy, report manifest), ``Data`` for the rest.
    relationship: str = "Data"

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)


def attachment_name(case_path: str) -> str:
    """A case file's name as an attachment: flat (``derived/x.png`` -> ``derived_x.png``),
    because poppler's ``pdfdetach -saveall`` cannot save names that contain a folder."""
    return case_path.replace("/", "_")

"""Issuing and approving reports.

`issue_report` verifies the case, builds the PDF from the journal (`forensic.report.build`),
embeds the journal and the files that make the report a complete record
(`forensic.report.embedded`), signs it with the examiner's bound report certificate
(`forensic.report.pdf`), keeps a copy in the case, journals ``report.generated`` and writes the
file, never over an existing one. `approve_report` adds a second examiner's signature to a
report that verifies against its case, and journals ``report.approved``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from pyhanko.sign.timestamps import TimeStamper

from forensic.case import Case
from forensic.cosign import missing_cosignatures
from forensic.errors import CaseError, InputError, KeyFileError, PolicyError, VerificationError
from forensic.fsutil import fsync_dir, write_atomic, write_refused
from forensic.hashing import sha256_hex
from forensic.journal import CHECKPOINT_FILE, JOURNAL_FILE, Entry
from forensic.keys import Signer
from forensic.pki import ReportSigner
from forensic.records import (
    PKI_BIND,
    REPORT_APPROVED,
    REPORT_GENERATED,
    exhibits,
    reports,
)
from forensic.report.build import build_pdf
from forensic.report.check import verify_report
from forensic.report.embedded import builder_versions, collect_attachments, selected_runs
from forensic.report.model import ReportRequest
from forensic.report.pdf import approve, sign_with_attachments
from forensic.report.templates import load_templates
from forensic.store import REPORTS_DIR
from forensic.verify import verify_case


def _bound_certificate(entries: list[Entry], fingerprint: str) -> list[str]:
    return [
        str(e.payload["certificate"])
        for e in entries
        if e.kind == PKI_BIND.name and e.actor == fingerprint
    ]


def _check_signer(
    entries: list[Entry], signer: Signer, report_signer: ReportSigner, case_id: str
) -> None:
    pem = report_signer.certificate.public_bytes(serialization.Encoding.PEM).decode()
    if pem not in _bound_certificate(entries, signer.fingerprint):
        raise KeyFileError(
            f"{signer.name}'s report-signing certificate is not bound to their journal key in "
            f"case {case_id}",
            hint="run `forensic pki bind CASE` first (after `forensic pki init`)",
        )


def _write_new(path: Path, data: bytes) -> None:
    """Write ``path`` only if it does not exist (atomically: a temporary file, then a hard
    link, which fails rather than replace an existing file)."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    except OSError as exc:
        raise write_refused(path.parent, exc, what=f"--out {path}") from None
    tmp = Path(tmp_name)
    try:
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise InputError(
                f"{path} already exists; a report is never overwritten",
                hint="choose another --out name",
            ) from None
        fsync_dir(path.parent)
    finally:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)


def _record(
    case: Case,
    signer: Signer,
    out: Path,
    data: bytes,
    *,
    now: datetime,
    expect: int,
    kind: str,
    payload: dict[str, Any],
) -> Entry:
    """Write ``out`` (a new file only), then journal ``kind`` under the case lock; if the
    case changed since the report was built, or the append fails, ``out`` is removed again,
    so the journal never names a file that was not written."""
    _write_new(out, data)
    try:
        with case.writer(signer) as writer:
            if len(writer.entries) != expect:
                raise CaseError(
                    f"case {case.case_id} changed while the report was being made "
                    f"({len(writer.entries) - expect} new entries); nothing was recorded",
                    hint="run the command again",
                )
            return writer.append(kind, payload, now=now)
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _store_copy(case: Case, data: bytes) -> str:
    folder = case.root / REPORTS_DIR
    folder.mkdir(exist_ok=True)
    rel = f"{REPORTS_DIR}/{sha256_hex(data)}.pdf"
    if not (case.root / rel).exists():
        write_atomic(case.root / rel, data, mode=0o444)
    return rel


def _check_out(out: Path) -> None:
    if out.exists():
        raise InputError(
            f"{out} already exists; a report is never overwritten",
            hint="choose another --out name",
        )
    if not out.parent.is_dir():
        raise InputError(f"--out: the folder {out.parent} does not exist")


@dataclass(frozen=True)
class Issued:
    """A report written (issued or approved) and journaled."""

    path: Path
    number: int
    sha256: str
    stored: str
    pages: int
    entry: Entry


def issue_report(
    case: Case,
    *,
    out: Path,
    signer: Signer,
    report_signer: ReportSigner,
    now: datetime,
    exhibits_wanted: Sequence[str] | None = None,
    templates_dir: Path | None = None,
    timestamper: TimeStamper | None = None,
    tsa_url: str | None = None,
) -> Issued:
    """Verify the case, build, sign, store, journal and write the report."""
    _check_out(out)
    templates = load_templates(templates_dir)
    templates.require_filled()
    # The report embeds the journal and checkpoint as they are on disk: an append that a
    # crash interrupted is finished (and journaled) first (spec §6).
    with case.writer(signer, now=now):
        pass
    verdict = verify_case(case.root)
    if not verdict.ok:
        raise VerificationError(
            f"case {case.case_id} does not verify ({verdict.failure}); no report is issued "
            "for a case that does not verify",
            hint="run `forensic verify CASE` for the details",
        )
    entries = case.entries()
    known = [x.exhibit_id for x in exhibits(entries)]
    chosen: tuple[str, ...] | None = None
    if exhibits_wanted:
        chosen = tuple(dict.fromkeys(x.upper() for x in exhibits_wanted))
        unknown = [x for x in chosen if x not in known]
        if unknown:
            raise InputError(
                f"--exhibit: case {case.case_id} has no exhibit {', '.join(unknown)} "
                f"(exhibits: {', '.join(known) or 'none'})"
            )
    profile = case.profile()
    selected = {r.run_id for r in selected_runs(entries, chosen)}
    missing = [
        m
        for m in missing_cosignatures(entries, required=profile.generative.require_cosign)
        if m["run"] in selected
    ]
    if missing:
        steps = ", ".join(f"{m['run']} step {m['step']} ({m['op']})" for m in missing)
        raise PolicyError(
            f"profile {profile.name!r} requires a second examiner's co-signature on generative "
            f"steps before a report includes them; not co-signed: {steps}",
            hint="a second enrolled examiner runs `forensic cosign CASE RUN.STEP`, or leave the "
            "exhibit out with --exhibit",
        )
    _check_signer(entries, signer, report_signer, case.case_id)
    journal = case.store.read_bytes(JOURNAL_FILE)
    checkpoint = case.store.read_bytes(CHECKPOINT_FILE).rstrip(b"\n").decode("ascii")
    request = ReportRequest(
        number=1 + sum(not r.approval for r in reports(entries)),
        count=len(entries),
        exhibits=chosen,
        signer=signer.fingerprint,
        checkpoint=checkpoint,
        now=now,
    )
    items = collect_attachments(case, entries, request, journal=journal, templates=templates)
    unsigned = build_pdf(case, entries, request, templates, items)
    signed = sign_with_attachments(
        unsigned,
        items,
        report_signer,
        field=f"Examiner-{signer.fingerprint[:16]}",
        reason=f"Chain-of-custody report {request.number} of case {case.case_id}",
        location=templates.lab["name"],
        timestamper=timestamper,
    )
    stored = _store_copy(case, signed)
    cert_pem = report_signer.certificate.public_bytes(serialization.Encoding.PEM)
    entry = _record(
        case,
        signer,
        out,
        signed,
        now=now,
        expect=request.count,
        kind=REPORT_GENERATED.name,
        payload={
            "number": request.number,
            "file": out.name,
            "sha256": sha256_hex(signed),
            "size": len(signed),
            "stored": stored,
            "unsigned": {"sha256": sha256_hex(unsigned), "size": len(unsigned)},
            **{k: v for k, v in request.as_dict().items() if k != "number"},
            "templates": {"sha256": templates.sha256, "files": templates.files},
            "builder": builder_versions(),
            "certificate_sha256": sha256_hex(cert_pem),
            "timestamp_authority": tsa_url,
            "attachments": {a.name: a.sha256 for a in items},
        },
    )
    return Issued(
        out, request.number, sha256_hex(signed), stored, unsigned.count(b"/Type /Page\n"), entry
    )


def approve_report(
    case: Case,
    report: Path,
    *,
    out: Path,
    signer: Signer,
    report_signer: ReportSigner,
    now: datetime,
    templates_dir: Path | None = None,
    timestamper: TimeStamper | None = None,
) -> Issued:
    """A second examiner's approval signature on a verified report of ``case``."""
    _check_out(out)
    verdict = verify_report(report, case_dir=case.root, templates_dir=templates_dir)
    if not verdict.ok:
        raise VerificationError(
            f"{report} does not verify against case {case.case_id} ({verdict.failure}); "
            "it cannot be approved",
            hint=f"run `forensic verify {report} --case CASE` for the details",
        )
    entries = case.entries()
    issued = verdict.issued
    assert issued is not None
    if issued.actor == signer.fingerprint:
        raise InputError(
            "an approval must come from a second examiner, not from the report's own signer",
            hint="the approving examiner uses their own key folder (--key-dir)",
        )
    _check_signer(entries, signer, report_signer, case.case_id)
    data = report.read_bytes()
    if sha256_hex(data) != verdict.sha256:
        raise InputError(f"{report} changed while it was being verified; nothing was signed")
    approved = approve(
        data,
        report_signer,
        field=f"Approval-{signer.fingerprint[:16]}",
        reason=f"Approval of report {issued.payload['number']} of case {case.case_id}",
        location=case.case_id,
        timestamper=timestamper,
    )
    stored = _store_copy(case, approved)
    cert_pem = report_signer.certificate.public_bytes(serialization.Encoding.PEM)
    entry = _record(
        case,
        signer,
        out,
        approved,
        now=now,
        expect=len(entries),
        kind=REPORT_APPROVED.name,
        payload={
            "number": issued.payload["number"],
            "report": issued.hash,
            "from_sha256": sha256_hex(data),
            "file": out.name,
            "sha256": sha256_hex(approved),
            "size": len(approved),
            "stored": stored,
            "certificate_sha256": sha256_hex(cert_pem),
        },
    )
    return Issued(out, int(issued.payload["number"]), sha256_hex(approved), stored, 0, entry)

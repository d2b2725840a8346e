"""Verifying a report: alone, or against its case, in numbered checks.

Alone, a report is checked from its own bytes: the attached journal verifies (signatures,
chain, checkpoint), every PDF signature is intact and made with a certificate the journal binds,
and every attachment is what the journal says. Against its case, the attached journal must be
the start of the case's journal, the case must record this very file, and rebuilding the report
from the case must give the same unsigned bytes. The checks run with `forensic.verdicts`; a
bad report never raises.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from forensic.case import Case, open_case
from forensic.errors import ForensicError, VerificationError
from forensic.fsutil import read_regular
from forensic.hashing import sha256_hex
from forensic.journal import CHECKPOINT_FILE, JOURNAL_FILE, Entry, enrolled_keys, parse_entry
from forensic.policy import TimestampSettings, parse_policy
from forensic.records import (
    PKI_BIND,
    REPORT_APPROVED,
    REPORT_GENERATED,
    REPORT_KINDS,
    StepRecord,
    exhibits,
    read_runs,
    step_entries,
)
from forensic.report.build import build_pdf
from forensic.report.embedded import (
    MANIFEST,
    REQUIRED,
    builder_versions,
    collect_attachments,
    frames_csv,
    key_attachments,
    output_files,
    video_run_files,
)
from forensic.report.model import ReportRequest, attachment_name
from forensic.report.pdf import attachments, check_revisions, check_signatures
from forensic.report.templates import load_templates
from forensic.verdicts import Check, CheckFailed, CheckFn, CheckResults, run_checks
from forensic.verify import verify_case

#: ``generated_at`` in a report's manifest and journal entry.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

REPORT_CHECKS = (
    "the PDF is readable and carries the journal and its manifest",
    "the attached journal verifies on its own",
    "every PDF signature is intact, covers the report and is made with a bound certificate",
    "every attachment matches the journal",
    "the attached journal is the case's journal when the report was issued",
    "rebuilding the report from the case gives the same unsigned PDF",
)


@dataclass
class ReportVerdict(CheckResults):
    """A report's verdict: its checks (`forensic.verdicts.Check`), the PDF signatures found,
    and, checked against a case, the case's record of the report."""

    path: Path
    checks: list[Check] = field(default_factory=list)
    signatures: list[dict[str, Any]] = field(default_factory=list)
    issued: Entry | None = None  # the case's report.generated entry, when a case was given
    sha256: str = ""  # of the bytes that were checked
    #: The case's report.approved entries for this report (when a case was given).
    approvals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failure(self) -> str | None:
        """``check N (name): sentence`` for the first failed check, or None."""
        c = self.first_failure
        return None if c is None else f"check {c.number} ({c.name}): {c.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "report": str(self.path),
            "ok": self.ok,
            "checks": [c.as_dict() for c in self.checks],
            "signatures": self.signatures,
            "approvals": self.approvals,
        }


@dataclass
class _ReportState:
    data: bytes = b""
    files: dict[str, bytes] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    case: Case | None = None


def verify_report(
    path: Path,
    *,
    case_dir: Path | None = None,
    templates_dir: Path | None = None,
    trusted: Sequence[Ed25519PublicKey] = (),
) -> ReportVerdict:
    """Check a report; with ``case_dir``, also against its case. Never raises for a bad
    report (see `ReportVerdict`)."""
    verdict = ReportVerdict(path=path)
    state = _ReportState()
    steps: list[CheckFn] = [
        lambda c: _r_readable(path, state, c),
        lambda c: _r_journal(state, c, trusted),
        lambda c: _r_signatures(state, c, verdict, case_dir),
        lambda c: _r_attachments(state, c),
    ]
    if case_dir is not None:
        steps.append(lambda c: _r_case(state, c, verdict, case_dir))
        steps.append(lambda c: _r_rebuild(state, c, verdict, templates_dir))
    verdict.checks = run_checks(
        list(zip(REPORT_CHECKS[: len(steps)], steps, strict=True)),
        blocking={1, 2, 5},  # no journal, or no case to rebuild from
    )
    verdict.sha256 = sha256_hex(state.data)
    return verdict


#: A report embeds the journal and the case's small files; larger is not one of ours.
MAX_REPORT_BYTES = 1 << 30


def _r_readable(path: Path, state: _ReportState, check: Check) -> None:
    try:  # a regular file only: a FIFO or device given as the report is refused, not read
        state.data = read_regular(path, what="report", max_bytes=MAX_REPORT_BYTES)
    except ForensicError as exc:
        raise CheckFailed(exc.message) from None
    if not state.data.startswith(b"%PDF-"):
        raise CheckFailed(f"{path} is not a PDF file")
    state.files = attachments(state.data, where=str(path))
    missing = [n for n in REQUIRED if n not in state.files]
    if missing:
        raise CheckFailed(f"the PDF lacks the attachments {missing}: it is not a forensic report")
    try:
        state.manifest = json.loads(state.files[MANIFEST])
    except ValueError as exc:
        raise CheckFailed(f"{MANIFEST} is not JSON ({exc})") from None
    if not isinstance(state.manifest, dict):
        raise CheckFailed(f"{MANIFEST} is not a JSON object")
    check.detail = f"{len(state.data):,} bytes, {len(state.files)} attachments"


def _r_journal(state: _ReportState, check: Check, trusted: Sequence[Ed25519PublicKey]) -> None:
    with tempfile.TemporaryDirectory(prefix="forensic-report-") as tmp:
        root = Path(tmp)
        for name in (JOURNAL_FILE, CHECKPOINT_FILE, "case.json", "policy.toml"):
            (root / name).write_bytes(state.files[name])
        sub = verify_case(root, trusted=trusted, journal_only=True)
    if not sub.ok:
        raise CheckFailed(f"the attached journal does not verify: {sub.failure}")
    lines = state.files[JOURNAL_FILE].splitlines()
    state.entries = [parse_entry(line, n) for n, line in enumerate(lines, start=1)]
    if state.manifest.get("entries") != len(state.entries):
        raise CheckFailed(
            f"{MANIFEST} says the report covers {state.manifest.get('entries')} entries; the "
            f"attached journal has {len(state.entries)}"
        )
    check.detail = f"{len(state.entries)} entries, signatures, chain and checkpoint"
    check.notes += [n for c in sub.checks for n in c.notes]


def _bindings(entries: list[Entry]) -> dict[bytes, tuple[str, x509.Certificate]]:
    """Certificate DER -> (examiner fingerprint, CA) for every pki.bind entry."""
    out = {}
    for e in entries:
        if e.kind == PKI_BIND.name:
            try:
                cert = x509.load_pem_x509_certificate(str(e.payload["certificate"]).encode())
                ca = x509.load_pem_x509_certificate(str(e.payload["ca_certificate"]).encode())
            except (KeyError, ValueError):
                raise VerificationError(
                    f"entry {e.seq} (pki.bind) holds no valid certificate"
                ) from None
            out[cert.public_bytes(serialization.Encoding.DER)] = (e.actor, ca)
    return out


def _tsa_settings(state: _ReportState) -> TimestampSettings | None:
    """The ``[timestamps]`` table of the policy attached to the report when it is the policy
    the attached journal's case.open records (check 4 names any other), or None."""
    raw = state.files.get("policy.toml")
    if raw is None or not state.entries:
        return None
    if sha256_hex(raw) != state.entries[0].payload.get("policy", {}).get("sha256"):
        return None
    try:
        return parse_policy(raw, where="the report's policy.toml").timestamps
    except ForensicError:
        return None


def _r_signatures(
    state: _ReportState, check: Check, verdict: ReportVerdict, case_dir: Path | None
) -> None:
    bound = _bindings(state.entries)
    if case_dir is not None:
        # Approvals may come from examiners bound after the report was issued.
        with contextlib.suppress(ForensicError):  # check 5 reports an unreadable case
            bound = {**_bindings(open_case(case_dir).entries()), **bound}
    roots = {ca.public_bytes(serialization.Encoding.DER): ca for _, ca in bound.values()}
    try:
        signed_at = datetime.strptime(str(state.manifest.get("generated_at")), TIME_FORMAT)
    except ValueError:
        raise CheckFailed(f"{MANIFEST} has no valid generated_at") from None
    tsa = _tsa_settings(state)
    sigs = check_signatures(
        state.data,
        trust_roots=list(roots.values()),
        where=str(verdict.path),
        at=signed_at.replace(tzinfo=UTC),
        tsa_roots=() if tsa is None else tsa.trust_roots,
    )
    revisions = check_revisions(state.data, where=str(verdict.path))
    if not sigs:
        raise CheckFailed("the PDF carries no signature")
    verdict.signatures = [s.as_dict() for s in sigs]
    signer = state.manifest.get("signer")
    for i, sig in enumerate(sigs):
        who = f"signature {sig.field!r} ({sig.subject})"
        if not (sig.intact and sig.valid):
            raise CheckFailed(f"{who} does not verify: the PDF was changed after it was signed")
        if sig.certificate_der not in bound:
            hint = "" if case_dir else "; pass --case to check bindings made after the report"
            raise CheckFailed(f"{who} is made with a certificate no journal entry binds{hint}")
        if not sig.trusted:
            raise CheckFailed(f"{who}: the certificate does not chain to its lab CA")
        if not sig.timestamp_sound:
            raise CheckFailed(f"{who}: its RFC 3161 timestamp token does not verify")
        if sig.timestamp and sig.timestamp_trusted is False:
            raise CheckFailed(
                f"{who}: its timestamp's TSA does not chain to the TSA trust root of the case's "
                "policy ([timestamps] trust_root)"
            )
        if sig.timestamp and sig.timestamp_trusted is None:
            check.notes.append(
                f"{sig.field} carries a timestamp of {sig.timestamp}; the case's policy pins no "
                "TSA trust root ([timestamps]), so the TSA's certificate is not judged"
            )
        if not sig.docmdp_ok:
            raise CheckFailed(f"{who}: later revisions changed the document ({sig.modification})")
        if i == 0 and bound[sig.certificate_der][0] != signer:
            raise CheckFailed(f"{who} is not the examiner named in {MANIFEST}")
        if i > 0 and bound[sig.certificate_der][0] == signer:
            raise CheckFailed(f"{who} approves a report its own examiner signed")
    if not sigs[-1].covers_whole_file:
        raise CheckFailed(
            "bytes were appended after the last signature: the file is not as it was signed"
        )
    check.detail = f"{revisions} revisions, {len(sigs)} signature(s): " + "; ".join(
        f"{s.field} by {s.subject}" + (f", timestamped {s.timestamp}" if s.timestamp else "")
        for s in sigs
    )


def _r_attachments(state: _ReportState, check: Check) -> None:
    recorded: dict[str, str] = {}
    for run in read_runs(state.entries):
        for r in [*run.provenance_records(), *output_files(run)]:
            recorded[attachment_name(str(r["file"]))] = str(r["sha256"])
        for r, _ in video_run_files(run):
            recorded[attachment_name(str(r["file"]))] = str(r["sha256"])
    for e in step_entries(state.entries):
        for rec in StepRecord(e.hash, e.actor, e.payload).applied():
            for m in (rec.get("maps") or {}).get("files", {}).values():
                recorded[attachment_name(str(m["file"]))] = str(m["sha256"])
    keys = {a.name: a.data for a in key_attachments(state.entries)}
    items = {x.exhibit_id: x for x in exhibits(state.entries)}
    opened = state.entries[0].payload
    checked = 0
    for name, data in state.files.items():
        if name in (JOURNAL_FILE, CHECKPOINT_FILE, MANIFEST):
            continue  # checked by check 2
        if name == "case.json":
            ok = sha256_hex(data) == opened.get("manifest_sha256")
        elif name == "policy.toml":
            ok = sha256_hex(data) == opened["policy"]["sha256"]
        elif name in keys:
            ok = data == keys[name]
        elif name.endswith("-frames.csv") and name[: -len("-frames.csv")] in items:
            ok = data == frames_csv(items[name[: -len("-frames.csv")]])
        elif name in recorded:
            ok = sha256_hex(data) == recorded[name]
        else:
            raise CheckFailed(f"the attachment {name} is not described by the journal")
        if not ok:
            raise CheckFailed(f"the attachment {name} does not match the journal's record of it")
        checked += 1
    check.detail = f"{checked} attachment(s) match their journal records"


def _r_case(state: _ReportState, check: Check, verdict: ReportVerdict, case_dir: Path) -> None:
    case_verdict = verify_case(case_dir)
    if not case_verdict.ok:
        raise CheckFailed(f"the case does not verify: {case_verdict.failure}")
    case = open_case(case_dir)
    state.case = case
    if case.case_id != state.manifest.get("case_id"):
        raise CheckFailed(
            f"the report is of case {state.manifest.get('case_id')}, not {case.case_id}"
        )
    journal = case.store.read_bytes(JOURNAL_FILE)
    if not journal.startswith(state.files[JOURNAL_FILE]):
        raise CheckFailed("the attached journal is not the start of the case's journal")
    digest = sha256_hex(state.data)
    entries = case.entries()
    by_hash = {e.hash: e for e in entries}
    found = next(
        (e for e in entries if e.kind in REPORT_KINDS and e.payload.get("sha256") == digest),
        None,
    )
    if found is None:
        raise CheckFailed(f"the case records no report with this file's SHA-256 ({digest})")
    issued = (
        found if found.kind == REPORT_GENERATED.name else by_hash.get(str(found.payload["report"]))
    )
    if issued is None or issued.payload.get("number") != state.manifest.get("number"):
        raise CheckFailed("the case's record of this file names another report")
    verdict.issued = issued
    names = enrolled_keys(entries)
    verdict.approvals = [
        {
            "number": int(e.payload["number"]),
            "examiner": names.get(e.actor, e.actor),
            "fingerprint": e.actor,
            "time": e.time,
            "sha256": str(e.payload["sha256"]),
        }
        for e in entries
        if e.kind == REPORT_APPROVED.name and e.payload.get("report") == issued.hash
    ]
    check.detail = (
        f"case {case.case_id}: report {issued.payload['number']} issued at "
        f"{issued.payload['generated_at']}, entry #{issued.seq}"
    )


def _r_rebuild(
    state: _ReportState, check: Check, verdict: ReportVerdict, templates_dir: Path | None
) -> None:
    assert state.case is not None
    assert verdict.issued is not None
    p = verdict.issued.payload
    size, unsigned_sha = int(p["unsigned"]["size"]), str(p["unsigned"]["sha256"])
    if sha256_hex(state.data[:size]) != unsigned_sha:
        raise CheckFailed(
            "the report's first revision is not the unsigned report the case recorded"
        )
    templates = load_templates(templates_dir)
    if templates.sha256 != p["templates"]["sha256"]:
        check.notes.append(
            f"not rebuilt: the report used templates {p['templates']['sha256'][:16]}…, these "
            f"are {templates.sha256[:16]}… (pass --templates with the lab's folder)"
        )
        return
    if p["builder"] != builder_versions():
        changed = sorted(
            k for k in builder_versions() if p["builder"].get(k) != builder_versions()[k]
        )
        check.notes.append(f"not rebuilt: built with other versions of {', '.join(changed)}")
        return
    count = int(p["entries"])
    lines = state.case.store.read_bytes(JOURNAL_FILE).splitlines(keepends=True)[:count]
    entries = state.case.entries()[:count]
    request = ReportRequest(
        number=int(p["number"]),
        count=count,
        exhibits=None if p["exhibits"] is None else tuple(p["exhibits"]),
        signer=str(p["signer"]),
        checkpoint=str(p["checkpoint"]),
        now=datetime.strptime(str(p["generated_at"]), TIME_FORMAT).replace(tzinfo=UTC),
    )
    items = collect_attachments(
        state.case, entries, request, journal=b"".join(lines), templates=templates
    )
    rebuilt = build_pdf(state.case, entries, request, templates, items)
    if sha256_hex(rebuilt) != unsigned_sha:
        raise CheckFailed("the rebuilt report differs from the one that was signed")
    check.detail = f"identical ({size:,} bytes, sha256 {unsigned_sha[:16]}…)"

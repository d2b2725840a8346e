"""The signed PDF chain-of-custody report: issue, approve and verify.

`issue_report` verifies the case, builds the PDF from the journal (`build`), embeds the
journal and the files that make the report a complete record, signs it with the examiner's
bound report certificate (`pdf`), keeps a copy in the case, journals ``report.generated``
and writes the file, never over an existing one. `approve_report` adds a second examiner's
signature; `verify_report` checks a report alone, or against its case, in numbered steps.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import reportlab
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pyhanko.sign.timestamps import TimeStamper

from forensic.case import Case, exhibits, open_case
from forensic.cosign import missing_cosignatures
from forensic.enhance import applied, runs
from forensic.errors import (
    CaseError,
    ForensicError,
    InputError,
    KeyFileError,
    PolicyError,
    VerificationError,
)
from forensic.fsutil import fsync_dir, write_atomic
from forensic.hashing import sha256_hex
from forensic.journal import CHECKPOINT_FILE, JOURNAL_FILE, Entry, canonical, parse_entry
from forensic.keys import Signer
from forensic.pki import ReportSigner
from forensic.report.build import (
    Attachment,
    ReportRequest,
    attachment_name,
    build_pdf,
    provenance_records,
    video_run_files,
)
from forensic.report.pdf import (
    approve,
    attachments,
    check_revisions,
    check_signatures,
    sign_with_attachments,
)
from forensic.report.templates import Templates, load_templates
from forensic.verify import FAIL, PASS, Check, verify_case
from forensic.versions import tool_version

REPORTS_DIR = "reports"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
MANIFEST = "report.json"
REQUIRED = (JOURNAL_FILE, CHECKPOINT_FILE, "case.json", "policy.toml", MANIFEST)


def builder_versions() -> dict[str, str]:
    """What the unsigned bytes depend on besides the inputs: a rebuild is compared only
    where these are the same."""
    return {
        "forensic": tool_version()["version"],
        "reportlab": reportlab.Version,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "pyhanko": dist_version("pyhanko"),
    }


# -- attachments -----------------------------------------------------------------------------


def key_attachments(entries: list[Entry]) -> list[Attachment]:
    """The public keys and certificates the journal enrols and binds, as attachments."""
    pem = "application/x-pem-file"
    out = []
    for e in entries:
        if e.kind in ("case.open", "case.examiner.add"):
            p = e.payload.get("examiner", e.payload)
            out.append(
                Attachment(
                    f"key-{p['fingerprint']}.pem",
                    str(p["public_key"]).encode(),
                    pem,
                    f"Ed25519 journal key of {p['name']}",
                )
            )
        if e.kind == "pki.bind":
            fp16 = e.actor[:16]
            out.append(
                Attachment(
                    f"report-signing-{fp16}.cert.pem",
                    str(e.payload["certificate"]).encode(),
                    pem,
                    "report-signing certificate",
                )
            )
            out.append(
                Attachment(
                    f"lab-ca-{fp16}.cert.pem",
                    str(e.payload["ca_certificate"]).encode(),
                    pem,
                    "lab CA certificate",
                )
            )
    return out


def _frames_csv(exhibit: dict[str, Any]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "pts", "type", "key", "sha256"])
    for f in exhibit.get("frames", []):
        writer.writerow([f["index"], f.get("pts"), f.get("type"), f.get("key"), f["sha256"]])
    return buf.getvalue().encode("utf-8")


def _selected_runs(
    entries: list[Entry], chosen: tuple[str, ...] | None
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    return [(r, s) for r, s in runs(entries) if chosen is None or r["exhibit"] in chosen]


def collect_attachments(
    case: Case,
    entries: list[Entry],
    request: ReportRequest,
    *,
    journal: bytes,
    templates: Templates,
) -> list[Attachment]:
    """Everything embedded in the report, derived from the journal (and files it hashes)."""
    items = [
        Attachment(JOURNAL_FILE, journal, "application/x-ndjson", "the signed journal"),
        Attachment(
            CHECKPOINT_FILE,
            request.checkpoint.encode() + b"\n",
            "application/json",
            "the signed checkpoint",
        ),
        Attachment(
            "case.json",
            (case.root / "case.json").read_bytes(),
            "application/json",
            "the case manifest",
        ),
        Attachment(
            "policy.toml",
            (case.root / "policy.toml").read_bytes(),
            "application/toml",
            "the case's policy",
        ),
    ]
    manifest = {
        "format": "forensic-report/1",
        "case_id": case.case_id,
        **request.as_dict(),
        "templates": {"sha256": templates.sha256, "files": templates.files},
        "builder": builder_versions(),
    }
    items.append(
        Attachment(
            MANIFEST,
            canonical(manifest),
            "application/json",
            "what this report covers and how it was built",
        )
    )
    items += key_attachments(entries)
    for x in exhibits(entries):
        if request.exhibits is not None and x["exhibit"] not in request.exhibits:
            continue
        if x.get("media") == "video":
            items.append(
                Attachment(
                    f"{x['exhibit']}-frames.csv",
                    _frames_csv(x),
                    "text/csv",
                    f"per-frame SHA-256 of {x['exhibit']}",
                )
            )
    seen: set[str] = set()
    for run, steps in _selected_runs(entries, request.exhibits):
        records = provenance_records(run)
        maps = [(r, f"provenance map of {run['run']}") for r in records]
        maps += video_run_files(run, steps)
        for step in steps:
            for rec in applied(step):
                for key, m in (rec.get("maps") or {}).get("files", {}).items():
                    maps.append((m, f"{key} map of {run['run']} step {step['step']}"))
        for record, what in maps:
            rel = str(record["file"])
            if rel in seen:
                continue
            seen.add(rel)
            data = (case.root / rel).read_bytes()
            if sha256_hex(data) != record["sha256"]:
                raise VerificationError(f"{rel} no longer matches its recorded SHA-256")
            mime = {
                ".png": "image/png",
                ".mkv": "video/x-matroska",
                ".json": "application/json",
            }.get(Path(rel).suffix, "image/tiff")
            items.append(Attachment(attachment_name(rel), data, mime, what))
    return items


# -- issuing ---------------------------------------------------------------------------------


def _bound_certificate(entries: list[Entry], fingerprint: str) -> list[str]:
    return [
        str(e.payload["certificate"])
        for e in entries
        if e.kind == "pki.bind" and e.actor == fingerprint
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
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
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
    verdict = verify_case(case.root)
    if not verdict.ok:
        raise VerificationError(
            f"case {case.case_id} does not verify ({verdict.failure}); no report is issued "
            "for a case that does not verify",
            hint="run `forensic verify CASE` for the details",
        )
    entries = case.entries()
    known = [x["exhibit"] for x in exhibits(entries)]
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
    selected = {r["run"] for r, _ in _selected_runs(entries, chosen)}
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
    journal = (case.root / JOURNAL_FILE).read_bytes()
    checkpoint = (case.root / CHECKPOINT_FILE).read_bytes().rstrip(b"\n").decode("ascii")
    request = ReportRequest(
        number=1 + sum(e.kind == "report.generated" for e in entries),
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
        kind="report.generated",
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
        kind="report.approved",
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


# -- verifying -------------------------------------------------------------------------------


REPORT_CHECKS = (
    "the PDF is readable and carries the journal and its manifest",
    "the attached journal verifies on its own",
    "every PDF signature is intact, covers the report and is made with a bound certificate",
    "every attachment matches the journal",
    "the attached journal is the case's journal when the report was issued",
    "rebuilding the report from the case gives the same unsigned PDF",
)


@dataclass
class ReportVerdict:
    path: Path
    checks: list[Check] = field(default_factory=list)
    signatures: list[dict[str, Any]] = field(default_factory=list)
    issued: Entry | None = None  # the case's report.generated entry, when a case was given
    sha256: str = ""  # of the bytes that were checked

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failure(self) -> str | None:
        for c in self.checks:
            if not c.ok:
                return f"check {c.number} ({c.name}): {c.detail}"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "report": str(self.path),
            "ok": self.ok,
            "checks": [c.as_dict() for c in self.checks],
            "signatures": self.signatures,
        }


class _Stop(Exception):
    pass


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
    steps = [
        lambda c: _r_readable(path, state, c),
        lambda c: _r_journal(state, c, trusted),
        lambda c: _r_signatures(state, c, verdict, case_dir),
        lambda c: _r_attachments(state, c),
    ]
    if case_dir is not None:
        steps.append(lambda c: _r_case(state, c, verdict, case_dir))
        steps.append(lambda c: _r_rebuild(state, c, verdict, templates_dir))
    blocked = False
    for number, step in enumerate(steps, start=1):
        check = Check(number, REPORT_CHECKS[number - 1])
        verdict.checks.append(check)
        if blocked:
            check.detail = "not run: an earlier check failed"
            continue
        try:
            step(check)
            if check.status != FAIL:
                check.status = PASS
        except _Stop as stop:
            check.status, check.detail = FAIL, str(stop)
            blocked = number in (1, 2, 5)  # no journal, or no case to rebuild from
        except ForensicError as exc:
            check.status, check.detail = FAIL, exc.message
            blocked = number in (1, 2, 5)  # no journal, or no case to rebuild from
    verdict.sha256 = sha256_hex(state.data)
    return verdict


def _r_readable(path: Path, state: _ReportState, check: Check) -> None:
    try:
        state.data = path.read_bytes()
    except OSError as exc:
        raise _Stop(f"cannot read {path}: {exc.strerror}") from None
    if not state.data.startswith(b"%PDF-"):
        raise _Stop(f"{path} is not a PDF file")
    state.files = attachments(state.data, where=str(path))
    missing = [n for n in REQUIRED if n not in state.files]
    if missing:
        raise _Stop(f"the PDF lacks the attachments {missing}: it is not a forensic report")
    try:
        state.manifest = json.loads(state.files[MANIFEST])
    except ValueError as exc:
        raise _Stop(f"{MANIFEST} is not JSON ({exc})") from None
    if not isinstance(state.manifest, dict):
        raise _Stop(f"{MANIFEST} is not a JSON object")
    check.detail = f"{len(state.data):,} bytes, {len(state.files)} attachments"


def _r_journal(state: _ReportState, check: Check, trusted: Sequence[Ed25519PublicKey]) -> None:
    with tempfile.TemporaryDirectory(prefix="forensic-report-") as tmp:
        root = Path(tmp)
        for name in (JOURNAL_FILE, CHECKPOINT_FILE, "case.json", "policy.toml"):
            (root / name).write_bytes(state.files[name])
        sub = verify_case(root, trusted=trusted, journal_only=True)
    if not sub.ok:
        raise _Stop(f"the attached journal does not verify: {sub.failure}")
    lines = state.files[JOURNAL_FILE].splitlines()
    state.entries = [parse_entry(line, n) for n, line in enumerate(lines, start=1)]
    if state.manifest.get("entries") != len(state.entries):
        raise _Stop(
            f"{MANIFEST} says the report covers {state.manifest.get('entries')} entries; the "
            f"attached journal has {len(state.entries)}"
        )
    check.detail = f"{len(state.entries)} entries, signatures, chain and checkpoint"
    check.notes += [n for c in sub.checks for n in c.notes]


def _bindings(entries: list[Entry]) -> dict[bytes, tuple[str, x509.Certificate]]:
    """Certificate DER -> (examiner fingerprint, CA) for every pki.bind entry."""
    out = {}
    for e in entries:
        if e.kind == "pki.bind":
            try:
                cert = x509.load_pem_x509_certificate(str(e.payload["certificate"]).encode())
                ca = x509.load_pem_x509_certificate(str(e.payload["ca_certificate"]).encode())
            except (KeyError, ValueError):
                raise VerificationError(
                    f"entry {e.seq} (pki.bind) holds no valid certificate"
                ) from None
            out[cert.public_bytes(serialization.Encoding.DER)] = (e.actor, ca)
    return out


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
        raise _Stop(f"{MANIFEST} has no valid generated_at") from None
    sigs = check_signatures(
        state.data,
        trust_roots=list(roots.values()),
        where=str(verdict.path),
        at=signed_at.replace(tzinfo=UTC),
    )
    revisions = check_revisions(state.data, where=str(verdict.path))
    if not sigs:
        raise _Stop("the PDF carries no signature")
    verdict.signatures = [s.as_dict() for s in sigs]
    signer = state.manifest.get("signer")
    for i, sig in enumerate(sigs):
        who = f"signature {sig.field!r} ({sig.subject})"
        if not (sig.intact and sig.valid):
            raise _Stop(f"{who} does not verify: the PDF was changed after it was signed")
        if sig.certificate_der not in bound:
            hint = "" if case_dir else "; pass --case to check bindings made after the report"
            raise _Stop(f"{who} is made with a certificate no journal entry binds{hint}")
        if not sig.trusted:
            raise _Stop(f"{who}: the certificate does not chain to its lab CA")
        if not sig.timestamp_sound:
            raise _Stop(f"{who}: its RFC 3161 timestamp token does not verify")
        if sig.timestamp:
            check.notes.append(
                f"{sig.field} carries a timestamp of {sig.timestamp}; the TSA's certificate "
                "is not checked against a trusted TSA root here"
            )
        if not sig.docmdp_ok:
            raise _Stop(f"{who}: later revisions changed the document ({sig.modification})")
        if i == 0 and bound[sig.certificate_der][0] != signer:
            raise _Stop(f"{who} is not the examiner named in {MANIFEST}")
        if i > 0 and bound[sig.certificate_der][0] == signer:
            raise _Stop(f"{who} approves a report its own examiner signed")
    if not sigs[-1].covers_whole_file:
        raise _Stop(
            "bytes were appended after the last signature: the file is not as it was signed"
        )
    check.detail = f"{revisions} revisions, {len(sigs)} signature(s): " + "; ".join(
        f"{s.field} by {s.subject}" + (f", timestamped {s.timestamp}" if s.timestamp else "")
        for s in sigs
    )


def _r_attachments(state: _ReportState, check: Check) -> None:
    recorded: dict[str, str] = {}
    for e in state.entries:
        if e.kind == "run":
            for r in provenance_records(e.payload):
                recorded[attachment_name(str(r["file"]))] = str(r["sha256"])
        if e.kind == "run":
            steps = [x.payload for x in state.entries if x.hash in set(e.payload["steps"])]
            for r, _ in video_run_files(e.payload, steps):
                recorded[attachment_name(str(r["file"]))] = str(r["sha256"])
        if e.kind == "run.step":
            for rec in applied(e.payload):
                for m in (rec.get("maps") or {}).get("files", {}).values():
                    recorded[attachment_name(str(m["file"]))] = str(m["sha256"])
    keys = {a.name: a.data for a in key_attachments(state.entries)}
    items = {x["exhibit"]: x for x in exhibits(state.entries)}
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
            ok = data == _frames_csv(items[name[: -len("-frames.csv")]])
        elif name in recorded:
            ok = sha256_hex(data) == recorded[name]
        else:
            raise _Stop(f"the attachment {name} is not described by the journal")
        if not ok:
            raise _Stop(f"the attachment {name} does not match the journal's record of it")
        checked += 1
    check.detail = f"{checked} attachment(s) match their journal records"


def _r_case(state: _ReportState, check: Check, verdict: ReportVerdict, case_dir: Path) -> None:
    case_verdict = verify_case(case_dir)
    if not case_verdict.ok:
        raise _Stop(f"the case does not verify: {case_verdict.failure}")
    case = open_case(case_dir)
    state.case = case
    if case.case_id != state.manifest.get("case_id"):
        raise _Stop(f"the report is of case {state.manifest.get('case_id')}, not {case.case_id}")
    journal = (case.root / JOURNAL_FILE).read_bytes()
    if not journal.startswith(state.files[JOURNAL_FILE]):
        raise _Stop("the attached journal is not the start of the case's journal")
    digest = sha256_hex(state.data)
    entries = case.entries()
    by_hash = {e.hash: e for e in entries}
    found = next(
        (
            e
            for e in entries
            if e.kind in ("report.generated", "report.approved")
            and e.payload.get("sha256") == digest
        ),
        None,
    )
    if found is None:
        raise _Stop(f"the case records no report with this file's SHA-256 ({digest})")
    issued = (
        found if found.kind == "report.generated" else by_hash.get(str(found.payload["report"]))
    )
    if issued is None or issued.payload.get("number") != state.manifest.get("number"):
        raise _Stop("the case's record of this file names another report")
    verdict.issued = issued
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
        raise _Stop("the report's first revision is not the unsigned report the case recorded")
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
    lines = (state.case.root / JOURNAL_FILE).read_bytes().splitlines(keepends=True)[:count]
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
        raise _Stop("the rebuilt report differs from the one that was signed")
    check.detail = f"identical ({size:,} bytes, sha256 {unsigned_sha[:16]}…)"


__all__ = [
    "Issued",
    "ReportVerdict",
    "approve_report",
    "issue_report",
    "verify_report",
]

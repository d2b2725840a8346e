"""The back of the report: the chain of custody (every journal entry), the methodology,
limitations and declaration, and how to verify the report (commands, the signed checkpoint and
the list of attachments)."""

from __future__ import annotations

import json
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Preformatted, Spacer
from reportlab.platypus.doctemplate import NotAtTopPageBreak

from forensic.journal import ENTRY_TYPE, Entry
from forensic.records import (
    CASE_OPEN,
    COSIGN,
    EVIDENCE_INGEST,
    EXAMINER_ADD,
    EXPORT,
    KEY_REVOKE,
    KEY_ROTATE,
    PKI_BIND,
    REPORT_APPROVED,
    REPORT_GENERATED,
    RUN,
    RUN_STEP,
)
from forensic.report.context import ReportContext, decode_b64
from forensic.report.embedded import output_files
from forensic.report.layout import TEXT_W, entry_time, grid, para, short_fp
from forensic.report.model import attachment_name
from forensic.report.templates import paragraphs
from forensic.timeutil import utc_timestamp


def custody(ctx: ReportContext) -> list[Any]:
    """Every journal entry the report covers, one row each."""
    st = ctx.st
    rows: list[list[Any]] = [
        [para(h, st.cell) for h in ("#", "Time (UTC)", "Examiner", "Entry", "Entry SHA-256")]
    ]
    for e in ctx.entries:
        rows.append(
            [
                para(str(e.seq), st.cell),
                para(entry_time(e.time), st.cell),
                para(ctx.names.get(e.actor, short_fp(e.actor)), st.cell),
                para(describe(e), st.cell),
                para(e.hash, st.hash),
            ]
        )
    return [
        NotAtTopPageBreak(),
        para("Chain of custody: every journal entry", st.h1),
        para(
            "Each row is one signed journal entry. Entry n stores the SHA-256 of entry n-1, "
            "so no row can be changed, removed or reordered without breaking the chain; "
            "the signed checkpoint below covers them all.",
            st.body,
        ),
        Spacer(1, 2 * mm),
        grid(rows, [7 * mm, 21 * mm, 22 * mm, 46 * mm, TEXT_W - 96 * mm]),
    ]


def reports_and_approvals(ctx: ReportContext) -> list[Any]:
    """The reports issued and approved in the case before this one (from the journal)."""
    st = ctx.st
    rows: list[list[Any]] = [
        [para(h, st.cell) for h in ("#", "Time (UTC)", "Report", "By", "File SHA-256")]
    ]
    for e in ctx.entries:
        if e.kind not in (REPORT_GENERATED.name, REPORT_APPROVED.name):
            continue
        what = "issued" if e.kind == REPORT_GENERATED.name else "APPROVED"
        rows.append(
            [
                para(str(e.seq), st.cell),
                para(entry_time(e.time), st.cell),
                para(f"report {e.payload.get('number')} {what}: {e.payload.get('file')}", st.cell),
                para(ctx.names.get(e.actor, short_fp(e.actor)), st.cell),
                para(str(e.payload.get("sha256")), st.hash),
            ]
        )
    out: list[Any] = [
        para("Reports and approvals", st.h1),
        para(
            "A report is approved by a second examiner's PDF signature over it, recorded in "
            "the case journal as report.approved. An approval of this report comes after it "
            "and is not printed in it: the PDF's signature panel shows it, and "
            "forensic verify REPORT.pdf --case CASE-FOLDER lists it by name.",
            st.body,
        ),
    ]
    if len(rows) == 1:
        out.append(para("No earlier report of this case was issued or approved.", st.body))
    else:
        out.append(grid(rows, [7 * mm, 21 * mm, 52 * mm, 22 * mm, TEXT_W - 102 * mm]))
    return out


def outputs_attached(ctx: ReportContext) -> tuple[list[list[Any]], int, int]:
    """Rows for the outputs left in the case (not attached), and the counts of attached
    and of all outputs."""
    st = ctx.st
    names = {a.name for a in ctx.attachments}
    left: list[list[Any]] = []
    attached = total = 0
    for run in ctx.runs:
        for record in output_files(run):
            total += 1
            if attachment_name(str(record["file"])) in names:
                attached += 1
                continue
            left.append(
                [
                    para(
                        f"{run.run_id}: {record['file']} ({int(record['size']):,} bytes)", st.cell
                    ),
                    para(str(record["sha256"]), st.hash),
                ]
            )
    return left, attached, total


def verification(ctx: ReportContext) -> list[Any]:
    """How to verify the report: commands, the signed checkpoint, the attachments."""
    st = ctx.st
    checkpoint = json.loads(ctx.request.checkpoint)
    body = json.loads(decode_b64(checkpoint["payload"]))
    commands = [
        "# with forensic: the signatures and the attached journal; with --case, also the",
        "# case folder, and a byte-for-byte rebuild (with the lab's templates: --templates DIR)",
        "forensic verify report.pdf",
        "forensic verify report.pdf --case PATH/TO/CASE-FOLDER",
        "# save the attachments (listed below) with poppler:",
        "pdfdetach -saveall report.pdf",
        "# with pyHanko, trusting the attached lab CA certificate:",
        "pyhanko sign validate --pretty-print --trust lab-ca-<fingerprint>.cert.pem report.pdf",
        "# with poppler:",
        "pdfsig report.pdf",
        "# the archival form (PDF/A-3b, ISO 19005-3) with veraPDF:",
        "verapdf --flavour 3b --format text report.pdf",
        "# a journal entry's Ed25519 signature with OpenSSL and jq (here entry 0):",
        *openssl_recipe(),
    ]
    rows: list[list[Any]] = [
        [para(a.name, st.cell), para(a.description, st.cell), para(a.sha256, st.hash)]
        for a in ctx.attachments
    ]
    left, attached, total = outputs_attached(ctx)
    limit_mb = ctx.templates.outputs_max_bytes / 1e6
    if not left:
        complete = (
            f"and all {total} outputs are attached to this PDF, so the report alone is a "
            "complete record: each attachment can be checked against the journal's hashes."
            if total
            else "are attached to this PDF (there are no outputs), so the report alone is a "
            "complete record."
        )
    else:
        complete = (
            f"and {attached} of the {total} outputs are attached to this PDF (the laboratory "
            f"attaches outputs up to {limit_mb:g} MB in all). The {len(left)} output(s) listed "
            "below are NOT attached: they are in the case folder, and their SHA-256, printed "
            "here and signed in the journal, identifies them. The PDF alone proves what was "
            "done and which files resulted; checking those files' bytes needs the case."
        )
    out: list[Any] = [
        NotAtTopPageBreak(),
        *reports_and_approvals(ctx),
        para("How to verify this report", st.h1),
        para(
            "The PDF is signed (PAdES, ECDSA P-256) with the examiner's report certificate, "
            "which a journal entry signed by both keys binds to the examiner's Ed25519 "
            "journal key. Any change to a single byte of the signed file invalidates the "
            "signature. The journal, its checkpoint, the policy, the public keys, the "
            "provenance and generative maps and the per-frame lists " + complete,
            st.body,
        ),
        Spacer(1, 2 * mm),
        Preformatted("\n".join(commands), st.mono),
    ]
    if left:
        out += [
            para("Outputs not attached (in the case folder)", st.h2),
            grid(
                [[para(h, st.cell) for h in ("Output file", "SHA-256")], *left],
                [TEXT_W - 84 * mm, 84 * mm],
            ),
        ]
    out += [
        para("Signed checkpoint", st.h2),
        para(
            "The checkpoint is the examiner's signed statement of the journal's length and "
            "Merkle root (RFC 9162) when this report was issued. Keep a copy outside the "
            "case: a journal cut back to an earlier, self-consistent state is detectable "
            "only against such a copy.",
            st.body,
        ),
        para(json.dumps(body, indent=1, sort_keys=True), st.mono),
        para(f"keyid {checkpoint['signatures'][0]['keyid']}", st.mono),
        para(f"sig {checkpoint['signatures'][0]['sig']}", st.mono),
        para("Attachments", st.h2),
        grid(
            [[para(h, st.cell) for h in ("File", "What", "SHA-256")], *rows],
            [60 * mm, 34 * mm, TEXT_W - 94 * mm],
        ),
    ]
    return out


def declarations(ctx: ReportContext) -> list[Any]:
    """Methodology, limitations and the examiner's declaration (from the templates)."""
    st, w = ctx.st, ctx.templates.wording
    out: list[Any] = [NotAtTopPageBreak(), para("Methodology", st.h1)]
    out += [para(p, st.body) for p in paragraphs(w["methodology"])]
    out.append(para("Limitations", st.h1))
    out += [para(p, st.body) for p in paragraphs(w["limitations"])]
    out.append(para("Declaration", st.h1))
    out += [para(p, st.body) for p in paragraphs(w["declaration"])]
    signer = ctx.names.get(ctx.request.signer, "?")
    out += [
        Spacer(1, 6 * mm),
        para(
            f"{signer}, {utc_timestamp(ctx.request.now)}. Signed digitally: see the PDF "
            "signature panel and the verification section.",
            st.body,
        ),
    ]
    return out


def openssl_recipe(line: int = 1) -> list[str]:
    """Shell commands that check one journal entry's signature with OpenSSL (tested)."""
    return [
        f"sed -n {line}p journal.jsonl > line.json",
        "jq -r .payload line.json | base64 -d > payload.json",
        f"printf 'DSSEv1 {len(ENTRY_TYPE)} {ENTRY_TYPE} %d ' \\",
        "  $(wc -c < payload.json) > pae.bin && cat payload.json >> pae.bin",
        "jq -r '.signatures[0].sig' line.json | base64 -d > sig.bin",
        "openssl pkeyutl -verify -pubin -rawin -in pae.bin -sigfile sig.bin \\",
        "  -inkey key-$(jq -r '.signatures[0].keyid' line.json).pem",
    ]


def describe(entry: Entry) -> str:
    """A short readable description of a journal entry, for the custody table."""
    p = entry.payload
    kind = entry.kind
    if kind == CASE_OPEN.name:
        return f"case opened: {p.get('case_id')}, policy {p['policy'].get('name')}"
    if kind == EVIDENCE_INGEST.name:
        return f"evidence {p['exhibit']} ingested: {p['original']['name']}"
    if kind == RUN_STEP.name:
        return f"{p['run']} step {p['step']}: {p['op']} ({p['lane']})"
    if kind == RUN.name:
        out = p.get("output") or {}
        sha = f" → {out['sha256'][:16]}…" if out.get("sha256") else ""
        return f"{p['run']} {p['name']} on {p['exhibit']}{sha}"
    if kind == COSIGN.name:
        return f"co-signed {p['run']} step {p['step']} ({p['op']})"
    if kind == PKI_BIND.name:
        return "report certificate bound to the journal key"
    if kind == EXAMINER_ADD.name:
        return f"examiner enrolled: {p.get('name')}"
    if kind == REPORT_GENERATED.name:
        return f"report {p.get('number')} issued: sha256 {str(p.get('sha256'))[:16]}…"
    if kind == REPORT_APPROVED.name:
        return f"report {p.get('number')} approved: sha256 {str(p.get('sha256'))[:16]}…"
    if kind == EXPORT.name:
        quality = "lossless" if p.get("lossless") else "LOSSY presentation copy, not evidence"
        burnt = ", frame number and timecode burnt in" if p.get("burn_in") else ""
        return f"{p.get('run')} exported as {p.get('export_format')} ({quality}{burnt}): {p.get('name')}"
    if kind == KEY_ROTATE.name:
        new = p.get("examiner") or {}
        return (
            f"key {str(p.get('replaces'))[:16]}… replaced by {str(new.get('fingerprint'))[:16]}… "
            f"({new.get('name')})"
        )
    if kind == KEY_REVOKE.name:
        return (
            f"key {str(p.get('fingerprint'))[:16]}… ({p.get('name')}) revoked from "
            f"{p.get('effective')}: {p.get('reason')}"
        )
    return kind

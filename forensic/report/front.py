"""The front of the report: cover (with the verification verdict), the plain-language summary
of what was received, done and produced, and the evidence received."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, Spacer, Table
from reportlab.platypus.doctemplate import NotAtTopPageBreak

from forensic.journal import entries_root
from forensic.records import EVIDENCE_INGEST, PKI_BIND
from forensic.report.context import CLASS_TEXT, ReportContext, decode_b64, run_class
from forensic.report.layout import TEXT_W, Styles, entry_time, grid, kv_table, para
from forensic.report.templates import paragraphs
from forensic.timeutil import utc_timestamp
from forensic.versions import tool_version


def cover(ctx: ReportContext) -> list[Any]:
    st, t, req = ctx.st, ctx.templates, ctx.request
    head = ctx.entries[-1]
    cp = json.loads(decode_b64(json.loads(req.checkpoint)["payload"]))
    examiners = []
    for fp, name in ctx.names.items():
        bound = [e for e in ctx.entries if e.kind == PKI_BIND.name and e.actor == fp]
        cert = " · report certificate bound" if bound else ""
        examiners.append(f"{name} — Ed25519 {fp}{cert}")
    signer = ctx.names.get(req.signer, "?")
    classes = [run_class(r) for r in ctx.runs]
    counts = {k: classes.count(k) for k in CLASS_TEXT}
    out: list[Any] = [
        para(t.lab["name"], st.h2),
        para(t.lab["address"], st.small),
        Spacer(1, 6 * mm),
        para(t.wording["title"], st.title),
        para(f"Case {ctx.case.case_id}: {ctx.opened.get('title', '')}", st.h1),
        Spacer(1, 3 * mm),
        kv_table(
            [
                ("Report", f"Report {req.number} of case {ctx.case.case_id}"),
                ("Date", utc_timestamp(req.now)),
                ("Laboratory", t.lab["name"]),
                ("Accreditation", t.lab["accreditation"]),
                ("Examiners", para("\n".join(examiners), st.cell)),
                ("Signed by", f"{signer} (Ed25519 {req.signer})"),
                (
                    "Tool",
                    f"forensic {tool_version()['version']}; templates sha256 {t.sha256}",
                ),
                (
                    "Policy",
                    f"{ctx.opened['policy'].get('name')}, profile "
                    f"{ctx.profile_name or '(default)'}, sha256 "
                    f"{ctx.opened['policy']['sha256']}",
                ),
                (
                    "Exhibits",
                    ", ".join(x.exhibit_id for x in ctx.exhibits) or "none",
                ),
                (
                    "Outputs",
                    f"{len(ctx.runs)} run(s): {counts['evidence']} evidence-grade, "
                    f"{counts['inferred']} with inferred pixels, "
                    f"{counts['redacted']} redacted",
                ),
                (
                    "Verification",
                    f"PASSED when issued: {req.count} journal entries, every signature, "
                    "the hash chain, the signed checkpoint, evidence files and stored "
                    "outputs checked by forensic verify.",
                ),
                ("Journal head", para(head.hash, st.mono)),
                ("Merkle root", para(entries_root(ctx.entries), st.mono)),
                (
                    "Checkpoint",
                    f"{cp['count']} entries, signed {entry_time(cp['time'])} by "
                    f"{ctx.names.get(cp['actor'], cp['actor'])}",
                ),
            ],
            st,
        ),
        Spacer(1, 4 * mm),
    ]
    out += [para(p, st.body) for p in paragraphs(t.wording["purpose"])]
    return out


def summary(ctx: ReportContext) -> list[Any]:
    st = ctx.st
    out: list[Any] = [para("Summary: what was received, done and produced", st.h1)]
    out += [para(p, st.body) for p in paragraphs(ctx.templates.wording["lay_summary"])]
    out.append(Spacer(1, 2 * mm))
    rows: list[list[Any]] = [
        [para(h, st.cell) for h in ("Output", "From", "Steps", "What it is", "Output")]
    ]
    for run in ctx.runs:
        kind = run_class(run)
        ops = ", ".join(s.op for s in run.steps)
        result = run["output"]
        sha = (
            f"{result['sha256'][:16]}…"
            if result.get("sha256")
            else f"{result['frames']} frames, Merkle root {result['merkle_root'][:16]}…"
        )
        text = Paragraph(
            f"<font color='#{'cc0033' if kind == 'inferred' else '000000'}'>"
            f"{escape(CLASS_TEXT[kind])}</font>",
            st.cell,
        )
        rows.append(
            [
                para(
                    f"{run.run_id} {run['name']}" + (" (superseded)" if run.is_superseded else ""),
                    st.cell,
                ),
                para(run.source_run or run.exhibit_id, st.cell),
                para(ops, st.cell),
                text,
                para(sha, st.cell),
            ]
        )
    if len(rows) == 1:
        rows.append([para("No enhancement runs.", st.cell), "", "", "", ""])
    out.append(grid(rows, [28 * mm, 14 * mm, 46 * mm, 56 * mm, TEXT_W - 144 * mm]))
    return out


#: EXIF tags printed per exhibit, and the longest value printed; all are in the journal.
EXIF_ROWS, EXIF_VALUE_CHARS = 24, 80


def fact_rows(facts: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Recorded facts as (name, value) rows: nested tables become ``colour: matrix`` names,
    lists are joined, ``null`` is "not signalled"."""
    rows: list[tuple[str, str]] = []
    for key in sorted(facts):
        if key == "exif" and not prefix:
            continue
        value = facts[key]
        name = f"{prefix}{key.replace('_', ' ')}"
        if isinstance(value, Mapping):
            rows += fact_rows(value, f"{name}: ")
        elif isinstance(value, list):
            rows.append((name, "; ".join(str(v) for v in value) or "none"))
        elif isinstance(value, bool):
            rows.append((name, "yes" if value else "no"))
        elif value is None:
            rows.append((name, "not signalled"))
        else:
            rows.append((name, str(value)))
    return rows


def facts_table(facts: Mapping[str, Any], st: Styles) -> Table:
    """The facts in four columns (name, value, name, value), filled down then across; EXIF
    tags after them, shortened (the journal entry holds them all)."""
    rows = fact_rows(facts)
    exif = facts.get("exif") or {}
    if isinstance(exif, Mapping):
        for key in sorted(exif)[:EXIF_ROWS]:
            text = str(exif[key])
            cut = text if len(text) <= EXIF_VALUE_CHARS else text[:EXIF_VALUE_CHARS] + "…"
            rows.append((f"EXIF {key}", cut))
        if len(exif) > EXIF_ROWS:
            rows.append(("EXIF", f"{len(exif) - EXIF_ROWS} more tags in the journal entry"))
    half = -(-len(rows) // 2)
    left, right = rows[:half], rows[half:]
    data = []
    for i in range(half):
        cells: list[Any] = [para(left[i][0], st.cell), para(left[i][1], st.cell)]
        cells += (
            [para(right[i][0], st.cell), para(right[i][1], st.cell)] if i < len(right) else ["", ""]
        )
        data.append(cells)
    name_w = 30 * mm
    value_w = (TEXT_W - 2 * name_w) / 2
    return grid(data or [["", "", "", ""]], [name_w, value_w, name_w, value_w], header=False)


def evidence(ctx: ReportContext) -> list[Any]:
    st = ctx.st
    out: list[Any] = [NotAtTopPageBreak(), para("Evidence received", st.h1)]
    by_seq = {e.payload.get("exhibit"): e for e in ctx.entries if e.kind == EVIDENCE_INGEST.name}
    for x in ctx.exhibits:
        entry = by_seq[x.exhibit_id]
        ph = x["pixel_hash"]
        rows: list[tuple[str, Any]] = [
            ("Original name", x["original"]["name"]),
            ("Size", f"{x['size']:,} bytes ({x['format']}, {x['media']})"),
            ("SHA-256 (file)", para(x["sha256"], st.mono)),
            (f"Pixel hash ({ph['algorithm']})", para(ph["sha256"], st.mono)),
            ("Ingested", f"{entry_time(entry.time)} by {ctx.names.get(entry.actor, entry.actor)}"),
            ("Journal entry", para(f"#{entry.seq} {entry.hash}", st.mono)),
        ]
        if x.is_video:
            rows.insert(
                4,
                (
                    "Frames",
                    f"{ph.get('frame_count')} decoded frames; Merkle "
                    "root of the per-frame hashes above; the full list "
                    f"is attached as {x.exhibit_id}-frames.csv",
                ),
            )
        if x.get("warnings"):
            rows.append(("Warnings", " ".join(x["warnings"])))
        out.append(KeepTogether([para(f"{x.exhibit_id}: {x.name}", st.h2), kv_table(rows, st)]))
        out += [
            para(f"Media facts of {x.exhibit_id} (as recorded at ingest)", st.h2),
            facts_table(x.facts, st),
        ]
    if not ctx.exhibits:
        out.append(para("No exhibits selected.", st.body))
    return out

"""One section per run: its recipe and output, every step (operation, method, reference,
parameters, hashes, model and co-signatures), before and after images, a magnified region, the
provenance map, a video run's output frames, and what generative steps invented."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, NextPageTemplate, PageBreak, Table

from forensic import provenance
from forensic.errors import CaseError
from forensic.hashing import image_hash
from forensic.pipeline.sources import find_source, load_frames, read_stored_frame
from forensic.records import RunRecord, StepRecord, load_artifact
from forensic.report.context import (
    CLASS_TEXT,
    ReportContext,
    decode_checked,
    run_class,
    run_counts,
    tiff16,
)
from forensic.report.layout import (
    CLASS_COLOURS,
    TEXT_W,
    display_factor,
    entry_time,
    grid,
    heat_map,
    image_flowable,
    kv_table,
    overlay,
    para,
    params_text,
    reduce_pixels,
    swatch,
    to_rgb8,
)
from forensic.report.model import attachment_name

#: Output frames listed in the report's table; the complete list is attached.
FRAME_ROWS = 60


def run_section(ctx: ReportContext, run: RunRecord) -> list[Any]:
    """One output: its recipe, every step, before/after images, provenance and maps."""
    st = ctx.st
    kind = run_class(run)
    out: list[Any] = []
    if kind == "inferred":
        out += [NextPageTemplate("inferred"), PageBreak()]
    else:
        out.append(CondPageBreak(90 * mm))
    source = run.source_run or run.exhibit_id
    out.append(para(f"Output {run.run_id}: {run['name']} (from {source})", st.h1))
    out.append(para(CLASS_TEXT[kind], st.h2))
    share = inferred_share_sentence(run_counts(run))
    if share is not None:
        out.append(para(share, st.body))
    recipe = run["recipe"]
    out.append(
        kv_table(
            [
                ("Recipe", f"{recipe['name']} (sha256 {recipe['sha256']})"),
                (
                    "Policy profile",
                    f"{run['policy']['profile']} (policy sha256 {run['policy']['sha256']})",
                ),
                ("Lanes", ", ".join(run["lanes"])),
                *output_rows(ctx, run),
            ],
            st,
        )
    )
    for step in run.steps:
        out += step_block(ctx, run, step)
    out += images(ctx, run, kind)
    if kind == "inferred":
        out += [NextPageTemplate("normal"), PageBreak()]
    return out


def output_rows(ctx: ReportContext, run: RunRecord) -> list[tuple[str, Any]]:
    st, result = ctx.st, run.output
    if run.is_video:
        video = result["video"]
        return [
            ("Input frames", f"{run['inputs']['count']} decoded frames of {run['exhibit']}"),
            (
                "Output frames",
                f"{result['frames']} frame(s) (listed below), stored losslessly as "
                f"{video['file']} (FFV1 in Matroska, {video['pix_fmt']}, "
                f"{video['size']:,} bytes)",
            ),
            ("Output video SHA-256", para(video["sha256"], st.mono)),
            ("Merkle root (pixels)", para(result["merkle_root"], st.mono)),
        ]
    return [
        (
            "Output file",
            f"{result['file']} ({result['size']:,} bytes, {result['width']}×"
            f"{result['height']} {result['channels']} {result['dtype']})",
        ),
        ("Output SHA-256", para(result["sha256"], st.mono)),
        ("Output pixels", para(result["pixel_sha256"], st.mono)),
    ]


def step_block(ctx: ReportContext, run: RunRecord, step: StepRecord) -> list[Any]:
    st = ctx.st
    records = step.applied(ctx.case.store)
    first = records[0]
    algorithm = step.get("algorithm") or {}
    refs = algorithm.get("references") or []
    ref_text = (
        "; ".join(
            r["citation"]
            + (f" doi:{r['doi']}" if r.get("doi") else "")
            + (f" ({r['note']})" if r.get("note") else "")
            for r in refs
        )
        or "not recorded in this run's journal (run made before references were journaled)"
    )
    entry_hash = ctx.step_hash.get((run.run_id, step.number), "")
    rows: list[tuple[str, Any]] = [
        ("Operation", f"{step['op']} v{step['op_version']} — {step['lane']} lane"),
        ("Method", algorithm.get("summary", "(not recorded)")),
        ("Reference", ref_text),
        ("Parameters", para(params_text(first["params"]), st.mono)),
    ]
    if step.get("roi"):
        rows.append(("Region", f"x, y, width, height = {step['roi']}"))
    if first.get("inputs"):
        used = [i["frame"] for i in first["inputs"]]
        rows.append(
            (
                "Frames combined",
                f"{len(used)} frames, {used[0]}–{used[-1]}, into one output (labelled "
                f"frame {first['frame']}); Merkle root of their pixel hashes "
                f"{first['input']['merkle_root'][:16]}…",
            )
        )
    elif step.get("frames") or first.get("frame") is not None:
        frames = [r["frame"] for r in records]
        rows.append(
            (
                "Frames",
                f"{len(frames)} frames, {frames[0]}–{frames[-1]} (parameters "
                "above are frame "
                f"{frames[0]}'s; every frame's are in the journal)",
            )
        )
    if first.get("details"):
        rows.append(("Estimates", params_text(first["details"])))
    if step.get("temporal") == "map" and len(records) > 1 and records[-1].get("details"):
        # Frame 0 of a registration is the reference (identity): show the last one too.
        rows.append(
            (f"Estimates, frame {records[-1]['frame']}", params_text(records[-1]["details"]))
        )
    if isinstance(step.get("applied"), dict):
        rows.append(
            (
                "Per-frame record",
                para(
                    f"{step['applied']['count']} frame record(s) in "
                    f"{attachment_name(step['applied']['file'])} (attached), SHA-256 "
                    f"{step['applied']['sha256']}; Merkle root of the output frames "
                    f"{step['applied']['merkle_root']}",
                    st.mono,
                ),
            )
        )
    rows += [
        ("Input pixels", para(first["input"].get("pixel_sha256", "(several frames)"), st.mono)),
        ("Output pixels", para(first["output"]["pixel_sha256"], st.mono)),
        ("Journal entry", para(entry_hash, st.mono)),
    ]
    if step.get("model"):
        m = step["model"]
        facts = "; ".join(
            str(m[k])
            for k in ("name", "architecture", "framework", "device", "determinism")
            if m.get(k)
        )
        rows.append(("Model", facts or "(none recorded)"))
        for key, title in (
            ("weights_sha256", "Weights SHA-256"),
            ("model_card_sha256", "Model card SHA-256"),
        ):
            if m.get(key):
                rows.append((title, para(str(m[key]), st.mono)))
        rows.append(
            (
                "Inferred",
                f"{100 * float(step.get('inferred_fraction', 0)):.2f}% of "
                "the pixels of a frame (at most)",
            )
        )
        cos = ctx.cosigns.get(entry_hash, [])
        rows.append(
            (
                "Co-signed",
                "; ".join(f"{ctx.names.get(c.actor, c.actor)} at {entry_time(c.time)}" for c in cos)
                or "no",
            )
        )
    warnings = step.get("warnings") or []
    rows.append(("Warnings", " ".join(warnings) if warnings else "none raised"))
    return [para(f"Step {step['step']}: {step['op']}", st.h2), kv_table(rows, st)]


def _before_after(
    ctx: ReportContext, run: RunRecord
) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.uint8], str]:
    """Input and output pixels (first frame for video) and the output's provenance map."""
    label = f"run {run.run_id}"
    store = ctx.case.store
    if run.is_video:
        outputs = load_artifact(store, run["frames"], what=label)
        first = outputs[0]
        source = find_source(ctx.case, run.exhibit_id)
        before = load_frames(ctx.case, source, [int(first["frame"])])[0].image
        after = read_stored_frame(store, run.output["video"], 0)
        pmap = read_stored_frame(store, run.provenance["video"], 0)
        if image_hash(after) != first["output"]["pixel_sha256"]:
            raise CaseError(f"{label}: its stored output video does not match the record")
        note = f"frame {first['frame']}; output 1 of {len(outputs)}"
        return before, after, np.asarray(pmap, np.uint8), note
    source = find_source(ctx.case, run.source_run or run.exhibit_id)
    before = load_frames(ctx.case, source, None)[0].image
    after = decode_checked(ctx.case, run.output, label)
    pmap = decode_checked(ctx.case, run.provenance, label)
    return before, after, np.asarray(pmap, np.uint8), ""


def images(ctx: ReportContext, run: RunRecord, kind: str) -> list[Any]:
    """Before and after, a magnified region, the provenance map, frames, maps, copies."""
    st = ctx.st
    before, after, pmap, note = _before_after(ctx, run)
    b8, a8 = to_rgb8(before), to_rgb8(after)
    half = (TEXT_W - 6 * mm) / 2
    fb, fa = display_factor(b8.shape), display_factor(a8.shape)
    caption_b = (
        f"Before: {(run.get('source', {}) and 'source run output') or 'evidence'} "
        f"{b8.shape[1]}×{b8.shape[0]}" + (f", {note}" if note else "")
    )
    caption_a = f"After: {a8.shape[1]}×{a8.shape[0]}" + (
        f", shown reduced ×1/{fa}" if fa > 1 else ""
    )
    pair = Table(
        [
            [
                image_flowable(reduce_pixels(b8, fb), half, 95 * mm),
                image_flowable(reduce_pixels(a8, fa), half, 95 * mm),
            ],
            [para(caption_b, st.caption), para(caption_a, st.caption)],
        ],
        colWidths=[half + 3 * mm, half + 3 * mm],
    )
    out: list[Any] = [
        CondPageBreak(110 * mm),
        para("Before and after (same displayed scale of the scene)", st.h2),
        pair,
    ]
    roi = next((s["roi"] for s in run.steps if s.get("roi")), None)
    if roi and b8.shape == a8.shape:
        x, y, w, h = (int(v) for v in roi)
        zoom = max(1, min(8, int(half // max(w, 1)), int((60 * mm) // max(h, 1))))
        crops = [
            np.repeat(np.repeat(im[y : y + h, x : x + w], zoom, 0), zoom, 1) for im in (b8, a8)
        ]
        out += [
            para(f"Magnified region x={x}, y={y}, {w}×{h} px, ×{zoom} (nearest neighbour)", st.h2),
            Table(
                [[image_flowable(c, half, 70 * mm) for c in crops]], colWidths=[half + 3 * mm] * 2
            ),
        ]
    counts = run_counts(run)
    total = max(1, sum(counts.values()))
    legend: list[list[Any]] = []
    for name in provenance.CLASSES:
        spec = CLASS_COLOURS[name]
        key_box = swatch(spec[0]) if spec else swatch((200, 200, 200))
        share = 100 * counts.get(name, 0) / total
        legend.append(
            [key_box, para(f"{name}: {counts.get(name, 0):,} px ({share:.2f}%)", st.cell)]
        )
    legend_table = Table(legend, colWidths=[5 * mm, half - 5 * mm])
    tinted = reduce_pixels(overlay(a8, pmap), fa)
    out += [
        CondPageBreak(80 * mm),
        para("Provenance map (what happened to each output pixel)", st.h2),
        Table(
            [[image_flowable(tinted, half, 90 * mm), legend_table]],
            colWidths=[half + 3 * mm, half + 3 * mm],
        ),
        para(
            "Grey: original pixels; tints mark the class of each pixel. The map itself is "
            "attached, losslessly, with its SHA-256.",
            st.caption,
        ),
    ]
    if run.is_video:
        out += frame_table(ctx, run)
    if kind == "inferred":
        out += maps(ctx, run)
    if run.get("presentation"):
        pres = run["presentation"]
        p8 = to_rgb8(read_stored_frame(ctx.case.store, pres, 0))
        out += [
            CondPageBreak(90 * mm),
            para("Labelled presentation copy (first frame)", st.h2),
            image_flowable(reduce_pixels(p8, display_factor(p8.shape)), TEXT_W, 110 * mm),
            para(f"{pres['file']}, sha256 {pres['sha256']}", st.caption),
        ]
    if run.get("output", {}).get("presentation"):
        pres = run["output"]["presentation"]
        shown = decode_checked(ctx.case, pres, f"run {run.run_id} presentation copy")
        p8 = to_rgb8(shown)
        out += [
            CondPageBreak(90 * mm),
            para("Labelled presentation copy", st.h2),
            image_flowable(reduce_pixels(p8, display_factor(p8.shape)), TEXT_W, 110 * mm),
            para(f"sha256 {pres['sha256']}", st.caption),
        ]
    return out


def frame_table(ctx: ReportContext, run: RunRecord) -> list[Any]:
    """A video run's output frames (the first `FRAME_ROWS`; all are attached)."""
    st, store, what = ctx.st, ctx.case.store, f"run {run.run_id}"
    outputs = load_artifact(store, run["frames"], what=what)
    pts = {i["frame"]: i.get("pts") for i in load_artifact(store, run["inputs"], what=what)}
    head = [[para(h, st.cell) for h in ("Frame", "PTS", "Output pixel hash", "Frame hash")]]
    shown = outputs[:FRAME_ROWS]
    table = head + [
        [
            para(str(o["frame"]), st.cell),
            para(str(pts.get(o["frame"])), st.cell),
            para(o["output"]["pixel_sha256"], st.mono),
            para(o["output"]["frame_sha256"][:16] + "…", st.mono),
        ]
        for o in shown
    ]
    note = (
        f"The first {FRAME_ROWS} of {len(outputs)} frames; all are in "
        if len(outputs) > FRAME_ROWS
        else "All frames; also in "
    ) + (
        f"{attachment_name(run['frames']['file'])} (attached). The frame hash is what "
        "ingesting the output video (or its lossless export) records per frame."
    )
    return [
        para("Output frames", st.h2),
        grid(table, [14 * mm, 20 * mm, TEXT_W - 70 * mm, 36 * mm]),
        para(note, st.caption),
    ]


def maps(ctx: ReportContext, run: RunRecord) -> list[Any]:
    """What each generative step invented: its inferred-content, uncertainty and consistency
    maps (the first frame of a video run)."""
    st = ctx.st
    out: list[Any] = []
    titles = {
        "inferred_content": "Inferred content (difference from the classical baseline)",
        "uncertainty": "Uncertainty (spread over perturbed runs)",
        "consistency": "Data consistency (output degraded again vs. the input)",
    }
    for step in run.steps:
        for record in step.applied(ctx.case.store):
            meta = record.get("maps")
            if not meta:
                continue
            if "frames" in meta and "files" not in meta:
                cells, captions = [], []
                for key in ("inferred_content", "uncertainty", "consistency"):
                    video = step["maps"][key]
                    raw = read_stored_frame(ctx.case.store, video, meta["frames"][key]["stored"])
                    heat, top = heat_map(np.asarray(raw, np.uint16))
                    heat = reduce_pixels(heat, display_factor(heat.shape))
                    cells.append(image_flowable(heat, TEXT_W / 3 - 3 * mm, 60 * mm))
                    captions.append(
                        para(
                            f"{titles[key]}, frame {record['frame']}; black 0 → white "
                            f"{100 * top:.2f}% of full scale; {video['file']}",
                            st.caption,
                        )
                    )
                out += [
                    para(f"Generative maps, {step['op']} (first frame)", st.h2),
                    Table([cells, captions], colWidths=[TEXT_W / 3] * 3),
                ]
                break
            cells, captions = [], []
            for key in ("inferred_content", "uncertainty", "consistency"):
                heat, top = heat_map(tiff16(ctx.case, meta["files"][key], key))
                heat = reduce_pixels(heat, display_factor(heat.shape))
                cells.append(image_flowable(heat, TEXT_W / 3 - 3 * mm, 60 * mm))
                captions.append(
                    para(
                        f"{titles[key]}; black 0 → white {100 * top:.2f}% of full "
                        f"scale; sha256 {meta['files'][key]['sha256']}",
                        st.caption,
                    )
                )
            frame = "" if record.get("frame") is None else f", frame {record['frame']}"
            unc = meta.get("uncertainty", {})
            out += [
                CondPageBreak(100 * mm),
                para(f"What step {step['step']} ({step['op']}) invented{frame}", st.h2),
                Table([cells, captions], colWidths=[TEXT_W / 3] * 3),
                kv_table(
                    [
                        ("Baseline", meta.get("baseline", "")),
                        (
                            "Uncertainty",
                            f"{unc.get('runs')} runs, seeds {unc.get('seeds')}; "
                            f"{unc.get('perturbation', '')}",
                        ),
                        ("Consistency", meta.get("consistency_model", "")),
                        ("Means", params_text(meta.get("summary", {}))),
                    ],
                    st,
                ),
            ]
    return out


def inferred_share_sentence(counts: dict[str, int]) -> str | None:
    """One sentence: the share of an output's pixels that were inferred (invented by a
    generative step), or None when none were."""
    inferred, total = int(counts.get("inferred", 0)), sum(int(v) for v in counts.values())
    if inferred == 0 or total == 0:
        return None
    return (
        f"{100.0 * inferred / total:.2f} % of this output's pixels ({inferred:,} of {total:,}) "
        "were inferred by a generative step, not recorded by the camera; the provenance map "
        "marks each of them."
    )

"""One section per run: its recipe and output, every step (operation, method, reference,
parameters, hashes, model and co-signatures), before and after images, a magnified region, the
provenance map, a video run's output frames, and what generative steps invented."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from numpy.typing import NDArray
from reportlab.lib.units import mm
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    NextPageTemplate,
    PageBreak,
    Table,
)

from forensic import provenance
from forensic.errors import CaseError
from forensic.hashing import image_hash
from forensic.pipeline.masks import load_mask, mask_items
from forensic.pipeline.sources import load_frames, read_stored_frame
from forensic.records import RunRecord, StepRecord, load_artifact
from forensic.report.context import (
    CLASS_TEXT,
    ReportContext,
    decode_checked,
    run_class,
    run_counts,
    source_of,
    tiff16,
)
from forensic.report.layout import (
    CLASS_COLOURS,
    TEXT_W,
    entry_time,
    grid,
    heat_legend,
    heat_map,
    image_flowable,
    kv_table,
    magnified,
    overlay,
    para,
    params_text,
    preview_factor,
    reduce_classes,
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
        ("Parameters", para(params_text(_shown_params(first["params"])), st.mono)),
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
        rows.append(("Estimates", params_text(_shown_details(first["details"]))))
    if step.get("temporal") == "map" and len(records) > 1 and records[-1].get("details"):
        # Frame 0 of a registration is the reference (identity): show the last one too.
        rows.append(
            (
                f"Estimates, frame {records[-1]['frame']}",
                params_text(_shown_details(records[-1]["details"])),
            )
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
        info = m.get("device_info")
        if info:
            # What ran the network, so that a replay elsewhere can be judged against it.
            rows.append(
                (
                    "Device",
                    "; ".join(
                        f"{label} {_listed(info[key])}"
                        for key, label in (
                            ("name", "model"),
                            ("driver", "driver"),
                            ("cuda", "CUDA"),
                            ("cudnn", "cuDNN"),
                            ("torch", "torch"),
                            ("onnxruntime", "runtime"),  # an ONNX step: its session's
                            ("providers", "providers"),
                            ("requested", "asked for"),
                            ("fallback", "note:"),
                        )
                        if info.get(key) is not None
                    ),
                )
            )
        for key, title in (
            ("weights_sha256", "Weights SHA-256"),
            ("model_card_sha256", "Model card SHA-256"),
        ):
            if m.get(key):
                rows.append((title, para(str(m[key]), st.mono)))
        if m.get("manifest"):  # an examiner's ONNX model: how the policy says it is fed
            rows.append(("Declared manifest", manifest_text(m["manifest"])))
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
    # Warnings the step recorded (ENFSI guidance, an automatic estimate that did nothing, ...).
    warnings = list(step.get("warnings") or [])
    for r in records:
        warnings += [w for w in r.get("warnings") or [] if w not in warnings]
    rows.append(
        (
            "Warnings",
            para("\n".join(f"⚠ {w}" for w in warnings), st.cell) if warnings else "none recorded",
        )
    )
    return [
        para(f"Step {step['step']}: {step['op']}", st.h2),
        kv_table(rows, st),
        *mask_pictures(ctx, run, step, first),
    ]


def _shown_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters for print: a mask given as encoded text (``generative.fill_defects``) is
    named, not printed (it is in the journal entry, and pictured under the step)."""
    mask = params.get("mask")
    if not isinstance(mask, str) or ":" not in mask:
        return params
    size = mask.split(":", 1)[0]
    return {**params, "mask": f"encoded {size} mask, {len(mask):,} characters (pictured below)"}


def _shown_details(details: dict[str, Any]) -> dict[str, Any]:
    """Details for print without the defect masks, which are pictured under the step."""
    return {k: v for k, v in details.items() if k not in ("masks", "mask") or not _masks_in(v)}


def _masks_in(value: Any) -> bool:
    if isinstance(value, Mapping) and {"pixels", "fraction", "sha256"} <= set(value):
        return True
    return isinstance(value, Mapping) and any(_masks_in(v) for v in value.values())


#: Colour of a defect mask's pixels over the picture (grey, dimmed).
MASK_TINT = (230, 30, 30)
MASK_TITLES = {"mask": "combined, after the examiner's edits"}


def mask_overlay(base: NDArray[np.uint8] | None, mask: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """The mask's pixels in `MASK_TINT` over the picture in dimmed grey (or over black when no
    picture of the mask's size is at hand), integer arithmetic."""
    if base is None:
        grey = np.zeros(mask.shape, np.int32)
    else:
        rgb = base.astype(np.int32)
        grey = (
            rgb[:, :, 0]
            if base.shape[2] == 1
            else (299 * rgb[:, :, 0] + 587 * rgb[:, :, 1] + 114 * rgb[:, :, 2] + 500) // 1000
        )
        grey = (grey * 3) // 5
    out = np.repeat(grey[:, :, None], 3, axis=2)
    out[mask] = MASK_TINT
    return out.astype(np.uint8)


def mask_pictures(
    ctx: ReportContext, run: RunRecord, step: StepRecord, record: Mapping[str, Any]
) -> list[Any]:
    """Small pictures of a defect step's masks (each kind and the combined mask; a video run:
    its first frame), read from their stored files and checked."""
    items = list(mask_items(record.get("details")))
    if not items:
        return []
    st = ctx.st
    base = _mask_base(ctx, run, record)
    quarter = (TEXT_W - 9 * mm) / 4
    cells: list[Any] = []
    for name, rec in items:
        what = f"run {run.run_id} step {step.number} {name} mask"
        mask = load_mask(ctx.case.store, rec, name=name, videos=step.get("masks"), what=what)
        fitting = base if base is not None and base.shape[:2] == mask.shape else None
        cells.append(
            [
                image_flowable(mask_overlay(fitting, mask), quarter, 40 * mm, sharp=True),
                para(
                    f"{name} ({MASK_TITLES.get(name, 'detected')}): {int(rec['pixels']):,} px, "
                    f"{100 * float(rec['fraction']):.2f}%; pixel sha256 {str(rec['sha256'])[:16]}…",
                    st.caption,
                ),
            ]
        )
    rows = [cells[i : i + 4] for i in range(0, len(cells), 4)]
    rows[-1] += [""] * (4 - len(rows[-1]))
    frame = "" if record.get("frame") is None else f", frame {record['frame']}"
    caption = para(
        f"Defect masks of step {step.number}{frame}, in red over the step's input (grey); "
        "each mask is stored as a file in derived/ and checked against its hashes here.",
        st.caption,
    )
    return [KeepTogether([caption, Table(rows, colWidths=[quarter + 2 * mm] * 4)])]


def _mask_base(
    ctx: ReportContext, run: RunRecord, record: Mapping[str, Any]
) -> NDArray[np.uint8] | None:
    """The picture a step's masks are drawn over: its input when the run kept it, else the
    run's source (first frame), shown only where the sizes agree."""
    output = record.get("input") or {}
    if "file" in output:
        return to_rgb8(decode_checked(ctx.case, output, f"run {run.run_id} step input"))
    if run.is_video:
        source = source_of(ctx, run.exhibit_id)
        frame = int(record.get("frame") or 0)
        return to_rgb8(load_frames(ctx.case, source, [frame])[0].image)
    source = source_of(ctx, run.source_run or run.exhibit_id)
    return to_rgb8(load_frames(ctx.case, source, None)[0].image)


def _before_after(
    ctx: ReportContext, run: RunRecord
) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.uint8], str]:
    """Input and output pixels (first frame for video) and the output's provenance map."""
    label = f"run {run.run_id}"
    store = ctx.case.store
    if run.is_video:
        outputs = load_artifact(store, run["frames"], what=label)
        first = outputs[0]
        source = source_of(ctx, run.exhibit_id)
        before = load_frames(ctx.case, source, [int(first["frame"])])[0].image
        after = read_stored_frame(store, run.output["video"], 0)
        if image_hash(after) != first["output"]["pixel_sha256"]:
            raise CaseError(f"{label}: its stored output video does not match the record")
        pmap = _uniform_map(run, after)
        if pmap is None:
            pmap = read_stored_frame(store, run.provenance["video"], 0)
        note = f"frame {first['frame']}; output 1 of {len(outputs)}"
        return before, after, np.asarray(pmap, np.uint8), note
    source = source_of(ctx, run.source_run or run.exhibit_id)
    before = load_frames(ctx.case, source, None)[0].image
    after = decode_checked(ctx.case, run.output, label)
    pmap = _uniform_map(run, after)
    if pmap is None:
        pmap = decode_checked(ctx.case, run.provenance, label)
    return before, after, np.asarray(pmap, np.uint8), ""


def _uniform_map(run: RunRecord, after: NDArray[Any]) -> NDArray[np.uint8] | None:
    """The provenance map of a run whose every pixel has one class (its recorded counts say
    so), without decoding it; None otherwise. Its bytes are still hashed where it is
    attached."""
    counts = run_counts(run)
    used = [name for name, n in counts.items() if n]
    if len(used) != 1:
        return None
    code = provenance.CLASSES.index(used[0])
    return np.full(after.shape[:2], code, np.uint8)


#: Side of the automatically chosen magnified region, as a fraction of the image's shorter
#: side, and the step of the search for it (a fraction of that side).
REGION_FRACTION, REGION_STEP = 1 / 6, 1 / 4
#: The search runs on block means of the images with their shorter side at about this many
#: pixels (exact integers; the window is mapped back to full-size pixels).
REGION_SEARCH_SIDE = 270


def _window_sums(values: NDArray[np.int64], side: int, ys: NDArray[Any], xs: NDArray[Any]) -> Any:
    integral = np.zeros((values.shape[0] + 1, values.shape[1] + 1), np.int64)
    integral[1:, 1:] = values.cumsum(0).cumsum(1)
    return (
        integral[ys[:, None] + side, xs[None, :] + side]
        - integral[ys[:, None], xs[None, :] + side]
        - integral[ys[:, None] + side, xs[None, :]]
        + integral[ys[:, None], xs[None, :]]
    )


def changed_region(
    before: NDArray[np.uint8], after: NDArray[np.uint8]
) -> tuple[tuple[int, int, int, int], float]:
    """The square window where the output changed most *and* shows detail: the product of
    the window's summed absolute difference and its summed output gradient (so a flat wall
    where noise was removed loses to an edge that was sharpened or cleaned), searched on a
    grid in exact integer arithmetic; returns it and its mean difference in 8-bit levels."""
    full_h, full_w = before.shape[:2]
    factor = max(1, min(full_h, full_w) // REGION_SEARCH_SIDE)
    before, after = reduce_pixels(before, factor), reduce_pixels(after, factor)
    h, w = before.shape[:2]
    side = max(8, min(h, w, int(min(h, w) * REGION_FRACTION)))
    diff = np.abs(before.astype(np.int32) - after.astype(np.int32)).sum(axis=2, dtype=np.int64)
    luma = after.astype(np.int32).sum(axis=2)
    grad = np.zeros((h, w), np.int64)
    grad[:, 1:] += np.abs(np.diff(luma, axis=1))
    grad[1:, :] += np.abs(np.diff(luma, axis=0))
    step = max(1, int(side * REGION_STEP))
    ys = np.arange(0, h - side + 1, step)
    xs = np.arange(0, w - side + 1, step)
    changed = _window_sums(diff, side, ys, xs)
    score = changed * _window_sums(grad, side, ys, xs)
    if not score.any():
        score = changed
    iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)  # first maximum: stable
    mean = float(changed[iy, ix]) / (side * side * before.shape[2])
    return (int(xs[ix]) * factor, int(ys[iy]) * factor, side * factor, side * factor), mean


def moves_pixels(ctx: ReportContext, run: RunRecord) -> bool:
    """Whether a step moves pixels within the frame (a rotation, warp or resampling of one
    frame; registration onto a reference frame keeps that frame's coordinates)."""
    for step in run.steps:
        effect = step.get("effect") or step.applied(ctx.case.store)[0].get("effect")
        if effect in ("geometry", "resampled") and not step.get("temporal"):
            return True
    return False


def _region(
    ctx: ReportContext, run: RunRecord, b8: NDArray[np.uint8], a8: NDArray[np.uint8]
) -> tuple[tuple[int, int, int, int], str] | None:
    """The region to magnify and why: a step's region when the recipe names one, else where
    the output differs most from the input. None when the two are not the same size (a crop,
    a warp or a resize: the same pixel coordinates are not the same place)."""
    if b8.shape != a8.shape or moves_pixels(ctx, run):
        return None
    h, w = a8.shape[:2]
    roi = next((s["roi"] for s in run.steps if s.get("roi")), None)
    if roi:
        x, y, rw, rh = (int(v) for v in roi)
        x, y = min(max(0, x), w - 1), min(max(0, y), h - 1)
        return (x, y, max(1, min(rw, w - x)), max(1, min(rh, h - y))), "the region the recipe names"
    box, mean = changed_region(b8, a8)
    return box, (
        f"chosen where the output changed most where it has detail (mean difference "
        f"{mean:.1f} of 255)"
    )


@dataclass(frozen=True)
class RunPictures:
    """The pictures of a run's section, decoded, reduced and encoded (the costly part of a
    report, done for every run at once in worker threads: `prepare_pictures`)."""

    before_shape: tuple[int, ...]
    after_shape: tuple[int, ...]
    note: str
    found: tuple[tuple[int, int, int, int], str] | None  # the magnified region and why
    shown_b: Flowable
    shown_a: Flowable
    zoom_b: Flowable | None
    zoom_a: Flowable | None
    pixel_mm: float  # the printed size of one magnified source pixel
    tinted: Flowable  # the provenance overlay
    factor: int  # the overlay's reduction


def prepare_pictures(ctx: ReportContext, run: RunRecord) -> RunPictures:
    """Decode a run's input, output and provenance map (hashes checked), choose the region
    to magnify and encode every preview of its section. Reads only; safe in a worker thread
    (OpenCV's decoder, numpy, Pillow's encoder and zlib release the GIL)."""
    before, after, pmap, note = _before_after(ctx, run)
    b8, a8 = to_rgb8(before), to_rgb8(after)
    found = _region(ctx, run, b8, a8)
    box = None if found is None else found[0]
    wide = a8.shape[1] > 1.3 * a8.shape[0]  # landscape: one above the other, full width
    half = (TEXT_W - 6 * mm) / 2
    width, height = (TEXT_W, 92 * mm) if wide else (half, 105 * mm)
    zoom_b = zoom_a = None
    pixel_mm = 0.0
    if found is not None:
        zoom_b, pixel_mm = magnified(b8, found[0], half, 80 * mm)
        zoom_a, _ = magnified(a8, found[0], half, 80 * mm)
    # Tinted at the preview's size: each block shows the most severe class it holds.
    factor = preview_factor(a8.shape, half, half * a8.shape[0] / a8.shape[1])
    tinted = overlay(reduce_pixels(a8, factor), reduce_classes(pmap, factor))
    return RunPictures(
        before_shape=b8.shape,
        after_shape=a8.shape,
        note=note,
        found=found,
        shown_b=image_flowable(b8, width, height, box=box),
        shown_a=image_flowable(a8, width, height, box=box),
        zoom_b=zoom_b,
        zoom_a=zoom_a,
        pixel_mm=pixel_mm,
        tinted=image_flowable(tinted, half, 90 * mm),
        factor=factor,
    )


#: Worker threads that prepare the runs' pictures ahead of the layout (each holds about three
#: decoded frames at a time).
PICTURE_WORKERS = min(4, os.cpu_count() or 1)


@contextlib.contextmanager
def pictures_ahead(ctx: ReportContext, runs: list[RunRecord]) -> Iterator[None]:
    """Prepare the pictures of ``runs`` in worker threads while the layout proceeds in order
    (`images` waits for a run's pictures when it reaches them). Each preview is a function of
    its run alone, so the bytes do not depend on the threads' timing; an error surfaces at
    the run it belongs to, as it would without the threads."""
    if len(runs) < 2 or PICTURE_WORKERS < 2:
        yield
        return
    pool = ThreadPoolExecutor(PICTURE_WORKERS, thread_name_prefix="report-pictures")
    try:
        ctx.pictures = {run.run_id: pool.submit(prepare_pictures, ctx, run) for run in runs}
        yield
    finally:
        ctx.pictures = {}
        pool.shutdown(wait=True, cancel_futures=True)


def images(ctx: ReportContext, run: RunRecord, kind: str) -> list[Any]:
    """Before and after, a magnified region, the provenance map, frames, maps, copies."""
    st = ctx.st
    ahead = ctx.pictures.get(run.run_id)
    pic = prepare_pictures(ctx, run) if ahead is None else ahead.result()
    b8_shape, a8_shape, note, found = pic.before_shape, pic.after_shape, pic.note, pic.found
    box = None if found is None else found[0]
    wide = a8_shape[1] > 1.3 * a8_shape[0]  # landscape: one above the other, full width
    half = (TEXT_W - 6 * mm) / 2
    height = 92 * mm if wide else 105 * mm
    source = "output of " + run.source_run if run.source_run else "evidence " + run.exhibit_id
    shown_b, shown_a = pic.shown_b, pic.shown_a
    cap_b = para(
        f"Before: {source}, {b8_shape[1]}×{b8_shape[0]} px" + (f", {note}" if note else ""),
        st.caption,
    )
    cap_a = para(f"After: output {run.run_id}, {a8_shape[1]}×{a8_shape[0]} px", st.caption)
    if found is not None:
        scale_note = "Both images show the whole picture at the same scale" + (
            "; the yellow box marks the region magnified below." if box else "."
        )
    else:
        scale_note = (
            f"The output ({a8_shape[1]}×{a8_shape[0]} px) and its input ({b8_shape[1]}×"
            f"{b8_shape[0]} px) are not the same view of the scene (the recipe crops, warps "
            "or resizes), so they are not shown at the same scale: each fills its frame."
        )
    grid_rows = (
        [[shown_b], [cap_b], [shown_a], [cap_a]]
        if wide
        else [
            [shown_b, shown_a],
            [cap_b, cap_a],
        ]
    )
    widths = [TEXT_W] if wide else [half + 3 * mm] * 2
    out: list[Any] = [
        CondPageBreak(2 * height + 25 * mm if wide else height + 25 * mm),
        para("Before and after", st.h2),
        Table(grid_rows, colWidths=widths),
        para(scale_note, st.caption),
    ]
    if found is not None:
        (x, y, w, h), why = found
        zb, za, size_mm = pic.zoom_b, pic.zoom_a, pic.pixel_mm
        out += [
            KeepTogether(
                [
                    para(f"Magnified region: x={x}, y={y}, {w}×{h} px ({why})", st.h2),
                    Table(
                        [[zb, za], [para("Before", st.caption), para("After", st.caption)]],
                        colWidths=[half + 3 * mm] * 2,
                    ),
                    para(
                        f"Each pixel is printed as a square of {size_mm:.2f} mm, by repetition "
                        "(no interpolation).",
                        st.caption,
                    ),
                ]
            )
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
    factor = pic.factor
    out += [
        CondPageBreak(80 * mm),
        para("Provenance map (what happened to each output pixel)", st.h2),
        Table(
            [[pic.tinted, legend_table]],
            colWidths=[half + 3 * mm, half + 3 * mm],
        ),
        para(
            "Grey: original pixels; tints mark the class of each pixel (in this preview, of "
            f"each block of {factor}×{factor} pixels, its most severe class). The map itself "
            "is attached, losslessly, with its SHA-256."
            if factor > 1
            else "Grey: original pixels; tints mark the class of each pixel. The map itself is "
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
            image_flowable(p8, TEXT_W, 110 * mm),
            para(f"{pres['file']}, sha256 {pres['sha256']}", st.caption),
        ]
    if run.get("output", {}).get("presentation"):
        pres = run["output"]["presentation"]
        shown = decode_checked(ctx.case, pres, f"run {run.run_id} presentation copy")
        p8 = to_rgb8(shown)
        out += [
            CondPageBreak(90 * mm),
            para("Labelled presentation copy", st.h2),
            image_flowable(p8, TEXT_W, 110 * mm),
            para(f"sha256 {pres['sha256']}", st.caption),
        ]
    return out


def frame_table(ctx: ReportContext, run: RunRecord) -> list[Any]:
    """A video run's output frames with full hashes (the first `FRAME_ROWS`; all are
    attached)."""
    st, store, what = ctx.st, ctx.case.store, f"run {run.run_id}"
    outputs = load_artifact(store, run["frames"], what=what)
    pts = {i["frame"]: i.get("pts") for i in load_artifact(store, run["inputs"], what=what)}
    head = [[para(h, st.cell) for h in ("Frame", "PTS", "Output pixel hash", "Frame hash")]]
    shown = outputs[:FRAME_ROWS]
    table = head + [
        [
            para(str(o["frame"]), st.cell),
            para(str(pts.get(o["frame"])), st.cell),
            para(o["output"]["pixel_sha256"], st.hash_pair),
            para(o["output"]["frame_sha256"], st.hash_pair),
        ]
        for o in shown
    ]
    video = run.output["video"]["file"]
    note = (
        f"The first {FRAME_ROWS} of {len(outputs)} frames; all are in "
        if len(outputs) > FRAME_ROWS
        else "All frames; also in "
    ) + (
        f"{attachment_name(run['frames']['file'])} (attached). The pixel hash is the canonical "
        "hash of the frame's samples (docs/spec.md 2.2); the frame hash is the SHA-256 of the "
        "decoded frame as FFmpeg prints it for the stored output video: "
        f"ffmpeg -i {PurePosixPath(video).name} -f framehash -hash sha256 - "
        "(and as ingesting the video, or its lossless export, records it)."
    )
    hash_w = (TEXT_W - 24 * mm) / 2
    return [
        para("Output frames", st.h2),
        grid(table, [12 * mm, 12 * mm, hash_w, hash_w]),
        para(note, st.caption),
    ]


def _map_cells(ctx: ReportContext, heats: list[tuple[str, NDArray[np.uint16], str]]) -> list[Any]:
    """Maps two to a row at half width, each with its caption and colour scale."""
    st = ctx.st
    half = (TEXT_W - 6 * mm) / 2
    cells: list[Any] = []
    for title, raw, where in heats:
        heat, top, peak = heat_map(raw)
        cells.append(
            [
                image_flowable(heat, half, 78 * mm),
                para(f"{title}; {where}", st.caption),
                heat_legend(top, peak, st, half),
            ]
        )
    rows = [cells[i : i + 2] for i in range(0, len(cells), 2)]
    rows[-1] += [""] * (2 - len(rows[-1]))
    return [Table(rows, colWidths=[half + 3 * mm] * 2)]


MAP_TITLES = {
    "inferred_content": "Inferred content (difference from the classical baseline)",
    "uncertainty": "Uncertainty (spread over perturbed runs)",
    "consistency": "Data consistency (output degraded again vs. the input)",
}


def maps(ctx: ReportContext, run: RunRecord) -> list[Any]:
    """What each generative step invented: its inferred-content, uncertainty and consistency
    maps (the first frame of a video run), each scaled for display with its colour scale."""
    st = ctx.st
    out: list[Any] = []
    scale_note = para(
        "Each map is scaled for display: black is 0 and white the value that 99.5% of its "
        "pixels do not exceed (printed under it, as a share of full scale, with the map's "
        "maximum), so one extreme pixel does not leave the rest black. The full-precision "
        "16-bit maps are attached.",
        st.caption,
    )
    for step in run.steps:
        for record in step.applied(ctx.case.store):
            meta = record.get("maps")
            if not meta:
                continue
            if "frames" in meta and "files" not in meta:
                heats = []
                for key in ("inferred_content", "uncertainty", "consistency"):
                    video = step["maps"][key]
                    raw = read_stored_frame(ctx.case.store, video, meta["frames"][key]["stored"])
                    heats.append(
                        (
                            f"{MAP_TITLES[key]}, frame {record['frame']}",
                            np.asarray(raw, np.uint16),
                            attachment_name(str(video["file"])),
                        )
                    )
                out += [
                    CondPageBreak(150 * mm),
                    para(f"Generative maps, {step['op']} (first frame)", st.h2),
                    *_map_cells(ctx, heats),
                    scale_note,
                    *flicker_rows(ctx, step.get("temporal_consistency")),
                ]
                break
            heats = [
                (
                    MAP_TITLES[key],
                    tiff16(ctx.case, meta["files"][key], key),
                    f"sha256 {meta['files'][key]['sha256']}",
                )
                for key in ("inferred_content", "uncertainty", "consistency")
            ]
            frame = "" if record.get("frame") is None else f", frame {record['frame']}"
            unc = meta.get("uncertainty", {})
            out += [
                CondPageBreak(150 * mm),
                para(f"What step {step['step']} ({step['op']}) invented{frame}", st.h2),
                *_map_cells(ctx, heats),
                scale_note,
                kv_table(
                    [
                        ("Baseline", meta.get("baseline", "")),
                        (
                            "Uncertainty",
                            f"{unc.get('runs')} runs, seeds {unc.get('seeds')}; "
                            f"{unc.get('perturbation', '')}"
                            + (f"; cost: {unc['cost']}" if unc.get("cost") else ""),
                        ),
                        ("Consistency", meta.get("consistency_model", "")),
                        ("Means", params_text(meta.get("summary", {}))),
                    ],
                    st,
                ),
            ]
    return out


def flicker_rows(ctx: ReportContext, figure: Mapping[str, Any] | None) -> list[Any]:
    """A generative video step's temporal consistency (docs/spec.md: the flicker factor)."""
    if not figure:
        return []
    return [
        kv_table(
            [
                (
                    "Flicker factor",
                    f"{float(figure['flicker_factor']):.3f} (1 = outputs change from frame to "
                    "frame as much as the inputs; above 1 = the step adds flicker); worst pair "
                    f"{float(figure['max_pair_ratio']):.3f}",
                ),
                (
                    "Warping error",
                    f"outputs {float(figure['warping_error_output']):.3e}, inputs "
                    f"{float(figure['warping_error_input']):.3e}, mean over "
                    f"{figure['pairs']} consecutive pairs; "
                    f"{100 * float(figure['valid_fraction']):.1f}% of pixels valid",
                ),
                ("Method", str(figure.get("method", ""))),
            ],
            ctx.st,
        )
    ]


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


def manifest_text(manifest: Mapping[str, Any]) -> str:
    """An ONNX model's declared manifest in one line, for its step's row."""
    size = manifest.get("input_size") or "any"
    parts = [
        f"task {manifest.get('task')}",
        f"{manifest.get('layout', 'NCHW')} {manifest.get('channels')}",
        f"input range {manifest.get('input_range')}",
        f"output range {manifest.get('output_range')}",
        f"scale {manifest.get('scale')}",
        f"input size {size}",
    ]
    if manifest.get("mask"):
        parts.append(f"mask {manifest['mask']}")
    return "; ".join(parts)


def _listed(value: Any) -> str:
    """A recorded value as text (a list, e.g. an ONNX step's providers, comma-separated)."""
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

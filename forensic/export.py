"""Exports: a run's output leaves the case as a file an examiner can hand on, and the journal
says exactly which bytes left.

Formats:

* ``ffv1``: lossless FFV1 in Matroska (video runs). Without burn-in the run's stored output
  video's packets are copied unchanged into a file with a seek index, so ingesting the export
  gives per-frame hashes equal to those journaled for the output (``frame_sha256`` in the
  run's output frame list).
* ``png``: one lossless PNG per output frame (``frame_000123.png``, named by source frame
  index) plus ``frames.json`` listing each file's SHA-256 and pixel hash; a still-image run
  exports its stored output.
* ``h264``: an H.264 presentation copy (yuv420p, BT.709, limited range). It is *lossy*: the
  journal and the report say so, and it is never evidence.

``burn_in`` draws the frame number and timecode into a corner box of each exported frame (a
copy; the stored output never changes); the export's hashes are then those of the burnt-in
frames. Every export is journaled (``export`` entry) before the command returns; the output
file or folder is written atomically and never overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from forensic.case import Case
from forensic.errors import InputError
from forensic.fsutil import fsync_dir, write_refused
from forensic.hashing import image_hash, merkle_root, sha256_file, sha256_hex
from forensic.journal import canonical
from forensic.keys import Signer
from forensic.media import analyse_video
from forensic.pipeline.sources import recorded_output
from forensic.pipeline.still import encode_lossless
from forensic.pki import ReportSigner
from forensic.records import RunRecord, StepRecord, find_exhibit, find_run, load_artifact
from forensic.versions import tool_version

FORMATS = ("ffv1", "png", "h264")
EXPORT_FORMAT = "forensic-export/1"


def _frames(case: Case, run: RunRecord) -> Iterator[tuple[dict[str, Any], Any]]:
    """(output frame record, pixels) of a run, in order, each checked against its hash."""
    from forensic.videoio import read_video

    if not run.is_video:
        pixels = recorded_output(case.store, run["output"])
        if pixels is None:
            raise InputError(f"run {run['run']}: its stored output is missing or altered")
        yield {"frame": None, "output": run["output"]}, pixels
        return
    records = load_artifact(case.store, run["frames"], what=f"run {run['run']} output frame")
    video = run["output"]["video"]
    if case.store.file_sha256(video["file"]) != video["sha256"]:
        raise InputError(f"run {run['run']}: its output video {video['file']} was altered")
    path = case.store.local_path(video["file"])
    for record, pixels in zip(records, read_video(path), strict=True):
        if image_hash(pixels) != record["output"]["pixel_sha256"]:
            raise InputError(f"run {run['run']}: frame {record['frame']} of its video differs")
        yield record, pixels


def _timecode(case: Case, run: RunRecord, frame: int | None) -> tuple[str, Any]:
    from forensic.videoio import timecode

    if frame is None:
        return "--:--:--.---", None
    exhibit = find_exhibit(case.entries(), run.exhibit_id, case_id=case.case_id)
    record = exhibit.frames[frame]
    base = exhibit.facts.get("time_base") or "1/25"
    if record.get("pts") is None:
        return "--:--:--.---", None
    return timecode(record["pts"], base), record["pts"]


def _refuse_inside_case(case: Case, out: Path) -> None:
    """An export leaves the case: writing it into the case folder (``evidence/``, ``derived/``
    or anywhere else inside, also through a symbolic link) would plant an unrecorded file
    among the recorded ones."""
    root = case.root.resolve()
    parent = out.parent.resolve()
    if parent == root or root in parent.parents:
        raise InputError(
            f"--out {out} is inside the case folder {case.root}: an export is written outside "
            "the case",
            hint="choose a path outside the case folder; the journal records what was exported",
        )


def export_run(
    case: Case,
    run_id: str,
    *,
    fmt: str,
    out: Path,
    burn_in: bool,
    signer: Signer,
    now: datetime,
) -> dict[str, Any]:
    """Write a run's output to ``out`` in ``fmt`` and journal an ``export`` entry."""
    from forensic.videoio import FFV1Writer, H264Writer, remux_indexed
    from forensic.videoio import burn_in as draw

    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    run = find_run(case.entries(), run_id, case_id=case.case_id)
    video = run.is_video
    if not video and fmt != "png":
        raise InputError(
            f"run {run['run']} made a still image: export it as png, not {fmt}",
        )
    if not video and burn_in:
        # Nothing would be drawn, yet the journal would call the export a burnt-in copy.
        raise InputError(
            f"run {run['run']} made a still image: --burn-in draws frame numbers and "
            "timecodes, which a still has none of",
            hint="leave out --burn-in",
        )
    if out.exists() or out.is_symlink():
        raise InputError(f"{out} already exists; exports never overwrite", hint="choose a new path")
    _refuse_inside_case(case, out)  # before any folder is made
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError(f"--out {out}: {out.parent} is a file, not a folder")
    rate = Fraction(str(run.get("output", {}).get("rate") or _rate(case, run)))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # like `mkdir -p`
        tmp_dir = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=out.parent))
    except OSError as exc:
        raise write_refused(out.parent, exc, what=f"--out {out}") from None
    try:
        frame_hashes: list[str] = []
        pixel_hashes: list[str] = []
        listing: list[dict[str, Any]] = []
        target = tmp_dir / ("frames" if fmt == "png" else out.name)
        if fmt == "ffv1" and not burn_in:
            # The stored video's packets, unchanged, in an indexed file players can seek in.
            remux_indexed(case.store.local_path(run["output"]["video"]["file"]), target)
            for record, _ in _frames(case, run):
                frame_hashes.append(record["output"]["frame_sha256"])
                pixel_hashes.append(record["output"]["pixel_sha256"])
        elif fmt in ("ffv1", "h264"):
            writer: Any = (FFV1Writer if fmt == "ffv1" else H264Writer)(target, rate=rate)
            with writer:
                for record, pixels in _frames(case, run):
                    if burn_in:
                        text, _ = _timecode(case, run, record["frame"])
                        pixels = draw(pixels, frame_index=int(record["frame"]), timecode=text)
                    digest = writer.write(pixels)
                    if digest is not None:
                        frame_hashes.append(digest)
                    pixel_hashes.append(image_hash(pixels))
        else:
            target.mkdir()
            for record, pixels in _frames(case, run):
                if burn_in and record["frame"] is not None:
                    text, _ = _timecode(case, run, record["frame"])
                    pixels = draw(pixels, frame_index=int(record["frame"]), timecode=text)
                name = (
                    "image.png" if record["frame"] is None else f"frame_{record['frame']:06d}.png"
                )
                listing.append(_write_png(target / name, pixels, record["frame"]))
                pixel_hashes.append(listing[-1]["pixel_sha256"])
            (target / "frames.json").write_bytes(
                json.dumps(listing, indent=1, sort_keys=True).encode() + b"\n"
            )
        payload: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "run": run["run"],
            "exhibit": run["exhibit"],
            "export_format": fmt,
            "lossless": fmt != "h264",
            "evidence_copy": fmt != "h264" and not burn_in,
            "burn_in": burn_in,
            "name": out.name,
            "frames": len(pixel_hashes),
            "pixel_merkle_root": merkle_root([bytes.fromhex(h) for h in pixel_hashes]),
            "tainted": bool(run.get("tainted")),
        }
        if fmt == "h264":
            payload["note"] = (
                "lossy H.264 presentation copy: its pixels differ from the output; not evidence"
            )
        if fmt == "png":
            digest, size = sha256_file(target / "frames.json")
            payload["listing"] = {"name": "frames.json", "sha256": digest, "size": size}
            payload["files"] = {
                "count": len(listing),
                "merkle_root": merkle_root([bytes.fromhex(x["sha256"]) for x in listing]),
            }
        else:
            digest, size = sha256_file(target)
            payload["file"] = {"sha256": digest, "size": size}
            # What ingesting the exported file will record: decode it as ingest does. For a
            # lossless export this must equal the frame hashes known before writing.
            written = analyse_video(target, where=f"export {out.name}")
            if fmt == "ffv1" and [f["sha256"] for f in written.frames] != frame_hashes:
                raise RuntimeError("internal error: the lossless export did not round-trip")
            payload["frame_hashes_root"] = written.pixel_hash["sha256"]
        _journal_then_deliver(case, signer, payload, target, out, now=now)
        return payload
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _journal_then_deliver(
    case: Case, signer: Signer, payload: dict[str, Any], target: Path, out: Path, *, now: datetime
) -> None:
    """Journal the ``export`` entry, then rename the written file into place: a crash in
    between leaves a recorded export that was not delivered, never an export that is not
    recorded."""
    with case.writer(signer) as writer:
        writer.stage("export", payload, now=now)
        writer.commit(now=now)
    os.replace(target, out)
    fsync_dir(out.parent)


def _write_png(path: Path, pixels: Any, frame: int | None) -> dict[str, Any]:
    data, suffix = encode_lossless(pixels)
    if suffix != ".png":
        path = path.with_suffix(suffix)
    path.write_bytes(data)
    digest, size = sha256_file(path)
    return {
        "frame": frame,
        "file": path.name,
        "sha256": digest,
        "size": size,
        "pixel_sha256": image_hash(pixels),
    }


def _rate(case: Case, run: RunRecord) -> str:
    exhibit = find_exhibit(case.entries(), run.exhibit_id, case_id=case.case_id)
    return str(exhibit.facts.get("average_rate") or "25")


# -- C2PA Content Credentials (docs/spec.md, section "C2PA Content Credentials") --------------

#: The C2PA action that stands for each operation (``c2pa.actions.v2``; C2PA 2.2 §18.14).
#: ``c2pa.redacted`` is not used for pixel redaction: in C2PA it records that an *assertion*
#: was removed from a manifest (c2pa-rs refuses it without a reference to that assertion), so
#: a redacted region is ``c2pa.edited`` with the C2PA redaction ``reason``. An analysis step
#: changes no pixel and gets forensic's own ``forensic.analysed``. tests/test_c2pa.py fails
#: when an operation of either lane is missing here.
C2PA_ACTIONS: dict[str, str] = {
    # exposure and colour: tone, levels, white balance, channels
    "brightness_contrast": "c2pa.color_adjustments",
    "channel_extract": "c2pa.color_adjustments",
    "channel_mix": "c2pa.color_adjustments",
    "clahe": "c2pa.color_adjustments",
    "equalize_histogram": "c2pa.color_adjustments",
    "flat_field": "c2pa.color_adjustments",
    "invert": "c2pa.color_adjustments",
    "levels": "c2pa.color_adjustments",
    "stretch_channels": "c2pa.color_adjustments",
    "white_balance": "c2pa.color_adjustments",
    # filters: noise, blur, sharpness, interlacing, screens, dust
    "average_frames": "c2pa.filtered",
    "deconvolve_richardson_lucy": "c2pa.filtered",
    "deconvolve_unsupervised_wiener": "c2pa.filtered",
    "deconvolve_wiener": "c2pa.filtered",
    "deinterlace_blend": "c2pa.filtered",
    "deinterlace_double": "c2pa.filtered",
    "denoise_bilateral": "c2pa.filtered",
    "denoise_bm3d": "c2pa.filtered",
    "denoise_frames": "c2pa.filtered",
    "denoise_gaussian": "c2pa.filtered",
    "denoise_median": "c2pa.filtered",
    "denoise_nl_means": "c2pa.filtered",
    "denoise_tv": "c2pa.filtered",
    "denoise_wavelet": "c2pa.filtered",
    "descreen": "c2pa.filtered",
    "lens_distortion": "c2pa.filtered",
    "repair_film_dust": "c2pa.filtered",
    "sharpen_laplacian": "c2pa.filtered",
    "unsharp_mask": "c2pa.filtered",
    # geometry
    "crop": "c2pa.cropped",
    "field_extract": "c2pa.resized",
    "pixel_aspect": "c2pa.resized",
    "resize": "c2pa.resized",
    "super_resolve_frames": "c2pa.resized",
    "flip": "c2pa.orientation",
    "orient": "c2pa.orientation",
    "rotate": "c2pa.orientation",
    "perspective": "c2pa.orientation",
    "register_frames": "c2pa.orientation",
    "stabilise": "c2pa.orientation",
    # redaction and analysis
    "redact_blur": "c2pa.edited",
    "redact_fill": "c2pa.edited",
    "redact_pixelate": "c2pa.edited",
    "detect_defects": "forensic.analysed",
    # the generative lane
    "generative.face_restoration": "c2pa.edited",
    "generative.fill_defects": "c2pa.edited",
    "generative.inpaint_learned": "c2pa.edited",
    "generative.inpaint_ns": "c2pa.edited",
    "generative.onnx_super_resolution": "c2pa.resized",
    "generative.inpaint_telea": "c2pa.edited",
    "generative.super_resolution": "c2pa.resized",
    "generative.user_model": "c2pa.resized",
}
#: The reasons C2PA 2.2 defines for a redaction (``reason`` of the action).
REDACTION_REASONS = (
    "c2pa.PII.present",
    "c2pa.invalid.data",
    "c2pa.trade-secret.present",
    "c2pa.government.confidentiality",
)
#: The label of forensic's assertion binding the manifest to the case journal.
JOURNAL_ASSERTION = "forensic.journal"
JOURNAL_ASSERTION_FORMAT = "forensic-c2pa-journal/1"
#: At most this many rectangles describe a region; more components get one bounding box.
MAX_REGION_RECTANGLES = 32


def _source_type(kind: str) -> str:
    from forensic.interop.c2pa import IPTC_SOURCE_TYPES

    return IPTC_SOURCE_TYPES + kind


def _step_source_type(step: StepRecord) -> str | None:
    """IPTC digital source type of one step's pixels: a classical step enhances by algorithm;
    a generative one invents pixels, from a trained model when it ran recorded weights
    (``trainedAlgorithmicMedia``), or by a formula without training data (Telea and
    Navier-Stokes inpainting: ``algorithmicMedia``). An analysis step changes no pixel."""
    if C2PA_ACTIONS[step.op] == "forensic.analysed":
        return None
    if step.lane != "generative":
        return _source_type("algorithmicallyEnhanced")
    trained = step.model.get("weights_sha256") is not None
    return _source_type("trainedAlgorithmicMedia" if trained else "algorithmicMedia")


def _regions(mask: Any, what: str, frames: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The true pixels of ``mask`` as C2PA regions of interest: one rectangle per connected
    component (in the exported image's pixels), or their bounding rectangle when there are
    more than `MAX_REGION_RECTANGLES`; with ``frames`` (first, last position in the exported
    video), each region also names that frame range."""
    import cv2
    import numpy as np

    mask = np.asarray(mask).astype(np.uint8)
    if not mask.any():
        return []
    found, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes = [tuple(int(v) for v in stats[i][:4]) for i in range(1, found)]
    if len(boxes) > MAX_REGION_RECTANGLES:
        ys, xs = np.nonzero(mask)
        x0, y0 = int(xs.min()), int(ys.min())
        boxes = [(x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1)]
        what += f" (bounding rectangle of {found - 1} separate areas)"
    timing = [{"type": "frame", "frame": {"start": frames[0], "end": frames[1]}}] if frames else []
    return [
        {
            "region": [
                *timing,
                {
                    "type": "spatial",
                    "shape": {
                        "type": "rectangle",
                        "unit": "pixel",
                        "origin": {"x": x, "y": y},
                        "width": w,
                        "height": h,
                    },
                },
            ],
            "description": what,
        }
        for x, y, w, h in boxes
    ]


#: What the regions of each marked provenance class say.
_REGION_TEXT = {"inferred": "pixels inferred, not measured", "redacted": "pixels redacted"}


def _still_regions(case: Case, run: RunRecord) -> dict[str, list[dict[str, Any]]]:
    from forensic import provenance
    from forensic.media import decode_image

    where = f"run {run.run_id} provenance map"
    pmap, _ = decode_image(case.store.read_checked(run.provenance, where), where=where)
    return {
        name: _regions(pmap == provenance.CLASSES.index(name), text)
        for name, text in _REGION_TEXT.items()
    }


def _video_regions(case: Case, run: RunRecord) -> dict[str, list[dict[str, Any]]]:
    """Regions over a video: per class, the union of its pixels over the frames that have
    any (found from the per-frame counts; the provenance video is decoded only then), with
    the range of those frames' positions."""

    from forensic import provenance
    from forensic.videoio import read_video

    records = load_artifact(case.store, run["frames"], what=f"run {run.run_id} output frame")
    marked = {
        name: [i for i, r in enumerate(records) if r["provenance"]["counts"].get(name, 0) > 0]
        for name in _REGION_TEXT
    }
    if not any(marked.values()):
        return {name: [] for name in _REGION_TEXT}
    video = run.provenance["video"]
    if case.store.file_sha256(video["file"]) != video["sha256"]:
        raise InputError(f"run {run.run_id}: its provenance video {video['file']} was altered")
    union: dict[str, Any] = {}
    for position, pmap in enumerate(read_video(case.store.local_path(video["file"]))):
        for name, positions in marked.items():
            if position in positions:
                hit = pmap == provenance.CLASSES.index(name)
                union[name] = hit if name not in union else union[name] | hit
    return {
        name: (
            _regions(union[name], text, (marked[name][0], marked[name][-1])) if marked[name] else []
        )
        for name, text in _REGION_TEXT.items()
    }


def _run_chain(case: Case, run: RunRecord) -> list[RunRecord]:
    """The runs from the exhibit to ``run``: a run that started from another run's output
    follows that run's steps."""
    chain = [run]
    while chain[0].source_run is not None:
        chain.insert(0, find_run(case.entries(), chain[0].source_run, case_id=case.case_id))
    return chain


def _step_action(
    step: StepRecord, *, regions: dict[str, list[dict[str, Any]]], reason: str | None
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "action": C2PA_ACTIONS[step.op],
        "softwareAgent": tool_version(),
        "description": str((step.get("algorithm") or {}).get("summary") or step.op),
        "parameters": {
            "forensic.run": step.run_id,
            "forensic.step": step.number,
            "forensic.op": step.op,
            "forensic.op_version": step.op_version,
            "forensic.lane": step.lane,
            # JSON text: c2pa-rs turns a CBOR list of small integers into a byte string.
            "forensic.params": canonical(step.params).decode("utf-8"),
            "forensic.entry_sha256": step.entry_hash,
        },
    }
    source_type = _step_source_type(step)
    if source_type is not None:
        action["digitalSourceType"] = source_type
    if step.roi is not None:
        x, y, width, height = step.roi
        action["parameters"]["forensic.roi"] = {"x": x, "y": y, "width": width, "height": height}
    if step.frame_range is not None:
        first, last = step.frame_range
        action["parameters"]["forensic.frames"] = {"start": first, "end": last}
    if step.lane == "generative":
        action["parameters"]["forensic.model"] = dict(step.model)
        if regions["inferred"]:
            action["changes"] = regions["inferred"]
    if step.op.startswith("redact_"):
        action["reason"] = reason
        if regions["redacted"]:
            action["changes"] = regions["redacted"]
    return action


def c2pa_definition(
    case: Case,
    run: RunRecord,
    *,
    title: str,
    media_type: str,
    regions: dict[str, list[dict[str, Any]]],
    redaction_reason: str | None,
) -> dict[str, Any]:
    """The C2PA manifest definition of a run's output (docs/spec.md, section "C2PA Content
    Credentials"); ``regions`` are the exported asset's inferred and redacted pixels."""
    import mimetypes

    from forensic.journal import entries_root

    entries = case.entries()
    exhibit = find_exhibit(entries, run.exhibit_id, case_id=case.case_id)
    chain = _run_chain(case, run)
    steps = [step for r in chain for step in r.steps]
    counts = dict(run.provenance.get("counts") or {})
    trained = any(
        s.lane == "generative" and s.model.get("weights_sha256") is not None for s in steps
    )
    if int(counts.get("inferred", 0)) > 0:
        whole = "compositeWithTrainedAlgorithmicMedia" if trained else "compositeSynthetic"
    else:
        whole = "algorithmicallyEnhanced"
    actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["exhibit"]}}]
    actions += [_step_action(s, regions=regions, reason=redaction_reason) for s in steps]
    seq = {e.hash: e.seq for e in entries}
    journal = {
        "format": JOURNAL_ASSERTION_FORMAT,
        "case_id": case.case_id,
        # The journal as it stood when the manifest was signed: its first `count` entries
        # have this RFC 9162 Merkle root and end with `head` (entry `count - 1`).
        "checkpoint": {
            "count": len(entries),
            "root": entries_root(entries),
            "head": entries[-1].hash,
        },
        "runs": [
            {"run": r.run_id, "entry_seq": seq[r.entry_hash], "entry_sha256": r.entry_hash}
            for r in chain
        ],
        "exhibit": {
            "exhibit": exhibit.exhibit_id,
            "sha256": exhibit.sha256,
            "pixel_sha256": exhibit.pixel_sha256,
        },
        "output": (
            {
                "frames": run.frame_count,
                "pixel_merkle_root": run.output["merkle_root"],
                "frame_hashes_root": run.output["video"]["frame_hashes_root"],
                "stored_sha256": run.output["video"]["sha256"],
            }
            if run.is_video
            else {
                "pixel_sha256": run.output["pixel_sha256"],
                "stored_sha256": run.output["sha256"],
            }
        ),
        "provenance": {
            "map_sha256": (run.provenance["video"] if run.is_video else run.provenance)["sha256"],
            "counts": counts,
        },
        "tainted": any(r.tainted for r in chain),
        "asset_digital_source_type": _source_type(whole),
    }
    return {
        "claim_generator_info": [tool_version()],
        "title": title,
        "format": media_type,
        "ingredients": [
            {
                "title": exhibit.name,
                "format": mimetypes.guess_type(exhibit.name)[0] or "application/octet-stream",
                "relationship": "parentOf",
                "label": "exhibit",
                "instance_id": f"urn:forensic:sha256:{exhibit.sha256}",
                "description": f"exhibit {exhibit.exhibit_id} of case {case.case_id} "
                f"(SHA-256 {exhibit.sha256})",
            }
        ],
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": actions}},
            {
                "label": "c2pa.metadata",
                "data": {
                    "@context": {"Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"},
                    "Iptc4xmpExt:DigitalSourceType": _source_type(whole),
                },
            },
            {"label": JOURNAL_ASSERTION, "data": journal},
        ],
    }


def _examiner_chain(report_signer: ReportSigner) -> str:
    from cryptography.hazmat.primitives import serialization

    return "".join(
        c.public_bytes(serialization.Encoding.PEM).decode("ascii")
        for c in (report_signer.certificate, report_signer.ca_certificate)
    )


def export_c2pa(
    case: Case,
    run_id: str,
    *,
    out: Path,
    sidecar: bool,
    redaction_reason: str | None,
    signer: Signer,
    report_signer: ReportSigner,
    now: datetime,
) -> dict[str, Any]:
    """Write a run's output into the new folder ``out`` with C2PA Content Credentials, signed
    with the examiner's report certificate, and journal an ``export`` entry. A still run gives
    ``<run>.png`` (``.tif`` for 16 bits); a video run ``<run>.mp4``, its stored FFV1 packets
    unchanged in an MP4 (C2PA cannot be embedded in Matroska). With ``sidecar`` the manifest
    is ``<run>.c2pa`` beside the unchanged file."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from forensic.interop import c2pa as c2pa_io
    from forensic.media import decode_image
    from forensic.videoio import remux_indexed

    run = find_run(case.entries(), run_id, case_id=case.case_id)
    if redaction_reason is not None and redaction_reason not in REDACTION_REASONS:
        raise InputError(
            f"--redaction-reason {redaction_reason!r} is not one of {', '.join(REDACTION_REASONS)}"
        )
    chain_steps = [s for r in _run_chain(case, run) for s in r.steps]
    redactions = [s for s in chain_steps if s.op.startswith("redact_")]
    if redactions and redaction_reason is None:
        raise InputError(
            f"run {run.run_id} redacts pixels (step {redactions[0].number}, "
            f"{redactions[0].op}): C2PA records why",
            hint=f"give --redaction-reason, one of {', '.join(REDACTION_REASONS)}",
        )
    if out.exists() or out.is_symlink():
        raise InputError(f"{out} already exists; exports never overwrite", hint="choose a new path")
    _refuse_inside_case(case, out)
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError(f"--out {out}: {out.parent} is a file, not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=out.parent))
    try:
        if run.is_video:
            suffix, regions = ".mp4", _video_regions(case, run)
            video = run.output["video"]
            if case.store.file_sha256(video["file"]) != video["sha256"]:
                raise InputError(f"run {run.run_id}: its output video {video['file']} was altered")
            unsigned = tmp_dir / f"unsigned{suffix}"
            remux_indexed(case.store.local_path(video["file"]), unsigned, container="mp4")
        else:
            pixels = recorded_output(case.store, run.output)
            if pixels is None:
                raise InputError(f"run {run.run_id}: its stored output is missing or altered")
            data, suffix = encode_lossless(pixels)
            regions = _still_regions(case, run)
            unsigned = tmp_dir / f"unsigned{suffix}"
            unsigned.write_bytes(data)
        media_type = c2pa_io.MEDIA_TYPES[suffix]
        name = f"{run.run_id}{suffix}"
        definition = c2pa_definition(
            case,
            run,
            title=name,
            media_type=media_type,
            regions=regions,
            redaction_reason=redaction_reason,
        )
        anchors = report_signer.ca_certificate.public_bytes(serialization.Encoding.PEM).decode()

        def sign_es256(message: bytes) -> bytes:
            return report_signer.key.sign(message, ec.ECDSA(hashes.SHA256()))

        target = tmp_dir / out.name
        target.mkdir()
        asset = target / name
        manifest = c2pa_io.sign(
            definition,
            unsigned,
            asset,
            media_type,
            certificate_chain_pem=_examiner_chain(report_signer),
            sign_es256=sign_es256,
            trust_anchors_pem=anchors,
            sidecar=sidecar,
        )
        unsigned.unlink()
        # What leaves must read back as it will be read elsewhere: trusted under the lab root,
        # with the output's very pixels.
        reading = c2pa_io.read(
            asset, media_type, trust_anchors_pem=anchors, sidecar=manifest if sidecar else None
        )
        if reading.state != "Trusted":
            raise RuntimeError(f"internal error: the C2PA export reads back {reading.state}")
        if run.is_video:
            frames = load_artifact(case.store, run["frames"], what=f"run {run.run_id} frame")
            written = analyse_video(asset, where=f"export {name}")
            if [f["sha256"] for f in written.frames] != [
                r["output"]["frame_sha256"] for r in frames
            ]:
                raise RuntimeError("internal error: the C2PA video export did not round-trip")
            pixel_root = str(run.output["merkle_root"])
        else:
            back, _ = decode_image(asset.read_bytes(), where="the C2PA export")
            if image_hash(back) != run.output["pixel_sha256"]:
                raise RuntimeError("internal error: the C2PA export's pixels are not the output's")
            pixel_root = merkle_root([bytes.fromhex(run.output["pixel_sha256"])])
        asset_sha256, asset_size = sha256_file(asset)
        manifest_name = f"{run.run_id}.c2pa"
        if sidecar:
            (target / manifest_name).write_bytes(manifest)
        journal = next(a for a in definition["assertions"] if a["label"] == JOURNAL_ASSERTION)
        payload: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "run": run.run_id,
            "exhibit": run.exhibit_id,
            "export_format": f"c2pa-{suffix.lstrip('.')}",
            "lossless": True,
            "evidence_copy": True,
            "burn_in": False,
            "name": out.name,
            "frames": run.frame_count,
            "pixel_merkle_root": pixel_root,
            "tainted": run.tainted,
            "file": {"name": name, "sha256": asset_sha256, "size": asset_size},
            "c2pa": {
                "library": c2pa_io.library_version(),
                "embedded": not sidecar,
                "sidecar": manifest_name if sidecar else None,
                "manifest_sha256": sha256_hex(manifest),
                "label": reading.manifest.get("label"),
                "certificate_sha256": sha256_hex(
                    report_signer.certificate.public_bytes(serialization.Encoding.DER)
                ),
                "actions": [a["action"] for a in definition["assertions"][0]["data"]["actions"]],
                "asset_digital_source_type": journal["data"]["asset_digital_source_type"],
                "redaction_reason": redaction_reason,
                "checkpoint": journal["data"]["checkpoint"],
            },
        }
        _journal_then_deliver(case, signer, payload, target, out, now=now)
        return payload
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

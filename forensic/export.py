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
from forensic.fsutil import fsync_dir
from forensic.hashing import image_hash, merkle_root, sha256_file
from forensic.keys import Signer
from forensic.media import analyse_video
from forensic.pipeline.sources import recorded_output
from forensic.pipeline.still import encode_lossless
from forensic.records import RunRecord, find_exhibit, find_run, load_artifact

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
    if out.exists() or out.is_symlink():
        raise InputError(f"{out} already exists; exports never overwrite", hint="choose a new path")
    _refuse_inside_case(case, out)  # before any folder is made
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError(f"--out {out}: {out.parent} is a file, not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)  # like `mkdir -p`
    rate = Fraction(str(run.get("output", {}).get("rate") or _rate(case, run)))
    tmp_dir = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=out.parent))
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
        with case.writer(signer) as writer:
            writer.stage("export", payload, now=now)
            # Journal first, then the rename: a crash in between leaves a recorded export
            # that was not delivered, never an export that is not recorded.
            writer.commit(now=now)
        os.replace(target, out)
        fsync_dir(out.parent)
        return payload
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


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

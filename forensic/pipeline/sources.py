"""What a run starts from: an exhibit or a still run's output, read and checked.

`find_source` resolves ``E1`` or ``R2`` to an `ExhibitRecord`; `load_frames` reads the stored
evidence through the case store, checks its file and pixel (per-frame) hashes and decodes the
frames wanted; `read_stored_frame` decodes one frame of a stored run video. Nothing here
writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from forensic import provenance
from forensic.case import Case
from forensic.errors import CaseError, InputError, PolicyError
from forensic.hashing import image_hash, sha256_hex
from forensic.media import decode_frames, decode_image
from forensic.policy import Profile
from forensic.records import ExhibitRecord, find_exhibit, read_runs
from forensic.store import CaseStore

Image = NDArray[Any]
RUN_REF = re.compile(r"^[Rr](\d+)$")


@dataclass
class Frame:
    """A frame the steps start from: a still image (index None) or one video frame."""

    index: int | None
    image: Image
    pts: int | None = None
    source_sha256: str | None = None  # the decoded frame's own hash (video)
    source_format: str | None = None
    pmap: provenance.ProvenanceMap | None = None  # where a run's output is the input


def find_source(case: Case, ref: str) -> ExhibitRecord:
    """An exhibit (``E1``) or a still-image run's output (``R1``) as a run's input.

    A run's output is described like an exhibit, plus ``source_run`` and ``inferred`` (how
    many of its pixels are inferred: a *tainted* source, which only a profile that allows
    the generative lane may use).
    """
    entries = case.entries()
    if not RUN_REF.match(ref):
        return find_exhibit(entries, ref, case_id=case.case_id)
    wanted = ref.upper()
    recorded = read_runs(entries)
    for run in recorded:
        if run.run_id == wanted:
            return run.as_source(find_exhibit(entries, run.exhibit_id, case_id=case.case_id))
    known = ", ".join(r.run_id for r in recorded) or "none yet"
    raise InputError(f"case {case.case_id} has no run {ref!r} (runs: {known})")


def check_taint(source: ExhibitRecord, profile: Profile) -> None:
    """Inferred pixels never go back in as evidence: a tainted source needs a profile that
    allows the generative lane (and the new output stays tainted)."""
    if source.tainted and "generative" not in profile.lanes:
        raise PolicyError(
            f"the output of run {source.source_run} is tainted: it was made with generative "
            f"steps ({source['inferred']} pixels still marked inferred); profile "
            f"{profile.name!r} refuses tainted input (generative is not in "
            f"profiles.{profile.name}.lanes)",
            hint="start from the exhibit itself; inferred content is never evidence",
        )


def load_map(store: CaseStore, record: Any, label: str) -> provenance.ProvenanceMap:
    """A stored still provenance map, checked against its record."""
    rel = str(record["file"])
    try:
        data = store.read_checked(record, label)
    except CaseError:
        raise CaseError(
            f"{label}: its provenance map {rel} no longer matches its recorded hash"
        ) from None
    pmap, _ = decode_image(data, where=rel)
    return np.asarray(pmap, np.uint8)


def check_evidence_file(case: Case, exhibit: ExhibitRecord) -> None:
    """The stored evidence still has its recorded SHA-256 (streamed: videos are large)."""
    try:
        digest = case.store.file_sha256(exhibit.stored)
    except OSError as exc:
        raise CaseError(f"{exhibit.label}: cannot read {exhibit.stored}: {exc}") from None
    if digest != exhibit.sha256:
        raise CaseError(
            f"{exhibit.label}: the stored evidence no longer matches its recorded SHA-256",
            hint="run `forensic verify` on the case; nothing runs on altered evidence",
        )


def load_frames(case: Case, exhibit: ExhibitRecord, indices: list[int] | None) -> list[Frame]:
    """Read the evidence, check it against the record, decode the frames wanted."""
    label = exhibit.label
    path = case.store.local_path(exhibit.stored)
    try:
        data = case.store.read_bytes(exhibit.stored)
    except OSError as exc:
        raise CaseError(f"{label}: cannot read {path}: {exc.strerror}") from None
    if sha256_hex(data) != exhibit.sha256:
        raise CaseError(
            f"{label}: the stored evidence no longer matches its recorded SHA-256",
            hint="run `forensic verify` on the case; nothing runs on altered evidence",
        )
    if indices is None:
        pixels, _ = decode_image(data, where=label)
        if image_hash(pixels) != exhibit.pixel_sha256:
            raise CaseError(f"{label}: decoding no longer gives the recorded pixel hash")
        pmap = None
        if exhibit.source_run is not None:
            pmap = load_map(case.store, exhibit["provenance"], label)
        return [Frame(None, pixels, pmap=pmap)]
    decoded = decode_frames(path, set(indices), where=label)
    frames = []
    for index in indices:
        pixels, sha, pts, fmt = decoded[index]
        if sha != exhibit.frames[index]["sha256"]:
            raise CaseError(f"{label}: frame {index} no longer decodes to its recorded hash")
        frames.append(Frame(index, pixels, pts, sha, fmt))
    return frames


def read_stored_frame(store: CaseStore, video: Any, index: int) -> Image:
    """Frame ``index`` of a stored run video, checked against the file's recorded hash."""
    from forensic.videoio import read_video

    path = store.local_path(str(video["file"]))
    if store.file_sha256(str(video["file"])) != video["sha256"]:
        raise CaseError(f"{video['file']} no longer matches its recorded SHA-256")
    for k, pixels in enumerate(read_video(path)):
        if k == index:
            return pixels
    raise CaseError(f"{video['file']} has no frame {index}")


def recorded_output(store: CaseStore, output: Any) -> Image | None:
    """The stored copy of a recorded still output, when one exists and matches its file and
    pixel hashes; None otherwise."""
    rel = output.get("file")
    if rel is None:
        return None
    try:
        data = store.read_checked(output, "recorded output")
    except CaseError:
        return None
    pixels, _ = decode_image(data, where=rel)
    return pixels if image_hash(pixels) == output["pixel_sha256"] else None

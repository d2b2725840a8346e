"""Defect masks stored as files in the case's ``derived/`` area, and read back checked.

An analysis step (``detect_defects``) or a fill (``generative.fill_defects``) returns its masks
in its details as encoded text (`forensic.ops.defects.mask_record`). A run does not sign that
text into the journal entry: each mask becomes a file and the record keeps the mask's pixel
count, share and canonical pixel hash (``sha256``), plus where the mask is:

* a still run: ``png`` `{file, sha256, size}`, a 1-bit grey PNG (`mask_png`), one per mask;
* a video run: ``stored``, the mask's frame in the step's mask video (``masks`` in the
  ``run.step`` entry: `{name: video reference}`, 8-bit grey FFV1 of 0 and 255), one video per
  mask name (a defect kind, or ``mask`` for the combined mask).

Entries written before this (the mask inline as ``encoded`` text) still read: `load_mask`
takes either. docs/spec.md section 10 gives the fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from forensic.errors import CaseError, ParameterError
from forensic.hashing import image_hash
from forensic.ops.defects import (
    Mask,
    decode_mask,
    is_mask_record,
    mask_image,
    mask_png,
    read_mask_png,
)
from forensic.pipeline.sinks import VideoSink
from forensic.pipeline.sources import read_stored_frame
from forensic.store import CaseStore, FileRecord, Staging

#: The details keys that hold masks: ``masks`` (one per defect kind) and ``mask`` (combined).
PER_KIND, COMBINED = "masks", "mask"


def mask_items(details: Mapping[str, Any] | None) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(name, mask record) of every mask in a step's details: each kind, then ``mask``."""
    if not isinstance(details, Mapping):
        return
    kinds = details.get(PER_KIND)
    if isinstance(kinds, Mapping):
        for name, record in kinds.items():
            if is_mask_record(record):
                yield str(name), record
    if is_mask_record(details.get(COMBINED)):
        yield COMBINED, details[COMBINED]


def _replace(
    details: dict[str, Any], change: Callable[[str, Mapping[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    out = dict(details)
    kinds = out.get(PER_KIND)
    if isinstance(kinds, Mapping):
        out[PER_KIND] = {
            k: change(str(k), v) if is_mask_record(v) and "encoded" in v else v
            for k, v in kinds.items()
        }
    combined = out.get(COMBINED)
    if isinstance(combined, dict) and is_mask_record(combined) and "encoded" in combined:
        out[COMBINED] = change(COMBINED, combined)
    return out


def _decoded(name: str, record: Mapping[str, Any]) -> Mask:
    return decode_mask("defect mask", name, str(record["encoded"]))


def _summary(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "encoded"}


def store_still_masks(
    details: dict[str, Any] | None, add: Callable[[bytes, str], FileRecord]
) -> dict[str, Any] | None:
    """``details`` with every inline mask replaced by a 1-bit PNG staged with ``add``."""
    if not details:
        return details
    return _replace(
        details,
        lambda name, rec: {**_summary(rec), "png": add(mask_png(_decoded(name, rec)), ".png")},
    )


class MaskVideos:
    """A video step's masks, one FFV1 video per mask name, written as the frames stream."""

    def __init__(self, staging: Staging, *, rate: Fraction | int, what: str) -> None:
        self.staging = staging
        self.rate = rate
        self.what = what
        self.sinks: dict[str, VideoSink] = {}

    def store(self, details: dict[str, Any] | None) -> dict[str, Any] | None:
        """``details`` with every inline mask replaced by its frame in the mask video."""
        if not details:
            return details

        def change(name: str, rec: Mapping[str, Any]) -> dict[str, Any]:
            sink = self.sinks.get(name)
            if sink is None:
                sink = self.sinks[name] = VideoSink(
                    self.staging, rate=self.rate, what=f"{self.what} {name} mask video"
                )
            pixels = mask_image(_decoded(name, rec))
            return {**_summary(rec), "stored": sink.add(pixels, image_hash(pixels))}

        return _replace(details, change)

    def close(self) -> dict[str, Any]:
        return {name: sink.close() for name, sink in self.sinks.items()}


def load_mask(
    store: CaseStore,
    record: Mapping[str, Any],
    *,
    name: str,
    videos: Mapping[str, Any] | None = None,
    what: str,
) -> Mask:
    """The mask a record names, read from its file (checked against the file's SHA-256 and the
    mask's pixel hash) or, in a legacy entry, decoded from its text; `CaseError` naming
    ``what`` when the file is missing, altered or not a mask."""
    try:
        if "encoded" in record:
            mask = decode_mask("defect mask", name, str(record["encoded"]))
        elif "png" in record:
            data = store.read_checked(record["png"], what)
            mask = read_mask_png(data, where=what)
        elif videos is not None and name in videos:
            frame = read_stored_frame(store, videos[name], int(record["stored"]))
            mask = np.asarray(frame) == 255
        else:
            raise CaseError(f"{what}: the record names no stored mask")
    except (ValueError, ParameterError) as exc:
        raise CaseError(f"{what}: {exc}") from None
    if image_hash(mask_image(mask)) != record["sha256"]:
        raise CaseError(f"{what}: the stored mask does not have its recorded pixel hash")
    return mask

"""Looking without recording: frame-exact seeking with a small cache, and recipe previews.

* `FrameReader` shows one frame of a video the way ingest numbered it (decoder output order),
  fast enough to step through: it seeks to the nearest keyframe at or before the frame and
  decodes forward, keeps the decoder where it stopped (stepping forward decodes one frame)
  and holds the last decoded frames in an LRU cache. Every frame it returns is checked
  against the hash recorded at ingest; when a seek lands wrong (an open GOP, a stream whose
  timestamps do not identify frames) it decodes from the start instead, which is what ingest
  did. Seeking never changes *which* frame is shown, only how fast.
* `preview` runs a recipe on one frame with the very code a still run uses
  (`forensic.pipeline.still.compute`) and returns the image and its provenance map. Nothing is
  stored or journaled: a preview is not a record.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from forensic import provenance
from forensic.case import Case
from forensic.errors import CaseError, InputError
from forensic.media import PICTURE_TYPES, convert_frame, frame_sha256
from forensic.pipeline.sources import Frame, load_frames
from forensic.pipeline.steps import applies
from forensic.pipeline.still import compute
from forensic.recipe import Recipe
from forensic.records import ExhibitRecord

Image = NDArray[Any]

#: Decoded frames kept per video (raw decoder frames: about 3 MB each at 1080p 4:2:0).
CACHE_FRAMES = 48


@dataclass(frozen=True)
class ShownFrame:
    """One decoded video frame, as ingest numbered it."""

    index: int
    image: Image = field(repr=False)
    pts: int | None
    picture_type: str
    key: bool
    sha256: str
    #: How it was reached: "cache", "forward" (decoder continued), "seek" or "start".
    access: str


class FrameReader:
    """Frame-exact random access to one video (see the module docstring).

    ``recorded`` is the ingest record's per-frame list (index, pts, key, sha256); without it
    (a run's output video) frames are found by counting from the start, and the decoder still
    continues forward from where it stopped.
    """

    def __init__(
        self,
        path: Path,
        *,
        where: str,
        recorded: Sequence[Mapping[str, Any]] | None = None,
        cache_frames: int = CACHE_FRAMES,
    ) -> None:
        self.path = path
        self.where = where
        self.recorded = list(recorded) if recorded is not None else None
        self.cache_frames = cache_frames
        self._cache: OrderedDict[int, av.VideoFrame] = OrderedDict()
        self._lock = threading.Lock()
        self._container: Any = None
        self._decoded: Iterator[av.VideoFrame] | None = None
        self._next = 0  # index of the next frame the open decoder yields (counting mode)
        self._last = -1  # index of the last frame it yielded
        self._from_seek = False  # frames are identified by their PTS after a seek
        #: Decode the next frame in the background after each one shown (stepping forward).
        self.prefetching = True
        self._pts_index: dict[int, int] = {}
        self._keys: list[int] = [0]
        if self.recorded is not None:
            pts = [f.get("pts") for f in self.recorded]
            if None not in pts and len(set(pts)) == len(pts):
                self._pts_index = {int(p): i for i, p in enumerate(pts) if p is not None}
                self._keys = [i for i, f in enumerate(self.recorded) if f.get("key")] or [0]

    # -- public ----------------------------------------------------------------------------

    def frame(self, index: int) -> ShownFrame:
        with self._lock:
            count = len(self.recorded) if self.recorded is not None else None
            if index < 0 or (count is not None and index >= count):
                last = "" if count is None else f" (0 to {count - 1})"
                raise InputError(f"{self.where}: there is no frame {index}{last}")
            access = "cache"
            raw = self._cached(index)
            if raw is None:
                raw, access = self._decoded_frame(index)
            sha = frame_sha256(raw)
            if self.recorded is not None and sha != self.recorded[index]["sha256"]:
                if access == "start":
                    raise CaseError(f"{self.where}: frame {index} no longer decodes to its hash")
                self._forget()  # a seek that landed wrong: decode from the start, as ingest did
                raw, access = self._decoded_frame(index, from_start=True)
                sha = frame_sha256(raw)
                if sha != self.recorded[index]["sha256"]:
                    raise CaseError(f"{self.where}: frame {index} no longer decodes to its hash")
            if self.prefetching and self._last == index and index + 1 not in self._cache:
                # The decoder stands at this frame: decode the next one while the examiner looks.
                threading.Thread(target=self.prefetch, args=(index + 1,), daemon=True).start()
            return ShownFrame(
                index=index,
                image=convert_frame(raw),
                pts=raw.pts,
                picture_type=PICTURE_TYPES.get(int(raw.pict_type), "?"),
                key=bool(raw.key_frame),
                sha256=sha,
                access=access,
            )

    def prefetch(self, index: int) -> None:
        """Decode frame ``index`` into the cache when the open decoder stands just before it
        (the examiner is stepping forward): the next step is then a cache hit. Never seeks;
        shows nothing; a failure here is left for `frame` to report."""
        with self._lock:
            count = len(self.recorded) if self.recorded is not None else None
            if index in self._cache or self._decoded is None or self._last != index - 1:
                return
            if count is not None and index >= count:
                return
            try:
                self._decode_to(index, forward_only=True)
            except Exception:  # only an optimisation: `frame` decodes again and reports
                self._forget()

    def close(self) -> None:
        with self._lock:
            self.prefetching = False
            self._forget()

    # -- decoding --------------------------------------------------------------------------

    def _decoded_frame(self, index: int, *, from_start: bool = False) -> tuple[av.VideoFrame, str]:
        found = self._decode_to(index, from_start=from_start)
        assert found is not None  # only a forward-only decode returns None
        return found

    def _cached(self, index: int) -> av.VideoFrame | None:
        raw = self._cache.get(index)
        if raw is not None:
            self._cache.move_to_end(index)
        return raw

    def _keep(self, index: int, raw: av.VideoFrame) -> None:
        self._cache[index] = raw
        self._cache.move_to_end(index)
        while len(self._cache) > self.cache_frames:
            self._cache.popitem(last=False)

    def _forget(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._decoded = None
        self._next, self._last = 0, -1

    def _open(self) -> Any:
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.where}: the video cannot be opened ({exc})") from None
        if not container.streams.video:
            container.close()
            raise InputError(f"{self.where}: the file has no video stream")
        return container

    def _frames(self, container: Any) -> Iterator[av.VideoFrame]:
        stream = container.streams.video[0]
        try:
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    continue  # counted as ingest counts: numbering follows the decoder output
                yield from decoded
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.where}: the video cannot be read ({exc})") from None

    def _decode_to(
        self, index: int, *, from_start: bool = False, forward_only: bool = False
    ) -> tuple[av.VideoFrame, str] | None:
        seekable = bool(self._pts_index) and not from_start
        key = max((k for k in self._keys if k <= index), default=0) if seekable else 0
        # Continue the open decoder when the frame lies ahead of it in the same GOP (or beyond
        # it with no keyframe in between): stepping forward then decodes a single frame.
        if self._decoded is None or not (max(key - 1, 0) <= self._last < index):
            self._forget()
            self._container = self._open()
            access = "start"
            if seekable and key > 0:
                stream = self._container.streams.video[0]
                assert self.recorded is not None
                self._container.seek(int(self.recorded[key]["pts"]), stream=stream, backward=True)
                access = "seek"
            self._decoded = self._frames(self._container)
            self._next, self._last = 0, -1
            self._from_seek = access == "seek"
        else:
            access = "forward"
        for raw in self._decoded:
            if self._from_seek:
                found = self._pts_index.get(raw.pts) if raw.pts is not None else None
                if found is None:
                    continue  # not a frame ingest saw (never shown; the hash check guards)
            else:
                found = self._next
                self._next += 1
            self._last = found
            if found > index:
                break  # overshot: the seek landed wrong; the caller decodes from the start
            self._keep(found, raw)
            if found == index:
                return raw, access
        self._forget()
        if forward_only:
            return None
        if not from_start:
            return self._decode_to(index, from_start=True)
        raise InputError(f"{self.where}: frame {index} could not be decoded")


# -- previews --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """A recipe computed on one frame in memory; never stored, never journaled."""

    image: Image = field(repr=False)
    provenance_map: provenance.ProvenanceMap = field(repr=False)
    #: Per step: number, operation, whether it applied to this frame, milliseconds.
    steps: list[dict[str, Any]]
    warnings: list[str]
    duration_ms: float


def preview(
    case: Case,
    source: ExhibitRecord,
    recipe: Recipe,
    image: Image | None = None,
    index: int | None = None,
) -> Preview:
    """Run ``recipe`` on ``image`` (a frame already decoded: the viewer's current one) or on
    the source's frame ``index`` (None for a still), with the run's own step code. Temporal
    operations need a range of frames and are refused here: run them."""
    for step in recipe.steps:
        if step.lane == "classical" and step.operation().temporal != "frame":
            raise InputError(
                f"{step.label}: {step.op_name} works over a range of frames; it cannot be "
                "previewed on one frame (run it instead)"
            )
    started = time.perf_counter()
    wanted = None if index is None else [index]
    frames = load_frames(case, source, wanted) if image is None else [Frame(index, image)]
    results, outputs = compute(recipe, frames, source)
    steps = [
        {
            "step": step.number,
            "op": step.op_name,
            "applied": applies(step, index),
            "duration_ms": next(
                (r.duration_ms for r in results if r.step.number == step.number), 0.0
            ),
        }
        for step in recipe.steps
    ]
    warnings = [w for r in results for w in r.warnings]
    out = outputs[0]
    return Preview(
        image=np.asarray(out.image),
        provenance_map=out.pmap,
        steps=steps,
        warnings=warnings,
        duration_ms=(time.perf_counter() - started) * 1000.0,
    )


# -- what the viewer shows -------------------------------------------------------------------


@dataclass(frozen=True)
class ViewImage:
    """An image the viewer shows: its pixels, what it is, and its provenance map where it is
    a run's output (None for evidence, which is all *original*)."""

    image: Image = field(repr=False)
    info: dict[str, Any]
    provenance_map: provenance.ProvenanceMap | None = field(default=None, repr=False)


class CaseViewer:
    """Read-only access to every image of one case, by reference (see `image`). Keeps one
    `FrameReader` per video, so stepping through frames stays fast."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self._readers: dict[str, FrameReader] = {}
        self._lock = threading.Lock()
        self._journal: tuple[tuple[int, int, int], list[Any]] | None = None

    def entries(self) -> list[Any]:
        """The case's journal entries, re-read only when the journal file changed (it is
        replaced atomically on every write): stepping through frames does not re-parse it."""
        from forensic.journal import JOURNAL_FILE

        st = (self.case.root / JOURNAL_FILE).stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            if self._journal is None or self._journal[0] != stamp:
                self._journal = (stamp, self.case.entries())
            return self._journal[1]

    def close(self) -> None:
        with self._lock:
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()

    def _reader(
        self, key: str, record: Mapping[str, Any], where: str, recorded: Any
    ) -> FrameReader:
        with self._lock:
            reader = self._readers.get(key)
            if reader is None:
                path = self.case.store.check_file(record, where)  # once per video and start
                reader = self._readers[key] = FrameReader(path, where=where, recorded=recorded)
            return reader

    def frame_at(self, exhibit_id: str, seconds: float) -> int:
        """The frame of a video exhibit displayed at ``seconds`` (its PTS timeline), exactly as
        a recipe's ``seconds`` range is resolved."""
        from forensic.media import index_at_time
        from forensic.records import find_exhibit

        exhibit = find_exhibit(self.entries(), exhibit_id, case_id=self.case.case_id)
        if not exhibit.is_video:
            raise InputError(f"{exhibit.label} is a still image: it has no time")
        base = str(exhibit.facts.get("time_base") or "1/25")
        return index_at_time([dict(f) for f in exhibit.frames], seconds, base)

    def image(self, ref: str, index: int | None = None) -> ViewImage:
        """``E1`` (a still, or frame ``index`` of a video), ``R2`` (a run's output; frame
        ``index`` of a video run's output), ``R2.map`` (its provenance map), ``R2.3`` (a kept
        intermediate of a still run's step 3), ``R2.3.inferred`` (a generative map)."""
        from forensic.pipeline.sources import find_source, recorded_output
        from forensic.records import find_exhibit, find_run, load_artifact
        from forensic.videoio import timecode

        entries = self.entries()
        head, _, rest = ref.partition(".")
        if head[:1].upper() != "R":
            exhibit = find_exhibit(entries, head, case_id=self.case.case_id)
            facts = dict(exhibit.facts)
            info: dict[str, Any] = {"ref": exhibit.exhibit_id, "kind": "exhibit"}
            if not exhibit.is_video:
                frame = load_frames(self.case, exhibit, None)[0]
                return ViewImage(frame.image, {**info, "media": "image", **_size(frame.image)})
            shown = self._reader(
                exhibit.exhibit_id, exhibit.file, exhibit.label, exhibit.frames
            ).frame(0 if index is None else index)
            base = str(facts.get("time_base") or "1/25")
            return ViewImage(
                shown.image,
                {
                    **info,
                    "media": "video",
                    "index": shown.index,
                    "frame_count": len(exhibit.frames),
                    "pts": shown.pts,
                    "time_base": base,
                    "timecode": None if shown.pts is None else timecode(shown.pts, base),
                    "picture_type": shown.picture_type,
                    "key": shown.key,
                    "sha256": shown.sha256,
                    "hash_matches_record": True,
                    "interlaced": bool(exhibit.frames[shown.index].get("interlaced"))
                    or bool(facts.get("interlaced_frames")),
                    "access": shown.access,
                    **_size(shown.image),
                },
            )
        run = find_run(entries, head, case_id=self.case.case_id)
        info = {"ref": ref, "kind": "run", "run": run.run_id, "tainted": run.tainted}
        if not rest:
            if not run.is_video:
                source = find_source(self.case, run.run_id)
                frame = load_frames(self.case, source, None)[0]
                return ViewImage(
                    frame.image,
                    {**info, "media": "image", **_size(frame.image)},
                    frame.pmap,
                )
            items = load_artifact(self.case.store, run["frames"], what="run output frame")
            k = 0 if index is None else index
            if not 0 <= k < len(items):
                raise InputError(f"run {run.run_id} has {len(items)} output frames, not {k + 1}")
            video = run.output["video"]
            pixels = self._reader(run.run_id, video, f"run {run.run_id} output", None).frame(k)
            pmap = self._reader(
                f"{run.run_id}.map", run.provenance["video"], f"run {run.run_id} map", None
            ).frame(k)
            return ViewImage(
                pixels.image,
                {
                    **info,
                    "media": "video",
                    "index": k,
                    "frame_count": len(items),
                    "source_frame": items[k].get("frame"),
                    **_size(pixels.image),
                },
                _map_plane(pmap.image),
            )
        if rest == "map":
            output = self.image(run.run_id, index)
            if output.provenance_map is None:
                raise InputError(f"run {run.run_id} has no provenance map")
            return ViewImage(
                output.provenance_map,
                {**output.info, "ref": ref, "kind": "map", **_size(output.provenance_map)},
            )
        number, _, map_name = rest.partition(".")
        step = next((s for s in run.steps if str(s.number) == number), None)
        if step is not None and (map_name == "mask" or map_name.startswith("mask_")):
            return self._mask(run, step, ref, map_name, index, info)
        if step is None or run.is_video:
            raise InputError(
                f"{ref}: no such intermediate (still runs' steps R{run.run_id[1:]}.1, .2, ...)"
            )
        record = step.applied()[0]
        target = record["output"] if not map_name else record.get("maps", {}).get("files", {})
        if map_name:
            target = target.get(map_name)
        if not target or "file" not in target:
            raise InputError(
                f"{ref}: not stored (the run kept hashes only; run with --keep-intermediates)"
            )
        if map_name:
            data = self.case.store.read_checked(target, ref)
            from forensic.media import decode_image

            decoded, _ = decode_image(data, where=ref)
            return ViewImage(decoded, {**info, "kind": "map", "media": "image", **_size(decoded)})
        kept = recorded_output(self.case.store, target)
        if kept is None:
            raise CaseError(f"{ref}: the stored intermediate no longer matches its record")
        return ViewImage(kept, {**info, "kind": "intermediate", "media": "image", **_size(kept)})

    def _mask(
        self,
        run: Any,
        step: Any,
        ref: str,
        map_name: str,
        index: int | None,
        info: dict[str, Any],
    ) -> ViewImage:
        """``R2.3.mask`` (a defect step's combined mask) or ``R2.3.mask_dust`` (one kind's),
        of a still run or, for a video run, of the step's record of the run's output frame
        ``index`` (a step given ``frames`` covers only part of the run, so its record list is
        not indexed like the output), read checked from its stored file (0 or 255)."""
        from forensic.ops.defects import mask_image
        from forensic.pipeline.masks import load_mask
        from forensic.records import load_artifact

        records = step.applied(self.case.store)
        k = 0 if index is None else index
        outputs: list[dict[str, Any]] = []
        if run.is_video:
            outputs = load_artifact(self.case.store, run["frames"], what="run output frame")
            if not 0 <= k < len(outputs):
                raise InputError(f"run {run.run_id} has {len(outputs)} output frames, not {k + 1}")
            source = outputs[k].get("frame")
            j = next((i for i, r in enumerate(records) if r.get("frame") == source), None)
            if j is None:
                covered = [r.get("frame") for r in records]
                span = f"{min(covered)}-{max(covered)}" if covered else "none"
                raise InputError(
                    f"{ref}: no mask for output frame {k} (source frame {source}): step "
                    f"{step.number} ran on source frames {span} only",
                    hint="choose an output frame inside the step's range",
                )
        else:
            if k != 0:
                raise InputError(f"{ref}: a still run has one frame, not {k + 1}")
            j = 0
        details = records[j].get("details") or {}
        name = "mask" if map_name == "mask" else map_name[len("mask_") :]
        record = details.get("mask") if name == "mask" else (details.get("masks") or {}).get(name)
        if not isinstance(record, dict):
            raise InputError(f"{ref}: step {step.number} recorded no {name!r} defect mask")
        mask = load_mask(self.case.store, record, name=name, videos=step.get("masks"), what=ref)
        pixels = mask_image(mask)
        return ViewImage(
            pixels,
            {
                **info,
                "kind": "mask",
                "media": "video" if run.is_video else "image",
                "index": k,
                "step_record": j,
                "frame_count": max(len(outputs), 1),
                "source_frame": records[j].get("frame"),
                "pixels": int(record["pixels"]),
                **_size(pixels),
            },
        )


def _size(image: Image) -> dict[str, Any]:
    return {
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "channels": 1 if image.ndim == 2 else int(image.shape[2]),
        "dtype": str(image.dtype),
    }


def _map_plane(image: Image) -> provenance.ProvenanceMap:
    """A provenance map frame decoded from its (grey) video back to class codes."""
    plane = image if image.ndim == 2 else image[..., 0]
    return np.asarray(plane, np.uint8)

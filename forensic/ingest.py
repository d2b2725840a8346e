"""Evidence ingest: copy once into the content-addressed store, hash, decode, journal.

Two phases so that a bad file adds nothing to the case:
1. every file is copied into ``evidence/`` under a temporary name while its SHA-256 is computed,
   then the *stored copy* is decoded and described (so what is hashed, decoded and kept are the
   same bytes, even if the source changes meanwhile);
2. only when all files passed, under the case lock: each new file is renamed to
   ``<sha256><ext>``, made read-only, and journaled as ``evidence.ingest``.
The source files are only ever opened for reading.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forensic.case import Case
from forensic.errors import CaseError, InputError
from forensic.fsutil import fsync_dir, open_regular
from forensic.hashing import sha256_file, sha256_stream
from forensic.keys import Signer
from forensic.media import MediaLimits, MediaRecord, analyse, safe_extension
from forensic.records import EVIDENCE_INGEST, exhibits
from forensic.timeutil import utc_timestamp

Progress = Callable[[str, int, int | None], None]


@dataclass
class Prepared:
    source: Path
    temp: Path
    sha256: str
    size: int
    source_mtime: str
    record: MediaRecord
    limits: MediaLimits


@dataclass(frozen=True)
class IngestResult:
    exhibit: str
    sha256: str
    new: bool
    source: Path
    stored: str
    payload: dict[str, Any]


def _open_source(path: Path) -> int:
    where = str(path)
    if not os.path.lexists(path):
        raise InputError(f"{where}: no such file", hint="check the path and try again")
    if path.is_dir():
        raise InputError(f"{where} is a directory", hint="give the evidence files themselves")
    # Refused by type before opening: a FIFO would block, a device never end.
    fd = open_regular(path, what="evidence file")
    st = os.fstat(fd)
    if st.st_size == 0:
        os.close(fd)
        raise InputError(f"{where} is empty (0 bytes): there is nothing to ingest")
    return fd


def _prepare(case: Case, source: Path, progress: Progress | None, limits: MediaLimits) -> Prepared:
    where = str(source)
    fd = _open_source(source)
    ext = safe_extension(source.suffix)
    try:
        tmp_fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", suffix=ext, dir=case.evidence_dir)
    except OSError as exc:
        os.close(fd)
        raise CaseError(
            f"cannot write into the evidence store {case.evidence_dir}: {exc.strerror}",
            hint="check the case folder exists and this user may write to it",
        ) from None
    temp = Path(tmp_name)
    try:
        st = os.fstat(fd)
        with os.fdopen(fd, "rb") as src, os.fdopen(tmp_fd, "wb") as sink:
            sha, size = sha256_stream(src, sink=sink)
            sink.flush()
            os.fsync(sink.fileno())
        if size == 0:
            raise InputError(f"{where} is empty (0 bytes): there is nothing to ingest")
        record = analyse(
            temp,
            where=where,
            suffix=ext,
            progress=None if progress is None else (lambda n, total: progress(where, n, total)),
            limits=limits,
            damage_checks=True,
        )
        mtime = utc_timestamp(datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC))
        return Prepared(source, temp, sha, size, mtime, record, limits)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise InputError(
                f"no space left in {case.evidence_dir} while copying {where}"
            ) from None
        raise InputError(f"{where}: cannot read: {exc.strerror}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _payload(exhibit_id: str, p: Prepared, stored: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "exhibit": exhibit_id,
        "original": {
            "name": p.source.name,
            "path": str(p.source.resolve()),
            "size": p.size,
            "mtime": p.source_mtime,
        },
        "sha256": p.sha256,
        "size": p.size,
        "stored": stored,
        "media": p.record.media,
        "format": p.record.format,
        "pixel_hash": p.record.pixel_hash,
        "facts": p.record.facts,
        "warnings": p.record.warnings,
        # The case policy's limits this file was checked against before decoding.
        "limits": p.limits.as_dict(),
    }
    if p.record.media == "video":
        payload["frames"] = p.record.frames
    return payload


def ingest(
    case: Case,
    sources: Sequence[Path],
    *,
    signer: Signer,
    now: datetime,
    progress: Progress | None = None,
) -> list[IngestResult]:
    """Ingest ``sources`` into ``case``. All or nothing: a bad file raises before any is added."""
    if not sources:
        raise InputError("no files given", hint="forensic ingest CASE FILE...")
    limits = case.policy().limits
    prepared: list[Prepared] = []
    try:
        for source in sources:
            prepared.append(_prepare(case, source, progress, limits))
        return _commit(case, prepared, signer=signer, now=now)
    finally:
        for p in prepared:
            p.temp.unlink(missing_ok=True)


def prepare(case: Case, source: Path, *, limits: MediaLimits | None = None) -> Prepared:
    """Phase 1 for one file, on its own (a batch worker): copy into ``evidence/`` under a
    temporary name while hashing, decode and describe the copy. Nothing is journaled; pass
    the result to `commit`, or remove ``Prepared.temp``."""
    return _prepare(case, source, None, case.policy().limits if limits is None else limits)


def commit(
    case: Case, prepared: Sequence[Prepared], *, signer: Signer, now: datetime
) -> list[IngestResult]:
    """Phase 2 for files prepared by `prepare` (a file already in the case gets its existing
    exhibit, no new entry); the temporary copies are removed whatever happens."""
    try:
        return _commit(case, list(prepared), signer=signer, now=now)
    finally:
        for p in prepared:
            p.temp.unlink(missing_ok=True)


def _commit(
    case: Case, prepared: list[Prepared], *, signer: Signer, now: datetime
) -> list[IngestResult]:
    results: list[IngestResult] = []
    with case.writer(signer) as writer:
        known = {x.sha256: dict(x.payload) for x in exhibits(writer.entries)}
        for p in prepared:
            if p.sha256 in known:
                old = known[p.sha256]
                results.append(
                    IngestResult(
                        str(old["exhibit"]), p.sha256, False, p.source, str(old["stored"]), old
                    )
                )
                continue
            exhibit_id = f"E{len(known) + 1}"
            stored = f"evidence/{p.sha256}{p.record.extension}"
            final = case.root / stored
            # A file already there was left by an ingest that crashed before journaling:
            # keep it only if intact.
            if final.exists() and sha256_file(final)[0] != p.sha256:
                os.chmod(final, 0o644)
                final.unlink()
            if not final.exists():
                os.chmod(p.temp, 0o444)
                os.replace(p.temp, final)
                fsync_dir(final.parent)
            payload = _payload(exhibit_id, p, stored)
            writer.append(EVIDENCE_INGEST.name, payload, now=now)
            known[p.sha256] = payload
            results.append(IngestResult(exhibit_id, p.sha256, True, p.source, stored, payload))
    return results

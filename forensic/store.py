"""The case store: the one place that knows where a case's files are and how they are read.

Everything inside a case folder is named by a *relative path* (``evidence/<sha256>.png``,
``derived/<sha256>.mkv``), exactly as the journal records it. `CaseStore` is the interface the
pipeline, the verifier and the report use:

* `CaseStore.read_checked` reads a stored file and compares it with its record
  (``{file, sha256}``), raising `CaseError` that names what it is: nothing downstream ever
  works on bytes that do not match the journal;
* `CaseStore.stage` hands out a `Staging`: new files are written under temporary names while
  a command works, renamed to their content-addressed names (read-only) only once every
  journal entry is signed, and removed if the command fails;
* `CaseStore.local_path` is the escape hatch for decoders that need a file name (PyAV,
  OpenCV); a backend without local files (an object store, a WORM volume) would fetch into a
  scratch folder there.

`LocalCaseStore` is the implementation for a plain folder. Another backend implements the same
methods; the pipeline does not change.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from forensic.errors import CaseError
from forensic.fsutil import fsync_dir, open_regular_file
from forensic.hashing import sha256_stream

EVIDENCE_DIR = "evidence"
DERIVED_DIR = "derived"
REPORTS_DIR = "reports"
KEYS_DIR = "keys"
#: RFC 3161 tokens on checkpoints, each beside the checkpoint line it covers (spec §4.1).
TIMESTAMPS_DIR = "timestamps"
STAMP_SUFFIX = ".tst"
STAMPED_CHECKPOINT_SUFFIX = ".checkpoint"
#: Prefix of a file being written; never a recorded name (verify notes strays).
STAGING_PREFIX = ".tmp-"

FileRecord = dict[str, Any]


def derived_name(sha256: str, suffix: str) -> str:
    """The content-addressed relative path of a derived file."""
    return f"{DERIVED_DIR}/{sha256}{suffix}"


def timestamp_names(checkpoint_sha256: str) -> tuple[str, str]:
    """The relative paths of a timestamped checkpoint's copy and of its token, both named
    by the SHA-256 of the checkpoint line (without its LF)."""
    stem = f"{TIMESTAMPS_DIR}/{checkpoint_sha256}"
    return f"{stem}{STAMPED_CHECKPOINT_SUFFIX}", f"{stem}{STAMP_SUFFIX}"


class CaseStore(ABC):
    """Paths and checked reads inside one case (see the module docstring)."""

    @abstractmethod
    def local_path(self, rel: str) -> Path:
        """A local file name for ``rel`` (for decoders that open files themselves)."""

    @abstractmethod
    def read_bytes(self, rel: str) -> bytes:
        """The bytes of ``rel``; OSError when it cannot be read."""

    @abstractmethod
    def exists(self, rel: str) -> bool: ...

    @abstractmethod
    def listing(self, folder: str) -> list[str]:
        """The names in ``folder`` (sorted), or an empty list when it does not exist."""

    @abstractmethod
    def file_sha256(self, rel: str) -> str:
        """SHA-256 of ``rel``, streamed; FileNotFoundError when it is missing."""

    @abstractmethod
    def stage(self, folder: str = DERIVED_DIR) -> Staging:
        """A new set of files to write into ``folder`` and commit or discard together."""

    def read_checked(self, record: Mapping[str, Any], what: str) -> bytes:
        """The bytes of the stored file ``record["file"]``, checked against
        ``record["sha256"]``; `CaseError` naming ``what`` when missing or altered."""
        rel = str(record["file"])
        try:
            data = self.read_bytes(rel)
        except OSError:
            raise CaseError(f"{what}: {rel} is missing or unreadable") from None
        if hashlib.sha256(data).hexdigest() != record["sha256"]:
            raise CaseError(f"{what}: {rel} no longer matches its recorded SHA-256")
        return data

    def check_file(self, record: Mapping[str, Any], what: str) -> Path:
        """Check a stored file's SHA-256 (streamed, for large files) and return a local path
        to decode it from; `CaseError` naming ``what`` when missing or altered."""
        rel = str(record["file"])
        try:
            digest = self.file_sha256(rel)
        except (FileNotFoundError, IsADirectoryError):
            raise CaseError(f"{what}: {rel} is missing") from None
        except OSError as exc:
            raise CaseError(f"{what}: cannot read {rel}: {exc.strerror}") from None
        if digest != record["sha256"]:
            raise CaseError(f"{what}: {rel} no longer matches its recorded SHA-256")
        return self.local_path(rel)


class LocalCaseStore(CaseStore):
    """A case that is a folder on a local (or mounted) file system."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def local_path(self, rel: str) -> Path:
        return self.root / rel

    def read_bytes(self, rel: str) -> bytes:
        with open_regular_file(self.root / rel) as fh:  # a planted FIFO raises, never blocks
            return fh.read()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def listing(self, folder: str) -> list[str]:
        path = self.root / folder
        return sorted(os.listdir(path)) if path.is_dir() else []

    def file_sha256(self, rel: str) -> str:
        with open_regular_file(self.root / rel) as fh:
            return sha256_stream(fh)[0]

    def stage(self, folder: str = DERIVED_DIR) -> Staging:
        return Staging(self.root / folder, folder)


class StagedFile:
    """A file being written under a temporary name; its ``record`` ({file, sha256, size}) is
    set once its content is known, and it is renamed to ``record["file"]`` on commit."""

    def __init__(self, folder: Path, suffix: str, *, create: bool = True) -> None:
        if create:
            fd, name = tempfile.mkstemp(prefix=STAGING_PREFIX, suffix=suffix, dir=folder)
            os.close(fd)
            self.path = Path(name)
        else:  # the writer creates it (and refuses an existing file)
            self.path = folder / f"{STAGING_PREFIX}{uuid.uuid4().hex}{suffix}"
        self.suffix = suffix
        self.record: FileRecord | None = None


class Staging:
    """Files of one command, committed together (content-addressed, mode 0444) or discarded.

    A crash between commit and the journal write leaves only unreferenced content-addressed
    files, which ``verify`` reports; it never leaves a recorded file missing.
    """

    def __init__(self, folder: Path, rel_folder: str) -> None:
        self.folder = folder
        self.rel_folder = rel_folder
        self.folder.mkdir(exist_ok=True)
        self.files: list[StagedFile] = []
        #: Called by `discard` first (streaming writers close their files).
        self.aborts: list[Callable[[], None]] = []

    def new(self, suffix: str, *, create: bool = True) -> StagedFile:
        """A file to stream into; the caller sets its ``record`` when done."""
        staged = StagedFile(self.folder, suffix, create=create)
        self.files.append(staged)
        return staged

    def add(self, data: bytes, suffix: str) -> FileRecord:
        """Stage ``data`` whole; returns its record {file, sha256, size}."""
        staged = self.new(suffix)
        staged.path.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        staged.record = {
            "file": f"{self.rel_folder}/{sha}{suffix}",
            "sha256": sha,
            "size": len(data),
        }
        return staged.record

    def commit(self) -> None:
        """Rename every staged file to its recorded name, read-only (an existing file of the
        same content-addressed name is kept), and make the renames durable."""
        for staged in self.files:
            if staged.record is None:
                raise RuntimeError(f"internal error: {staged.path} was staged but never recorded")
            target = self.folder / Path(str(staged.record["file"])).name
            if target.exists():
                staged.path.unlink()
                continue
            with open(staged.path, "rb") as fh:
                os.fsync(fh.fileno())
            os.chmod(staged.path, 0o444)
            os.replace(staged.path, target)
        fsync_dir(self.folder)

    def discard(self) -> None:
        for abort in self.aborts:
            abort()
        for staged in self.files:
            staged.path.unlink(missing_ok=True)

    def __iter__(self) -> Iterator[StagedFile]:
        return iter(self.files)

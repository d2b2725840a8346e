"""Crash-safe file writes: write a temporary file beside the target, fsync, rename, fsync the folder.

A reader sees either the old file or the new one, never a torn mix; a crash leaves at most a
stray ``.tmp-*`` file, which no reader looks at.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o644) -> Iterator[tuple[int, Path]]:
    """Yield ``(fd, tmp_path)`` of a temporary file that replaces ``path`` on clean exit."""
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        yield fd, tmp
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp.exists():
            tmp.unlink()


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    with atomic_writer(path, mode=mode) as (fd, _tmp):
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

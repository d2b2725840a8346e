"""Crash-safe file writes and bounded reads of files that come from outside.

Writes: a temporary file beside the target, fsync, rename, fsync the folder. A reader sees
either the old file or the new one, never a torn mix; a crash leaves at most a stray
``.tmp-*`` file, which no reader looks at.

Reads (`open_regular`, `read_regular`, `parse_toml`): every file given to the tool (evidence,
recipes, policies, keys, reports) is checked to be a *regular* file by its type before it is
opened, so a FIFO, a device (``/dev/zero``, also through a symbolic link) or a socket is
refused instead of blocking or growing memory for ever; small documents are read up to a size
limit stated in the error, and TOML is refused when nested deeper than `MAX_TOML_DEPTH`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from forensic.errors import ForensicError, InputError

#: Recipes, policies and other TOML documents: a few kB in practice; larger is not one of them.
MAX_DOCUMENT_BYTES = 1 << 20
#: Deepest nesting of tables and arrays accepted in a TOML document (recipes and policies
#: use 4 levels); deeper input is refused before any code walks it recursively.
MAX_TOML_DEPTH = 16

ErrorType = type[ForensicError]


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path, *, what: str, error: ErrorType = InputError) -> int:
    """Open ``path`` for reading if, and only if, it is a regular file; returns the descriptor.

    The type is checked with ``stat`` (following links) *before* opening, and again on the
    open descriptor (opened non-blocking, so a file swapped for a FIFO meanwhile cannot block
    the open): FIFOs, devices, sockets and folders are refused by ``error``, naming ``what``
    and ``path``.
    """
    where = f"{what} {path}"
    try:
        before = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise error(
                f"{where}: a symbolic link to {os.readlink(path)}, which does not exist"
            ) from None
        raise error(f"{where}: no such file", hint="check the path and try again") from None
    except OSError as exc:
        raise error(f"{where}: cannot be examined: {exc.strerror}") from None
    kind = _kind(before.st_mode)
    if kind is not None:
        link = f" (through a symbolic link to {os.readlink(path)})" if path.is_symlink() else ""
        raise error(
            f"{where} is {kind}{link}, not a regular file: it is not read",
            hint="give a regular file (a FIFO or device could block or never end)",
        )
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        raise error(
            f"{where}: permission denied: this user cannot read the file",
            hint="ask for read access (the file is never modified)",
        ) from None
    except OSError as exc:
        raise error(f"{where}: cannot open: {exc.strerror}") from None
    after = os.fstat(fd)
    if _kind(after.st_mode) is not None or (after.st_dev, after.st_ino) != (
        before.st_dev,
        before.st_ino,
    ):
        os.close(fd)
        raise error(f"{where} changed while it was being opened; it is not read")
    os.set_blocking(fd, True)
    return fd


def open_regular_file(path: Path) -> BinaryIO:
    """Open ``path`` for reading, non-blocking, and keep it only if the descriptor is a regular
    file (for files inside a case, whose callers handle OSError): a FIFO or device planted
    in its place raises OSError (EINVAL; IsADirectoryError for a folder) instead of blocking."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        raise OSError(errno.EINVAL, f"is {_kind(mode)}, not a regular file", str(path))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(
    path: Path, *, what: str, max_bytes: int = MAX_DOCUMENT_BYTES, error: ErrorType = InputError
) -> bytes:
    """The bytes of the regular file ``path`` (see `open_regular`), refused by ``error`` when
    larger than ``max_bytes``: never more than ``max_bytes + 1`` bytes are read."""
    fd = open_regular(path, what=what, error=error)
    too_big = error(
        f"{what} {path} is larger than {max_bytes:,} bytes, the limit for a {what}; it is not read",
        hint=f"a {what} is a small text file; check that this is the right file",
    )
    with os.fdopen(fd, "rb") as fh:
        if os.fstat(fh.fileno()).st_size > max_bytes:
            raise too_big
        try:
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise error(f"{what} {path}: cannot read: {exc.strerror}") from None
    if len(data) > max_bytes:  # it grew while being read
        raise too_big
    return data


def toml_depth(value: Any) -> int:
    """The nesting depth of parsed TOML (a scalar is 0, ``{}`` or ``[]`` is 1), walked
    without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_toml(
    raw: bytes, *, where: str, error: ErrorType = InputError, max_depth: int = MAX_TOML_DEPTH
) -> dict[str, Any]:
    """Parse UTF-8 TOML; every problem, including nesting deeper than ``max_depth`` (which
    would exhaust the parser's recursion), is ``error`` naming ``where``."""
    too_deep = error(
        f"{where}: nested deeper than {max_depth} levels of tables or arrays; it is not used",
        hint="recipes and policies need at most 4 levels",
    )
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{where}: not valid TOML ({exc})") from None
    except RecursionError:
        raise too_deep from None
    if toml_depth(data) > max_depth:
        raise too_deep
    return data


def write_refused(
    folder: Path, exc: OSError, *, what: str, error: ErrorType = InputError
) -> ForensicError:
    """The error for the operating system refusing to create ``what`` in ``folder`` (a
    read-only file system, no permission, no space): it names the folder and the reason."""
    return error(
        f"{what}: cannot write in {folder} ({exc.strerror or exc})",
        hint="choose a folder this user may write to, on a file system that is not read-only",
    )


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

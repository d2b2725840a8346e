"""Hashes used in the record: file SHA-256, the canonical pixel hash, and Merkle trees.

All are specified in docs/spec.md so that an independent verifier can recompute them.
"""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from forensic.errors import InputError
from forensic.fsutil import open_regular_file

CHUNK = 1 << 20
PIXEL_HASH_ALGORITHM = "forensic-pixels/1"
ZERO_HASH = "0" * 64


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_stream(
    src: BinaryIO, *, sink: BinaryIO | None = None, progress: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """Hash ``src`` to its end, copying to ``sink`` on the way. Returns (hex digest, size)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
        if progress is not None:
            progress(len(chunk))
    return digest.hexdigest(), size


def sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a regular file, streamed. A FIFO or device in its place is an
    `InputError` (it is never read: it could block or never end); a missing file is
    FileNotFoundError."""
    try:
        fh = open_regular_file(path)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        raise InputError(f"{path} {exc.strerror}: it is not read") from None
    with fh:
        return sha256_stream(fh)


CHANNEL_ORDERS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def pixel_hash(pixels: npt.NDArray[np.generic], *, channel_order: str) -> str:
    """Canonical hash of decoded image content.

    SHA-256 over the ASCII header
    ``forensic-pixels/1 dtype=<uint8|uint16|float32> shape=<H>x<W>x<C> order=<L|LA|RGB|RGBA>\\n``
    followed by the samples in C order (row-major, channels interleaved), little-endian.
    A 2-D array is hashed as ``C = 1``. Including the shape and dtype means the same bytes read as
    a different geometry or bit depth never collide.
    """
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.ndim != 3:
        raise ValueError(f"pixel_hash needs a 2-D or 3-D array, got {pixels.ndim}-D")
    dtype = pixels.dtype.newbyteorder("<") if pixels.dtype.itemsize > 1 else pixels.dtype
    h, w, c = pixels.shape
    header = f"{PIXEL_HASH_ALGORITHM} dtype={pixels.dtype.name} shape={h}x{w}x{c} order={channel_order}\n"
    digest = hashlib.sha256(header.encode("ascii"))
    # A view of the samples, not a copy (a 1080p RGB frame is 6 MB, hashed several times a run).
    samples = np.ascontiguousarray(pixels, dtype=dtype)
    digest.update(samples.data.cast("B"))
    return digest.hexdigest()


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Iterable[bytes]) -> str:
    """Merkle Tree Hash of RFC 9162 section 2.1.1 (as in Certificate Transparency).

    ``MTH({}) = SHA-256()``, ``MTH({d0}) = SHA-256(0x00 || d0)``, and for n > 1 with k the
    largest power of two below n: ``SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))``.
    Leaves here are raw 32-byte SHA-256 digests (of frames, or of journal entries), read
    once, in order (`MerkleTree`: no list of them is built).
    """
    tree = MerkleTree()
    for digest in leaves:
        tree.add(digest)
    return tree.root()


class MerkleTree:
    """The RFC 9162 Merkle Tree Hash of leaves added one at a time, in O(log n) memory: a
    run of a long clip adds a leaf per frame and never holds the frames' hashes.

    It keeps the roots of the perfect subtrees that the leaves so far make (sizes the binary
    digits of the count, largest first); two of one size merge as soon as they exist. The
    MTH of all leaves folds these roots from the right, ``node(left, right)``: the largest
    power of two below n always ends a perfect subtree, which is RFC 9162's split.
    """

    __slots__ = ("_stack", "count")

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.count = 0

    def add(self, digest: bytes) -> None:
        """Add the next leaf (a raw 32-byte digest)."""
        size, node = 1, _leaf(digest)
        while self._stack and self._stack[-1][0] == size:
            node = _node(self._stack.pop()[1], node)
            size *= 2
        self._stack.append((size, node))
        self.count += 1

    def root(self) -> str:
        """The MTH of the leaves added so far (hex); of none: SHA-256 of the empty string."""
        if not self._stack:
            return hashlib.sha256(b"").hexdigest()
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = _node(left, node)
        return node.hex()


def _mth(nodes: list[bytes]) -> bytes:
    if len(nodes) == 1:
        return nodes[0]
    k = 1
    while k * 2 < len(nodes):
        k *= 2
    return _node(_mth(nodes[:k]), _mth(nodes[k:]))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[str]:
    """The audit path of leaf ``index`` (RFC 9162 section 2.1.3.1), hex node hashes in order.

    With it, one frame is proved against a journaled Merkle root without the other frames.
    """
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is outside a tree of {len(leaves)}")
    return [n.hex() for n in _path(index, [_leaf(d) for d in leaves])]


def _path(m: int, nodes: list[bytes]) -> list[bytes]:
    if len(nodes) == 1:
        return []
    k = 1
    while k * 2 < len(nodes):
        k *= 2
    if m < k:
        return [*_path(m, nodes[:k]), _mth(nodes[k:])]
    return [*_path(m - k, nodes[k:]), _mth(nodes[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[str], root: str) -> bool:
    """Check an audit path (RFC 9162 section 2.1.3.2): does ``leaf`` sit at ``index`` of the
    ``size``-leaf tree whose Merkle Tree Hash is ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = _leaf(leaf)
    for hex_node in proof:
        p = bytes.fromhex(hex_node)
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _node(p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r.hex() == root


def image_hash(image: npt.NDArray[np.generic]) -> str:
    """The canonical pixel hash of a decoded image, its channel order read from its shape."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    return pixel_hash(image, channel_order=CHANNEL_ORDERS[channels])


def describe_image(image: npt.NDArray[np.generic]) -> dict[str, Any]:
    """An image description (docs/spec.md §3.1, ``IMG``): pixel hash, size, channels, dtype."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    return {
        "pixel_hash_algorithm": PIXEL_HASH_ALGORITHM,
        "pixel_sha256": image_hash(image),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "channels": CHANNEL_ORDERS[channels],
        "dtype": str(image.dtype),
    }

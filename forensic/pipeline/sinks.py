"""Files a video run writes while its frames stream: canonical JSON arrays and FFV1 videos.

Each sink writes into a staged file of the case store (`forensic.store.Staging`), hashing as it
goes, so nothing is read back to be hashed; the staged files are committed together once every
journal entry is signed.
"""

from __future__ import annotations

import hashlib
import os
from fractions import Fraction
from typing import Any

from forensic.errors import InputError
from forensic.hashing import MerkleTree
from forensic.journal import canonical
from forensic.store import Staging

Image = Any


class JsonArraySink:
    """A canonical (RFC 8785) JSON array written element by element: the bytes equal
    ``canonical(list_of_elements)`` without ever holding the list."""

    def __init__(self, staging: Staging) -> None:
        self.staged = staging.new(".json")
        self.rel_folder = staging.rel_folder
        self.fh = self.staged.path.open("wb")
        staging.aborts.append(self.fh.close)
        self.digest = hashlib.sha256()
        self.count = 0
        self._put(b"[")

    def _put(self, data: bytes) -> None:
        self.fh.write(data)
        self.digest.update(data)

    def add(self, element: dict[str, Any]) -> None:
        if self.count:
            self._put(b",")
        self._put(canonical(element))
        self.count += 1

    def close(self) -> dict[str, Any]:
        self._put(b"]")
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        sha = self.digest.hexdigest()
        record = {
            "file": f"{self.rel_folder}/{sha}.json",
            "sha256": sha,
            "size": self.staged.path.stat().st_size,
        }
        self.staged.record = record
        return record


class VideoSink:
    """Frames into one lossless FFV1/Matroska file; remembers each frame's pixel hash.

    The file is encoded on the writer's own thread (`forensic.videoio.FFV1Writer.submit`), so
    a run's encoding overlaps its decoding and operations; ``frame_hash(k)`` waits for the
    k-th frame's hash (as ingest would compute it from the file)."""

    def __init__(
        self, staging: Staging, *, rate: Fraction | int, what: str, repeat_uniform: bool = False
    ) -> None:
        from forensic.videoio import FFV1Writer

        self.staged = staging.new(".mkv", create=False)
        self.rel_folder = staging.rel_folder
        self.what = what
        self.writer = FFV1Writer(self.staged.path, rate=rate, repeat_uniform=repeat_uniform)
        staging.aborts.append(self.writer.abort)
        #: The frames' pixel hashes, folded into their Merkle root as they come (a long clip's
        #: run holds no list of them).
        self.pixels = MerkleTree()

    @property
    def count(self) -> int:
        """Frames added so far."""
        return self.pixels.count

    @property
    def encoded(self) -> int:
        """Frames encoded (and hashed) so far."""
        return self.writer.encoded

    def frame_hash(self, position: int) -> str:
        return self.writer.frame_hash(position)

    def add(self, image: Image, pixel_sha256: str) -> int:
        try:
            self.writer.submit(image)
        except InputError as exc:
            raise InputError(
                f"the {self.what}: {exc.message}",
                hint="every frame of a run's output must have the same size and type: apply "
                "size-changing steps (crop, resize...) to every frame of the run",
            ) from None
        self.pixels.add(bytes.fromhex(pixel_sha256))
        return self.pixels.count - 1

    def close(self) -> dict[str, Any]:
        # FFV1 is lossless by design and each slice carries a CRC; what could go wrong is our
        # pixel-format mapping, which the writer checks on every frame (the frame handed to the
        # encoder converts back to the exact array). Decoding the files again is the job of
        # `verify --pixels` (check 8), so a run does not pay for a second decode.
        self.writer.close()
        count = self.pixels.count
        sha, size = self.writer.sha256, self.writer.size
        assert sha is not None
        assert size is not None
        record = {
            "file": f"{self.rel_folder}/{sha}.mkv",
            "sha256": sha,
            "size": size,
            "container": "matroska",
            "codec": "ffv1",
            "pix_fmt": self.writer.pix_fmt,
            "frames": count,
            "merkle_root": self.pixels.root(),
            # What ingesting this file would record per frame (forensic-frames/1).
            "frame_hashes_root": self.writer.frame_hashes_root(),
        }
        self.staged.record = record
        return record

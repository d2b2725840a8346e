"""A CLI worker for the harnesses: ``python stress/worker.py`` reads one JSON job a line
(``{"argv": [...]}``) and answers one JSON line per job::

    {"code": <exit code of forensic.cli.main>, "stderr": <its last 2000 characters>,
     "stdout": <what it printed>,
     "traceback": <whether a Python traceback was printed>, "seconds": <wall time>}

Each job goes through ``forensic.cli.main`` exactly as the command line does (its error
boundary turns a ``ForensicError`` into a message and any other exception into exit 70). The
examiner key is unlocked once and the signer reused (scrypt would otherwise dominate the
time). The process is limited to `MEMORY_LIMIT` of address space, so an unbounded read fails
rather than exhausting the machine; the harness kills it when a job takes too long.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

MEMORY_LIMIT = 6 << 30


def main() -> int:
    # Run by path (see stress.hostile.Worker): this folder is sys.path[0], where stress's own
    # modules (concurrent.py) would shadow the standard library's.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    # The protocol goes to a private copy of stdout; what C libraries print to fd 1 (FFmpeg,
    # libjpeg) goes to stderr instead, never into the protocol.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    from forensic import api, cli

    real_unlock = api.unlock_signer
    cache: dict[str, Any] = {}

    def unlock_once(key_dir: Any, passphrase: Any) -> Any:
        if "signer" not in cache:
            cache["signer"] = real_unlock(key_dir, passphrase)
        return cache["signer"]

    api.unlock_signer = unlock_once
    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        job = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main([str(a) for a in job["argv"]])
            except BaseException as exc:  # reported, never lost
                import traceback

                traceback.print_exc()
                code = 99 if not isinstance(exc, SystemExit) else int(exc.code or 0)
        text = err.getvalue()
        proto.write(
            json.dumps(
                {
                    "code": code,
                    "stderr": text[-2000:],
                    "stdout": out.getvalue()[-100_000:],
                    "traceback": "Traceback (most recent call last)" in text,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

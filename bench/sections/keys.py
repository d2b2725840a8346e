"""Section 7: what one passphrase guess costs against each file of a key folder.

An attacker who copies a key folder tests passphrases offline; the cheapest file sets the
price of every key in it, since all share the examiner's passphrase. Each row times one wrong
guess the way forensic itself tries a passphrase (one thread, one core): the journal key
(``examiner.key``: scrypt N=2^17, r=8, p=1 and AES-256-GCM), a report-signing key in the
current format (``forensic-private-key/1``, the same KDF with its own salt), and the PKCS#8
PEM key of earlier versions (PBKDF2-SHA256 at 2,048 iterations, AES-256-CBC), side by side.
Guesses per second per core is one over the median **CPU time** of a guess (the thread's
own time, `time.thread_time`: on a shared machine wall time also counts other processes);
the wall-time ratios are taken side by side. Dedicated hardware is faster at both; scrypt's
128 MiB per guess is what keeps GPUs from running thousands of them in parallel.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.casework import PASSPHRASE, now
from bench.harness import INFO, Context, Row, Timing, ratio, side_by_side, verdict
from forensic.errors import KeyFileError
from forensic.keys import (
    create_key,
    open_legacy_pkcs8,
    open_sealed_private_key,
    seal_private_key,
    unlock,
)

SECTION = "7"
WRONG = "a-wrong-guess"
#: Legacy guesses timed per sample (one takes about a millisecond: too short to time alone).
LEGACY_BATCH = 50


def _folder(ctx: Context) -> tuple[Path, Path, Path]:
    folder = ctx.scratch / "keycost"
    create_key(folder, name="Bench Examiner", passphrase=PASSPHRASE, now=now())
    private = ec.generate_private_key(ec.SECP256R1())
    sealed = folder / "report-signing.key"
    sealed.write_bytes(seal_private_key(private, passphrase=PASSPHRASE, purpose="report-signing"))
    legacy = folder / "report-signing.key.pem"
    legacy.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    return folder, sealed, legacy


def _wrong_guess(fn: Callable[[], object], times: int = 1) -> Callable[[], None]:
    def guess() -> None:
        for _ in range(times):
            try:
                fn()
            except KeyFileError:
                continue
            raise AssertionError("a wrong passphrase was accepted")

    return guess


def _cpu_seconds(guess: Callable[[], None], samples: int, per_sample: int = 1) -> float:
    """Median CPU time of one guess (this thread's time, not the wall clock)."""
    guess()  # warm-up
    seconds = []
    for _ in range(samples):
        start = time.thread_time()
        guess()
        seconds.append((time.thread_time() - start) / per_sample)
    return float(statistics.median(seconds))


def _rate(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms CPU per guess = {1 / seconds:,.1f} guesses/s per core"


def run(ctx: Context) -> list[Row]:
    folder, sealed, legacy = _folder(ctx)
    guesses = {
        "journal": _wrong_guess(lambda: unlock(folder, WRONG)),
        "report": _wrong_guess(lambda: open_sealed_private_key(sealed, WRONG)),
        "legacy": _wrong_guess(lambda: open_legacy_pkcs8(legacy, WRONG), LEGACY_BATCH),
    }
    wall = side_by_side(guesses, repeats=ctx.repeats)
    cpu = {
        name: _cpu_seconds(fn, ctx.repeats, LEGACY_BATCH if name == "legacy" else 1)
        for name, fn in guesses.items()
    }
    legacy_wall = Timing(
        median=wall["legacy"].median / LEGACY_BATCH,
        min=wall["legacy"].min / LEGACY_BATCH,
        max=wall["legacy"].max / LEGACY_BATCH,
        n=wall["legacy"].n,
        warmup=wall["legacy"].warmup,
    )
    same = ratio(wall["report"], wall["journal"])
    stronger = ratio(wall["report"], legacy_wall)
    details = {f"{name}_cpu_seconds_per_guess": value for name, value in cpu.items()}
    return [
        Row(
            SECTION,
            "journal key (examiner.key): one wrong passphrase",
            f"{_rate(cpu['journal'])}; wall {wall['journal'].text()}",
            "-",
            INFO,
            details=details,
        ),
        Row(
            SECTION,
            "report-signing / lab CA key (forensic-private-key/1) vs journal key",
            f"{same:.2f}x the journal key's wall time per guess; {_rate(cpu['report'])}; "
            f"wall {wall['report'].text()}",
            "≥ 0.9x the journal key (the same KDF)",
            verdict(same >= 0.9),
        ),
        Row(
            SECTION,
            "report key now vs PKCS#8 PEM of earlier versions (PBKDF2-SHA256, 2,048 iterations)",
            f"{stronger:,.0f}x dearer per guess (wall, side by side); legacy: "
            f"{_rate(cpu['legacy'])}; wall {legacy_wall.text('ms')} per guess "
            f"({LEGACY_BATCH} guesses per sample)",
            "≥ 100x dearer than the legacy format",
            verdict(stronger >= 100),
        ),
    ]

"""Section 1: audit overhead. A 3-step classical recipe (bilateral denoise, CLAHE, unsharp
mask) on the frames of a 1080p clip through forensic's enhancement engine (`run_recipe`, what
`forensic enhance` runs, without the command's start-up), against the same operations in a
bare loop (`bench.bare`): same decoding and RGB conversion, same lossless output format
(FFV1/Matroska, same options), same two worker threads, but no hashes, journal, provenance
maps or records.

The breakdown times each part of the work once per frame, single-threaded, on the same
frames: where the time goes, not what the threaded pipeline overlaps.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench.bare import process
from bench.casework import ingest_files, new_case, now
from bench.clips import make_clip
from bench.harness import Context, Row, Timing, ratio, rounds, verdict
from forensic import provenance
from forensic.classical.registry import registry
from forensic.hashing import describe_image as describe
from forensic.media import frame_sha256, iter_frames
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe
from forensic.videoio import FFV1Writer

SECTION = "1"
THREADS = 2
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("denoise_bilateral", {"sigma_color": 0.05, "sigma_space": 2.0}),
    ("clahe", {}),
    ("unsharp_mask", {"radius": 1.2, "amount": 0.7}),
]


def _recipe(last: int) -> bytes:
    lines = []
    for i, (op, params) in enumerate(STEPS):
        lines.append(f'[[steps]]\nop = "{op}"')
        lines += [f"{k} = {v}" for k, v in params.items()]
        if i == 0:
            lines.append(f"frames = [0, {last}]")
    return ("\n".join(lines) + "\n").encode()


def _bare_work(image: Any) -> Any:
    ops = registry()
    for op, params in STEPS:
        image = ops[op].run(image, params).image
    return image


def breakdown(path: Path, frames: int, folder: Path) -> dict[str, float]:
    """Seconds per frame of each part, single-threaded."""
    ops = registry()
    parts = dict.fromkeys(("decode", "operations", "hashing", "provenance", "encoding"), 0.0)
    t = time.perf_counter()
    decoded = [
        d.image for d in iter_frames(path, list(range(frames)), where="bench", background=False)
    ]
    parts["decode"] = time.perf_counter() - t
    writer = FFV1Writer(folder / f"breakdown-{time.time_ns()}.mkv")
    maps = FFV1Writer(folder / f"breakdown-maps-{time.time_ns()}.mkv")
    for image in decoded:
        pmap = provenance.fresh(image.shape)
        t = time.perf_counter()
        describe(image)
        parts["hashing"] += time.perf_counter() - t
        for name, params in STEPS:
            t = time.perf_counter()
            result = ops[name].run(image, params)
            parts["operations"] += time.perf_counter() - t
            t = time.perf_counter()
            pmap = provenance.follow(
                pmap,
                ops[name],
                result.params,
                effect=result.effect,
                roi=None,
                out_shape=result.image.shape,
            )
            parts["provenance"] += time.perf_counter() - t
            t = time.perf_counter()
            describe(result.image)
            parts["hashing"] += time.perf_counter() - t
            image = result.image
        t = time.perf_counter()
        writer.write(image)  # includes the frame hash of the encoded frame: counted below
        parts["encoding"] += time.perf_counter() - t
        t = time.perf_counter()
        maps.write(pmap)
        provenance.counts(pmap)
        parts["provenance"] += time.perf_counter() - t
    writer.close()
    maps.close()
    return {k: v / frames for k, v in parts.items()}


def run(ctx: Context) -> list[Row]:
    h, w = ctx.size((1080, 1920), (270, 480))
    frames = 4 if ctx.quick else 16
    clip = make_clip(
        ctx.scratch / "clips" / f"audit-{w}x{h}.mp4",
        frames=frames,
        height=h,
        width=w,
        seed=ctx.seed,
    )
    recipe = parse_recipe(_recipe(frames - 1), where="bench audit recipe")
    outputs = ctx.scratch / "audit-out"
    outputs.mkdir(exist_ok=True)
    last: dict[str, Any] = {}
    turn = [0]

    def ours() -> float:
        # A fresh case each round, removed after it: every round starts from the same state
        # (journal length, files and page cache), as the bare loop's does.
        case, ex = new_case(ctx, "audit")
        ingest_files(case, ex, [clip])
        t = time.perf_counter()
        last["summary"] = run_recipe(
            case, "E1", recipe, signer=ex.signer, now=now(), workers=THREADS
        )
        seconds = time.perf_counter() - t
        last["case"] = (case, ex)
        shutil.rmtree(case.root, ignore_errors=True)
        return seconds

    def bare() -> float:
        out = outputs / f"bare-{time.time_ns()}.mkv"
        t = time.perf_counter()
        process(clip, out, _bare_work, first=0, last=frames - 1, threads=THREADS)
        seconds = time.perf_counter() - t
        out.unlink()
        return seconds

    def one_round() -> dict[str, float]:
        # Alternate which goes first, so that neither always runs on a warmer machine.
        turn[0] += 1
        if turn[0] % 2:
            a = ours()
            b = bare()
        else:
            b = bare()
            a = ours()
        return {"forensic enhance": a, "bare loop": b}

    ctx.log(f"section 1: {frames} frames {w}x{h}, forensic vs bare loop")
    t: dict[str, Timing] = rounds(one_round, repeats=max(ctx.repeats, 7))
    r = ratio(t["forensic enhance"], t["bare loop"])
    ctx.log("section 1: breakdown")
    parts = breakdown(clip, frames, outputs)
    total = sum(parts.values())
    per_frame = {k: v.median / frames for k, v in t.items()}
    steps = last["summary"].steps
    table = {
        "columns": ["part", "ms per frame (one thread)", "share"],
        "rows": [[k, f"{v * 1e3:.1f}", f"{100 * v / total:.1f}%"] for k, v in parts.items()]
        + [
            [
                "signing + journal (whole run, not per frame)",
                f"{_signing_ms(ctx):.1f} ms per run",
                "-",
            ]
        ],
    }
    figure = (
        f"{r:.3f}x ({100 * (r - 1):+.1f}%): forensic {t['forensic enhance'].text()} vs bare "
        f"{t['bare loop'].text()} for {frames} frames ({per_frame['forensic enhance'] * 1e3:.0f} "
        f"vs {per_frame['bare loop'] * 1e3:.0f} ms per frame)"
    )
    return [
        Row(
            SECTION,
            f"3-step recipe on {frames} {w}x{h} RGB frames: forensic enhance vs bare loop",
            figure,
            "≤ 1.10x the bare loop (goal 1.03x)",
            verdict(r <= 1.10),
            f"Both on {THREADS} worker threads, FFV1 output; rounds alternate which runs first, "
            "and each forensic round uses a fresh case. forensic also hashes every step's "
            "input and output, keeps a provenance map per frame (FFV1, grey), writes per-frame "
            "records, signs one entry per step and fsyncs its files before journaling them. "
            "Step durations in the run: "
            + ", ".join(f"{s.op} {s.duration_ms / frames:.0f} ms/frame" for s in steps)
            + " (thread time).",
            {
                "timings": {k: vars(v) for k, v in t.items()},
                "breakdown_s_per_frame": parts,
                "table": table,
            },
        )
    ]


def _signing_ms(ctx: Context) -> float:
    """Signing and journaling four entries (a 3-step run): stage, sign, commit."""
    case, ex = new_case(ctx, "audit-signing")
    t = time.perf_counter()
    with case.writer(ex.signer) as writer:
        for i in range(4):
            writer.stage("bench.probe", {"n": i, "note": "benchmark timing entry"}, now=now())
        writer.commit(now=now())
    seconds = time.perf_counter() - t
    shutil.rmtree(case.root, ignore_errors=True)
    return seconds * 1e3


__all__ = ["frame_sha256", "run"]

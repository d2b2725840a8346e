"""Section 11: the generative lane's networks on the CPU and, where CUDA is present, the GPU.

Every figure is the lane's own inference path (`forensic.generative.engine`: `run_tiled`
over `torch_tiles`, inside `deterministic`, host memory in and out, so transfers to and from
the GPU are counted): the built-in residual ESPCN x2 and x4 (the luma network; bicubic and
colour conversion excluded) and an RRDBNet x4 with random weights in the Real-ESRGAN x4plus
shape (23 blocks, 64 features, growth 32), on 3-channel input.

* **GPU** (when `bench.harness.detect_gpu` finds CUDA): absolute times on the named card at
  320x240, 704x576 and 1920x1080 (quick mode: 320x240), with deterministic algorithms, TF32
  off, cuDNN benchmark off.
* **CPU** everywhere: the lane's CPU setting (one thread, deterministic). The CPU sizes are
  smaller where the full ones would take many minutes on a small machine: the built-in models
  at 320x240 and 704x576 (quick: 160x120), RRDBNet at 64x48 (quick: 32x24); 1080p on the CPU
  and RRDBNet above 64x48 on the CPU are skipped (rows say so). Where the GPU ran the same
  size, the row gives the CPU / GPU ratio of medians, timed side by side.
* Tiling on the CPU: the built-in x4 at 704x576 (quick 160x120) in one pass vs the lane's
  tiles (and small tiles), bit-identical outputs checked, time ratio measured.
* The uncertainty map's cost: the built-in x2 operation alone vs its maps with the recorded
  number of reruns, at 320x240 (quick 160x120).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.harness import INFO, Context, Row, Timing, ratio, side_by_side, verdict

SECTION = "11"
GPU_SIZES = ((240, 320), (576, 704), (1080, 1920))
QUICK_GPU_SIZES = ((240, 320),)


def _models() -> dict[str, tuple[Any, int, int, str]]:
    """name -> (module, scale, input channels, architecture)."""
    import torch

    from forensic.generative.rrdbnet import RRDBNet
    from forensic.generative.sr import load_model

    torch.manual_seed(0)
    rrdb = RRDBNet(channels=3, feat=64, blocks=23, grow=32, scale=4).eval()
    return {
        "built-in x2": (load_model(2).body, 2, 1, "residual_espcn"),
        "built-in x4": (load_model(4).body, 4, 1, "residual_espcn"),
        "RRDBNet x4 (random weights)": (rrdb, 4, 3, "rrdbnet"),
    }


def _cpu_sizes(ctx: Context, architecture: str) -> tuple[tuple[int, int], ...]:
    if architecture == "rrdbnet":
        return ((24, 32),) if ctx.quick else ((48, 64),)
    return ((120, 160),) if ctx.quick else ((240, 320), (576, 704))


def _runner(module: Any, scale: int, device: Any, image: Any) -> Callable[[], Any]:
    from forensic.generative import engine
    from forensic.generative.sr import tiling_for

    tiling = tiling_for("rrdbnet" if image.shape[1] == 3 else "residual_espcn")

    def run() -> Any:
        with engine.deterministic(device):
            fn = engine.torch_tiles(module, device)
            return engine.run_tiled(fn, image, tiling.tile, tiling.overlap, scale)

    return run


def _label(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


def run(ctx: Context) -> list[Row]:
    try:
        import torch  # noqa: F401 - the generative extra
    except ImportError:
        return [Row(SECTION, "generative lane", "skipped: torch not installed", "-", INFO)]
    from forensic.generative import engine
    from forensic.generative.sr import device_for

    rows: list[Row] = []
    gpu = None
    if ctx.gpu.get("cuda"):
        gpu = engine.select_device("cuda", ("cuda",))
    card = gpu.name if gpu is not None else None
    ctx.log(f"section {SECTION}: GPU {card or 'none (CPU figures only)'}")
    rng = np.random.default_rng(ctx.seed)
    for name, (module, scale, channels, arch) in _models().items():
        cpu = device_for(arch, engine.cpu_device())
        gpu_sizes = QUICK_GPU_SIZES if ctx.quick else GPU_SIZES
        cpu_sizes = _cpu_sizes(ctx, arch)
        sizes = sorted(set(cpu_sizes) | (set(gpu_sizes) if gpu is not None else set()))
        for size in sizes:
            image = rng.random((1, channels, *size), dtype=np.float32)
            candidates: dict[str, Callable[[], Any]] = {}
            if size in cpu_sizes:
                candidates["cpu"] = _runner(module, scale, cpu, image)
            if gpu is not None:
                candidates["gpu"] = _runner(module, scale, device_for(arch, gpu), image)
            ctx.log(f"section {SECTION}: {name} at {_label(size)} on {', '.join(candidates)}")
            times = side_by_side(candidates, repeats=ctx.repeats)
            rows.append(_row(name, size, times, card))
    if gpu is None:
        rows.append(
            Row(
                SECTION,
                "GPU: built-in x2, x4 and RRDBNet x4 at 320x240, 704x576, 1920x1080",
                "skipped: no CUDA GPU on this machine (torch.cuda.is_available() is False)",
                "-",
                INFO,
            )
        )
    rows.append(_tiling_row(ctx))
    rows.append(_maps_row(ctx))
    return rows


def _row(name: str, size: tuple[int, int], times: dict[str, Timing], card: str | None) -> Row:
    parts = []
    details: dict[str, Any] = {"size": _label(size)}
    if "gpu" in times:
        parts.append(f"GPU ({card}) {times['gpu'].text()}")
        details["gpu_s"] = times["gpu"].median
    if "cpu" in times:
        parts.append(f"CPU (1 thread) {times['cpu'].text()}")
        details["cpu_s"] = times["cpu"].median
    else:
        parts.append("CPU skipped at this size (minutes per run on a small CPU)")
    if "gpu" in times and "cpu" in times:
        r = ratio(times["cpu"], times["gpu"])
        parts.append(f"CPU / GPU {r:.1f}x")
        details["cpu_over_gpu"] = r
    return Row(
        SECTION,
        f"{name}, {_label(size)} input",
        "; ".join(parts),
        "-",
        INFO,
        note="deterministic algorithms, TF32 off; host to device and back counted",
        details=details,
    )


def _tiling_row(ctx: Context) -> Row:
    """One pass against the lane's tiles and small tiles: time and bit-identity."""
    from forensic.generative import engine
    from forensic.generative.sr import ESPCN_OVERLAP, TILE, device_for, load_model

    h, w = (120, 160) if ctx.quick else (576, 704)
    small = 64
    image = np.random.default_rng([ctx.seed, 11]).random((1, 1, h, w), dtype=np.float32)
    device = device_for("residual_espcn", engine.cpu_device())
    body = load_model(4).body
    outputs: dict[str, Any] = {}

    def make(label: str, tile: int) -> Callable[[], None]:
        def run() -> None:
            with engine.deterministic(device):
                fn = engine.torch_tiles(body, device)
                outputs[label] = engine.run_tiled(fn, image, tile, ESPCN_OVERLAP, 4)

        return run

    candidates = {
        "one pass": make("one pass", max(h, w)),
        f"tile {TILE}": make(f"tile {TILE}", TILE),
        f"tile {small}": make(f"tile {small}", small),
    }
    ctx.log(f"section {SECTION}: tiling, built-in x4 at {w}x{h}")
    times = side_by_side(candidates, repeats=ctx.repeats)
    same = all(np.array_equal(outputs["one pass"], o) for o in outputs.values())
    lane, tiny = (
        ratio(times[f"tile {TILE}"], times["one pass"]),
        ratio(times[f"tile {small}"], times["one pass"]),
    )
    return Row(
        SECTION,
        f"tiled inference, built-in x4, {w}x{h} on the CPU",
        f"one pass {times['one pass'].text()}; {engine.count_tiles(h, w, TILE)} tiles of {TILE} "
        f"{lane:.2f}x; {engine.count_tiles(h, w, small)} tiles of {small} {tiny:.2f}x; outputs "
        f"{'bit-identical' if same else 'DIFFER'}",
        "bit-identical to one pass",
        verdict(same),
        details={"tile_ratio": lane, "small_tile_ratio": tiny, "identical": same},
    )


def _maps_row(ctx: Context) -> Row:
    """The built-in x2 step alone vs its inferred-content, uncertainty and consistency maps."""
    from forensic.generative import get
    from forensic.generative.maps import UNCERTAINTY_RUNS, inferred_maps

    h, w = (120, 160) if ctx.quick else (240, 320)
    rng = np.random.default_rng([ctx.seed, 12])
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    op = get("generative.super_resolution")
    params = op.check_params({"scale": 2})
    out = op.impl(image, **params)
    candidates = {
        "step": lambda: op.impl(image, **params),
        "maps": lambda: inferred_maps(op, image, out, params, seed=ctx.seed),
    }
    ctx.log(f"section {SECTION}: uncertainty map cost at {w}x{h}")
    times = side_by_side(candidates, repeats=ctx.repeats)
    r = ratio(times["maps"], times["step"])
    return Row(
        SECTION,
        f"uncertainty map cost, built-in x2 on {w}x{h} colour (CPU)",
        f"step {times['step'].text()}; its maps ({UNCERTAINTY_RUNS} reruns) "
        f"{times['maps'].text()}: {r:.1f}x the step",
        f"about {UNCERTAINTY_RUNS}x (one inference per rerun)",
        INFO,
        details={"maps_over_step": r, "runs": UNCERTAINTY_RUNS},
    )

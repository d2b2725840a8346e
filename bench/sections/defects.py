"""Section 12: damaged photographs and film (issue 21), on images the tests do not use.

Synthetic damage from the tests' own generators (`tests.damage`: dust, scratches, a tear, a
stain, dye fading, a halftone screen, vignetting, a panning film clip with moving dust), laid on
scikit-image pictures that no test, fixture or default was tuned on: motorcycle (the left view
of ``data.stereo_motorcycle()``, a colour photograph), coins and brick (grey). The tests use
camera, chelsea (which is skimage's ``cat``), rocket, astronaut, coffee and moon. Each row
states the figure against the damaged input and against the simplest baseline, with times:

* detection, per defect kind: pixel precision and recall within 2 px of the true damage
  (`detect_defects`, defaults), on sepia-toned prints;
* dye fading: `stretch_channels` (defaults) against a plain per-channel min-max stretch;
* a halftone screen: `descreen` against the best of four Gaussian blurs (sigma 0.8 to 2, the
  best chosen with the truth: a baseline favoured by an oracle);
* vignetting (no flat frame): `flat_field`'s fitted model against dividing by a wide Gaussian
  blur of the image;
* dust on a print: `generative.fill_defects` (detection, then Telea on the detected mask)
  against a plain 5 x 5 median filter of the whole picture and against Telea given the TRUE
  dust mask (an oracle);
* moving dust on film: `repair_film_dust` (temporal median of motion-compensated neighbours)
  against the spatial fill of each frame (`generative.fill_defects`) and Telea on the true mask.

PSNR is on 8-bit samples against the undamaged picture (whole frame).

Measured (full mode, `python -m bench --only 12`, 2026-11-28T05:00Z, first run with motorcycle
in place of cat; 2-core AMD EPYC shared with other jobs, so times are loose; the table is in
build/bench/, not bench/RESULTS.md, which only a run of every section writes). Coins and brick
give the same figures as before; the means move with the new picture:
detection precision/recall, mean of the three prints at 320 px: dust 0.65/0.72 (motorcycle
0.66/0.62), scratches 0.58/0.72 (motorcycle 0.68/0.30; brick's texture gives precision 0.09),
tears 1.00/1.00, stains 1.00/0.95 (motorcycle 1.00/0.89). Dye fading, NOT MET:
stretch_channels 2 (defaults: channels onto their common range) gains on every picture
(motorcycle 20.7 -> 24.2, coins 21.4 -> 26.6, brick 22.6 -> 22.8 dB, mean +2.96 dB over the
faded input) but loses to a per-channel min-max stretch by 5.98 dB on average (40.2, 34.9,
16.4): motorcycle and coins reach black and white in every channel, so the min-max stretch
undoes the linear fade almost exactly, while the common-range target does not restore the
full range; the min-max stretch wins only where the scene spans it. Descreen +10.0 dB over the
screened input, +6.7 dB over the best (oracle) blur. Fitted flat field +6.2 dB, +4.1 dB over
dividing by a blur (coins gains nothing: 22.5 -> 22.5, below the blur's 24.4). Dust fill +5.6
dB, +7.0 dB over a 5x5 median (motorcycle 26.8 -> 31.8; Telea on the true mask, an oracle:
44.7 dB mean). Film: temporal repair 46.7 / 47.0 dB (motorcycle, coins) against 27.0 / 30.6
for the spatial fill (+18.1 dB) and 38.9 / 42.4 for Telea on the true mask, 0.11 s vs 0.07 s
per frame.

Before (2026-11-28T04:31Z and re-run 05:00Z, with cat = chelsea, a test image): dust
0.75/0.81, scratches 0.69/0.90, stains 1.00/0.98; fading cat 24.4 -> 27.6 (min-max 18.5),
mean +2.86 dB over the input and +2.40 dB over min-max (met); descreen +11.2 / +6.3 dB; flat
field +6.6 / +4.0 dB; dust fill +9.6 / +10.0 dB (oracle 46.7); film +15.5 dB over the spatial
fill (cat 48.8 temporal, 34.2 spatial). The fading row's "met" came from the tuned-on picture.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from scipy import ndimage
from skimage import data

from bench.harness import INFO, Context, Row, verdict
from bench.images import psnr
from forensic.classical import get
from forensic.lanes import lookup
from tests import damage

SECTION = "12"
IMAGES = ("motorcycle", "coins", "brick")
#: Loaders that are not a plain ``data.<name>()``: the left view of the stereo pair.
LOADERS: dict[str, Callable[[], Any]] = {"motorcycle": lambda: data.stereo_motorcycle()[0]}
Image = Any


def _rgb(name: str, size: int) -> Image:
    img = LOADERS[name]() if name in LOADERS else getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=2)
    side = min(img.shape[:2])
    img = img[:side, :side, :3]
    return np.ascontiguousarray(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA))


def _toned(name: str, size: int) -> Image:
    """A sepia-toned monochrome print, as the tests make them."""
    grey = _rgb(name, size).astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255
    return damage.to8(np.stack([grey, grey * 0.93 + 0.02, grey * 0.8 + 0.03], 2))


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def _minmax(image: Image) -> Image:
    """The simplest fading correction: each channel stretched from its min to its max."""
    planes = []
    for c in range(image.shape[2]):
        plane = image[..., c].astype(np.float64)
        lo, hi = plane.min(), plane.max()
        planes.append((plane - lo) / max(hi - lo, 1.0))
    return damage.to8(np.stack(planes, 2))


def _fill_dust(fill: Any, image: Image) -> Image:
    return fill.run(image, {"kinds": "dust"}).image


DETECTION: dict[str, Callable[[Image, int], tuple[Image, Any]]] = {
    "dust": lambda im, seed: damage.add_dust(im, 40, seed),
    "scratches": lambda im, seed: damage.add_scratches(im, 4, seed),
    "tears": lambda im, seed: damage.add_tear(im, seed),
    "stains": lambda im, seed: damage.add_stain(im, seed),
}


def detection(ctx: Context, size: int) -> list[Row]:
    rows = []
    op = get("detect_defects")
    from forensic.ops.defects import decode_mask

    for k, (kind, make) in enumerate(DETECTION.items()):
        per: dict[str, dict[str, float]] = {}
        for j, name in enumerate(IMAGES):
            damaged, truth = make(_toned(name, size), ctx.seed + 10 * k + j)
            result, seconds = _timed(op.run, damaged, {"kinds": kind})
            found = decode_mask("bench", kind, result.details["masks"][kind]["encoded"])
            precision, recall = damage.precision_recall(found, truth)
            per[name] = {"precision": precision, "recall": recall, "seconds": seconds}
        text = "; ".join(f"{n} {r['precision']:.2f}/{r['recall']:.2f}" for n, r in per.items())
        mean_p = float(np.mean([r["precision"] for r in per.values()]))
        mean_r = float(np.mean([r["recall"] for r in per.values()]))
        secs = float(np.mean([r["seconds"] for r in per.values()]))
        rows.append(
            Row(
                SECTION,
                f"detect_defects: {kind} on toned {size} px prints",
                f"precision/recall {text}; mean {mean_p:.2f}/{mean_r:.2f}; {secs:.2f} s per image",
                "measured (tests state floors on their own images)",
                INFO,
                "Pixel-wise within 2 px of the true damage (tests/damage.py).",
                {"per_image": per},
            )
        )
    return rows


def _correction_row(
    name: str,
    truth_damaged_ours_base: list[tuple[str, Image, Image, Image, Image, float, float]],
    baseline: str,
    note: str,
) -> Row:
    per = {
        n: {
            "damaged_db": psnr(t, d),
            "ours_db": psnr(t, o),
            "baseline_db": psnr(t, b),
            "ours_s": so,
            "baseline_s": sb,
        }
        for n, t, d, o, b, so, sb in truth_damaged_ours_base
    }

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in per.values()]))

    ours, damaged_db, base = mean("ours_db"), mean("damaged_db"), mean("baseline_db")
    text = "; ".join(
        f"{n} {r['damaged_db']:.1f} -> {r['ours_db']:.1f} ({baseline} {r['baseline_db']:.1f})"
        for n, r in per.items()
    )
    return Row(
        SECTION,
        name,
        f"{text} dB; mean gain {ours - damaged_db:+.2f} dB over the damaged input, "
        f"{ours - base:+.2f} dB over {baseline}; {mean('ours_s'):.3f} s vs "
        f"{mean('baseline_s'):.3f} s",
        f"above the damaged input and above {baseline}",
        verdict(ours > damaged_db and ours > base),
        note,
        {"per_image": per},
    )


def fading(size: int) -> Row:
    runs: list[tuple[str, Image, Image, Image, Image, float, float]] = []
    stretch = get("stretch_channels")
    for name in IMAGES:
        truth = _rgb(name, size)
        faded = damage.fade(truth)
        ours, so = _timed(stretch, faded)
        base, sb = _timed(_minmax, faded)
        runs.append((name, truth, faded, ours, base, so, sb))
    return _correction_row(
        "stretch_channels on dye fading",
        runs,
        "min-max stretch",
        "Fading: each channel keeps 62-78 % of its range plus a lift (tests/damage.py fade).",
    )


def halftone(size: int) -> Row:
    runs: list[tuple[str, Image, Image, Image, Image, float, float]] = []
    descreen = get("descreen")
    for name in IMAGES:
        truth = np.asarray(_rgb(name, size)[..., 1])
        screened = damage.screen(truth)
        ours, so = _timed(descreen, screened)
        start = time.perf_counter()
        blurs = [
            damage.to8(ndimage.gaussian_filter(screened / 255.0, s)) for s in (0.8, 1.2, 1.6, 2.0)
        ]
        base = blurs[int(np.argmax([psnr(truth, b) for b in blurs]))]
        sb = (time.perf_counter() - start) / len(blurs)
        runs.append((name, truth, screened, ours, base, so, sb))
    return _correction_row(
        "descreen on a 45-degree screen (period 6 px, 25 %)",
        runs,
        "best Gaussian blur",
        "The blur's sigma is chosen with the truth (an oracle); its time is one blur's.",
    )


def vignetting(size: int) -> Row:
    runs: list[tuple[str, Image, Image, Image, Image, float, float]] = []
    flat = get("flat_field")
    for name in IMAGES:
        truth = _rgb(name, size)
        vignetted, _ = damage.vignette(truth)

        def divide(v: Image) -> Image:
            f = v.astype(np.float64)
            luma = f @ np.array([0.299, 0.587, 0.114])
            shade = cv2.GaussianBlur(luma, (0, 0), v.shape[0] / 4)
            shade = shade / shade.max()
            return damage.to8(f / 255 / np.maximum(shade, 1e-3)[..., None])

        ours, so = _timed(flat, vignetted)
        base, sb = _timed(divide, vignetted)
        runs.append((name, truth, vignetted, ours, base, so, sb))
    return _correction_row(
        "flat_field (fitted model, no flat frame) on vignetting 1 - 0.45 r^2",
        runs,
        "divide by a wide blur",
        "Baseline: the picture divided by its own Gaussian blur (sigma a quarter of the side), "
        "normalised to its maximum.",
    )


def dust_fill(ctx: Context, size: int) -> list[Row]:
    fill = lookup("generative.fill_defects")
    assert fill is not None
    runs: list[tuple[str, Image, Image, Image, Image, float, float]] = []
    oracle: list[float] = []
    for j, name in enumerate(IMAGES):
        truth = _toned(name, size)
        dusty, mask = damage.add_dust(truth, 40, ctx.seed + 100 + j)
        ours, so = _timed(_fill_dust, fill, dusty)
        base, sb = _timed(cv2.medianBlur, dusty, 5)
        runs.append((name, truth, dusty, ours, base, so, sb))
        telea = cv2.inpaint(dusty, mask.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
        oracle.append(psnr(truth, telea))
    row = _correction_row(
        "generative.fill_defects (detected dust, Telea) on a dusty print",
        runs,
        "5x5 median",
        f"Telea given the TRUE mask reaches {np.mean(oracle):.2f} dB on average (an oracle: "
        "the upper bound of a perfect detection). Filled pixels are inferred.",
    )
    row.details["telea_true_mask_db"] = oracle
    return [row]


def film(ctx: Context, size: int, frames: int) -> Row:
    repair = get("repair_film_dust")
    fill = lookup("generative.fill_defects")
    assert fill is not None
    per: dict[str, dict[str, float]] = {}
    for j, name in enumerate(IMAGES[:2]):
        clean, dusty, masks = damage.film_clip(_rgb(name, size), frames, ctx.seed + 200 + j)
        start = time.perf_counter()
        repaired = [o for o, _ in repair.stream(dusty, {})[1]]
        t_repair = (time.perf_counter() - start) / frames
        start = time.perf_counter()
        filled = [_fill_dust(fill, d) for d in dusty]
        t_spatial = (time.perf_counter() - start) / frames
        telea = [
            cv2.inpaint(d, m.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
            for d, m in zip(dusty, masks, strict=True)
        ]

        def mean_psnr(outs: list[Image], c: list[Image] = clean) -> float:
            return float(np.mean([psnr(t, o) for t, o in zip(c, outs, strict=True)]))

        per[name] = {
            "damaged_db": mean_psnr(dusty),
            "temporal_db": mean_psnr(repaired),
            "spatial_fill_db": mean_psnr(filled),
            "telea_true_mask_db": mean_psnr(telea),
            "temporal_s_per_frame": t_repair,
            "spatial_s_per_frame": t_spatial,
        }
    temporal = float(np.mean([r["temporal_db"] for r in per.values()]))
    spatial = float(np.mean([r["spatial_fill_db"] for r in per.values()]))
    text = "; ".join(
        f"{n} {r['damaged_db']:.1f} -> temporal {r['temporal_db']:.1f}, spatial fill "
        f"{r['spatial_fill_db']:.1f}, Telea true mask {r['telea_true_mask_db']:.1f}"
        for n, r in per.items()
    )
    t_t = float(np.mean([r["temporal_s_per_frame"] for r in per.values()]))
    t_s = float(np.mean([r["spatial_s_per_frame"] for r in per.values()]))
    return Row(
        SECTION,
        f"repair_film_dust vs a spatial fill, {frames}-frame pan with moving dust",
        f"{text} dB; temporal {temporal - spatial:+.2f} dB over the spatial fill; "
        f"{t_t:.2f} s vs {t_s:.2f} s per frame",
        "temporal repair above the spatial fill",
        verdict(temporal > spatial),
        "Pan 1.5 px right and 0.5 px down per frame, 25 new specks per frame "
        "(tests/damage.py film_clip); the spatial fill detects and fills each frame alone.",
        {"per_image": per},
    )


def run(ctx: Context) -> list[Row]:
    size = 192 if ctx.quick else 320
    rows = detection(ctx, size)
    rows += [fading(size), halftone(size), vignetting(size)]
    rows += dust_fill(ctx, size)
    rows.append(film(ctx, 160 if ctx.quick else 256, 5 if ctx.quick else 7))
    return rows

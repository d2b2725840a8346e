"""BM3D (Dabov et al. 2007) with the published parameters, compiled with numba: the kernels
behind `forensic.classical.denoise.denoise_bm3d` (version 2; version 1's kernels, a faster
profile with a smaller search and the DCT in both stages, stay in
`forensic.classical.collaborative`).

Why our own code: the reference implementation's package (``bm3d``) has a non-commercial
licence (it stays a benchmark-only anchor), and numpy alone cannot run the per-block loops of
the method at a usable speed. numba compiles these loops to machine code, without
``fastmath`` (no reassociation, no fused multiply-add): the floating-point operations and
their order are those written here, so the output is the same on every CPU. It runs on all
cores (``prange``) over bands of reference rows fixed by the image size alone (`band_starts`),
each band with its own scratch and sums, added in band order: the output is also the same
whatever the thread count (tested in fresh interpreters with 1, 2 and 3 threads). The
matching's row updates run on row views indexed from 0, which the compiler vectorises
(element by element: no sum is reordered). The block transforms' 8-value loops stay scalar:
numba leaves LLVM's straight-line (SLP) vectoriser off, and 8 is too short for the loop
vectoriser.

The method, per plane stack ``(C, H, W)`` (channel 0 guides the grouping), with the parameters
of Lebrun's analysis (IPOL 2012) where it and the paper agree:

1. Block matching: for reference blocks ``8 x 8`` on a grid (step 6 in stage 1, 5 in stage 2;
   the normal profile's is 3, see `STEP_HARD`; the last row and column always included), the ``N``
   most similar blocks within a ``39 x 39`` search window (``+-19`` px), by the sum of squared
   differences of the guide, kept while their mean squared difference is at most ``tau``; the
   group size is the largest power of two <= the number kept (the Haar transform's length).
   Distances for all blocks at one offset come from running sums down the columns (8 rows of
   squared differences), one pass over the image per offset.
2. Stage 1 (hard thresholding, ``N = 16``, ``tau = 2500 / 255^2``): each group is transformed
   by a 2-D bior1.5 wavelet transform of every block (`bior15_matrices`) and a 1-D Haar
   transform along the group; coefficients below
   ``2.7 sigma`` are zeroed; the inverse gives estimates of every block, aggregated with weight
   ``1 / N_nonzero`` times a Kaiser window (beta 2).
3. Stage 2 (Wiener, ``N = 32``, ``tau = 400 / 255^2``): groups matched on the stage-1
   estimate; the noisy group's 3-D spectrum is shrunk by ``|B|^2 / (|B|^2 + sigma^2)`` with
   ``B`` the stage-1 group's spectrum; weight ``1 / sum(shrink^2)`` times the Kaiser window.

Difference from the paper's normal profile: the coarser reference grids.
"""

from __future__ import annotations

import math
import warnings

import numba as nb
import numpy as np
import numpy.typing as npt
import pywt

from forensic.ops.pixels import Float

#: Block side.
BLOCK = 8
#: Reference block steps, stage 1 and stage 2: those of Dabov et al.'s fast profile (6 and 5;
#: their normal profile and Lebrun 2012: 3 and 3), with the normal profile's search window and
#: group sizes. Measured at sigma 25/255 on camera, moon, text, page and clock (no bench image):
#: 0.70 of the time of steps 4 and 5 for 0.10 dB less on average (see CHANGELOG).
STEP_HARD = 6
STEP_WIENER = 5
#: Search window half-side: a 39 x 39 window (Lebrun 2012).
RADIUS = 19
#: Maximum group sizes, stage 1 and stage 2 (Lebrun 2012: 16 and 32).
GROUP_HARD = 16
GROUP_WIENER = 32
#: Matching thresholds (mean squared difference per pixel, fraction of full scale squared):
#: 2500 and 400 grey levels^2 (Lebrun 2012, for sigma <= 40 / 255).
TAU_HARD = 2500.0 / 255.0**2
TAU_WIENER = 400.0 / 255.0**2
#: Hard threshold, in units of sigma.
LAMBDA_HARD = 2.7
#: Kaiser window shape parameter.
KAISER_BETA = 2.0
#: Parallel work: the reference rows are split into bands of about BAND_HEIGHT image rows,
#: at most MAX_BANDS of them, run on as many threads as there are. A function of the image
#: size only, never of the thread count, so the output is the same on every machine. Each
#: band re-reads the search window's rows above it (matching) and keeps its own cache and
#: sums (stages): taller bands waste less, more bands keep more cores busy (on a 512 x 512
#: picture, 128 and 64 cost no measurable CPU time over the single-threaded code).
BAND_HEIGHT = 128
MAX_BANDS = 16


def dct_matrix(n: int) -> Float:
    """Orthonormal DCT-II matrix (rows: frequencies)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return np.asarray(c, np.float64)


def bior15_matrices() -> tuple[Float, Float]:
    """The 8-point biorthogonal spline wavelet transform (bior1.5, full three-level periodized
    decomposition, PyWavelets' filters) as a matrix, rows scaled to unit norm so that white
    noise of standard deviation sigma gives every coefficient that standard deviation (one
    threshold fits all), and its inverse (the synthesis, columns scaled back).

    Built from PyWavelets' own transform of unit vectors (its C code, no BLAS) and exact
    sums (``math.fsum``), so the matrices carry the same bits on every CPU.
    """
    forward = np.empty((BLOCK, BLOCK))
    inverse = np.empty((BLOCK, BLOCK))
    with warnings.catch_warnings():
        # PyWavelets warns that three levels of 8 samples all touch the (periodic) boundary:
        # that is the transform meant here.
        warnings.simplefilter("ignore", UserWarning)
        for k in range(BLOCK):
            unit = np.zeros(BLOCK)
            unit[k] = 1.0
            forward[:, k] = np.concatenate(
                pywt.wavedec(unit, "bior1.5", mode="periodization", level=3)
            )
            bands = [unit[:1], unit[1:2], unit[2:4], unit[4:8]]
            inverse[:, k] = pywt.waverec(bands, "bior1.5", mode="periodization")
    for u in range(BLOCK):
        norm = math.sqrt(math.fsum(float(v) * float(v) for v in forward[u]))
        forward[u] /= norm
        inverse[:, u] *= norm
    return forward, inverse


def kaiser_window(n: int) -> Float:
    return np.asarray(np.outer(np.kaiser(n, KAISER_BETA), np.kaiser(n, KAISER_BETA)), np.float64)


def grid(n: int, step: int) -> npt.NDArray[np.int64]:
    """Reference block positions along one axis: every ``step`` px, the last one included."""
    last = n - BLOCK
    positions = list(range(0, last + 1, step))
    if positions[-1] != last:
        positions.append(last)
    return np.asarray(positions, np.int64)


def half_offsets(radius: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The offsets of one half of the search window (``dy > 0``, or ``dy == 0`` and
    ``dx > 0``), nearest first (then by dy, dx)."""
    offsets = sorted(
        (
            (dy * dy + dx * dx, dy, dx)
            for dy in range(radius + 1)
            for dx in range(-radius, radius + 1)
            if dy > 0 or dx > 0
        ),
    )
    return (
        np.asarray([o[1] for o in offsets], np.int64),
        np.asarray([o[2] for o in offsets], np.int64),
    )


@nb.njit(cache=True)
def _insert(best_d, best_y, best_x, i, j, d, y, x):  # type: ignore[no-untyped-def]
    """Insert candidate (d, y, x), closer than the last entry, into the sorted list of
    reference (i, j); an equal distance goes after those already there (visiting order decides
    ties). Returns the list's new last distance."""
    m = best_d.shape[2] - 1
    while m > 0 and best_d[i, j, m - 1] > d:
        best_d[i, j, m] = best_d[i, j, m - 1]
        best_y[i, j, m] = best_y[i, j, m - 1]
        best_x[i, j, m] = best_x[i, j, m - 1]
        m -= 1
    best_d[i, j, m] = d
    best_y[i, j, m] = y
    best_x[i, j, m] = x
    return best_d[i, j, best_d.shape[2] - 1]


@nb.njit(cache=True)
def band_starts(ny, h):  # type: ignore[no-untyped-def]
    """The first reference row of each band, and ``ny`` last: ``h // BAND_HEIGHT`` bands
    (at least 1, at most `MAX_BANDS` and ``ny``) of consecutive reference rows, as equal as
    they divide."""
    bands = min(ny, min(MAX_BANDS, max(1, h // BAND_HEIGHT)))
    starts = np.empty(bands + 1, np.int64)
    for b in range(bands + 1):
        starts[b] = b * ny // bands
    return starts


# The two row updates of the running sums, on row views indexed from 0: with the offset
# arithmetic and numba's negative-index wrap-around out of the loop, the compiler vectorises
# them (2.2 times faster matching, checked in the assembly). Each element's operations are
# unchanged, so the bits are too.
@nb.njit(cache=True, inline="always")
def _first_row(a, b, ring, sums, n):  # type: ignore[no-untyped-def]
    """ring = (a - b)^2; sums += ring."""
    for k in range(n):
        d = a[k] - b[k]
        ring[k] = d * d
        sums[k] += ring[k]


@nb.njit(cache=True, inline="always")
def _next_row(a, b, ring, sums, n):  # type: ignore[no-untyped-def]
    """sums += (a - b)^2 - ring; ring = (a - b)^2."""
    for k in range(n):
        d = a[k] - b[k]
        new = d * d
        sums[k] += new - ring[k]
        ring[k] = new


@nb.njit(cache=True)
def _match_band(guide, ry, rx, off_y, off_x, bound, i0, i1, best_d, best_y, best_x, worst):  # type: ignore[no-untyped-def]
    """`match_blocks` for the references of rows ``i0 <= i < i1`` (their lists only): the
    rows of each distance map that these references read, the running sums restarted at the
    first of them."""
    h, w = guide.shape
    p = 8
    nx = rx.size
    row_ref = np.full(h, -1, np.int64)
    for i in range(i0, i1):
        row_ref[ry[i]] = i
    ring = np.zeros((p, w))
    colsum = np.zeros(w)
    for o in range(off_y.size):
        dy, dx = off_y[o], off_x[o]
        # Columns x where both x and x + dx are inside; block tops y with y + dy + 8 <= h.
        x_lo, x_hi = max(0, -dx), min(w, w - dx)
        tops = h - p - dy + 1
        if tops <= 0 or x_hi - x_lo < p:
            continue
        # Rows y whose block is a reference here (+o) or whose block at +o is (-o).
        y_first = max(0, ry[i0] - dy)
        y_end = min(tops, ry[i1 - 1] + 1)
        if y_first >= y_end:
            continue
        span = x_hi - x_lo
        sums = colsum[x_lo:x_hi]
        sums[:] = 0.0
        for t in range(p):
            _first_row(
                guide[y_first + t, x_lo:x_hi],
                guide[y_first + t + dy, x_lo + dx : x_hi + dx],
                ring[t, x_lo:x_hi], sums, span,
            )  # fmt: skip
        for y in range(y_first, y_end):
            if y > y_first:
                # Row y - 1 leaves the 8-row band, row y + 7 enters (in ring slot t).
                t = (y - y_first - 1) % p
                yn = y + p - 1
                _next_row(
                    guide[yn, x_lo:x_hi], guide[yn + dy, x_lo + dx : x_hi + dx],
                    ring[t, x_lo:x_hi], sums, span,
                )  # fmt: skip
            plus, minus = row_ref[y], row_ref[y + dy]
            if plus < 0 and minus < 0:
                continue
            if plus >= 0:
                for j in range(nx):
                    x = rx[j]
                    if x_lo <= x <= x_hi - p:
                        d = colsum[x]
                        for t in range(1, p):
                            d += colsum[x + t]
                        if d < worst[plus, j]:
                            worst[plus, j] = min(
                                bound, _insert(best_d, best_y, best_x, plus, j, d, y + dy, x + dx)
                            )
            if minus >= 0:
                for j in range(nx):
                    x = rx[j] - dx
                    if x_lo <= x <= x_hi - p:
                        d = colsum[x]
                        for t in range(1, p):
                            d += colsum[x + t]
                        if d < worst[minus, j]:
                            worst[minus, j] = min(
                                bound, _insert(best_d, best_y, best_x, minus, j, d, y, x)
                            )


@nb.njit(cache=True, parallel=True)
def match_blocks(guide, ry, rx, off_y, off_x, k_max, tau):  # type: ignore[no-untyped-def]
    """Per reference block (ry[i], rx[j]): up to ``k_max`` most similar block positions, most
    similar first (the reference itself first), and how many to use (a power of two).

    Offsets ``o = (dy, dx)`` are visited in the order given (`half_offsets`: nearest first,
    so the lists fill early with close, usually similar blocks and later candidates rarely
    enter), half of them: the distance map
    ``D_o(p)`` between the block at ``p`` and the block at ``p + o`` gives reference ``p``
    its candidate at ``+o`` and reference ``p + o`` its candidate at ``-o``. ``D_o`` is built
    row by row: a running sum of squared differences down each column over 8 rows (a ring of
    the last 8 rows' squared differences), then, at each reference (or a reference's ``-o``
    candidate), the sum of 8 of these column sums.

    The reference rows are split into fixed bands (`band_starts`: a function of the image
    size, never of the thread count), matched in parallel, each band's running sums
    restarted at the first row it reads: the lists, and every bit of the distances, are the
    same whatever the number of threads.
    """
    h = guide.shape[0]
    ny, nx = ry.size, rx.size
    best_d = np.full((ny, nx, k_max), np.inf)
    best_y = np.zeros((ny, nx, k_max), np.int64)
    best_x = np.zeros((ny, nx, k_max), np.int64)
    for i in range(ny):
        for j in range(nx):
            best_d[i, j, 0] = 0.0
            best_y[i, j, 0] = ry[i]
            best_x[i, j, 0] = rx[j]
    # The distance a candidate must beat to enter each reference's list (its last entry).
    # Kept at most the next float above the threshold: one comparison accepts a candidate
    # (d < worst is d <= limit and closer than the last entry).
    limit = tau * 8 * 8
    bound = np.nextafter(limit, np.inf)
    worst = np.full((ny, nx), bound)
    starts = band_starts(ny, h)
    for b in nb.prange(starts.size - 1):
        _match_band(
            guide, ry, rx, off_y, off_x, bound, starts[b], starts[b + 1],
            best_d, best_y, best_x, worst,
        )  # fmt: skip
    counts = np.zeros((ny, nx), np.int64)
    for i in range(ny):
        for j in range(nx):
            n = 0
            for m in range(k_max):
                if best_d[i, j, m] < np.inf:
                    n += 1
            size = 1
            while size * 2 <= n:
                size *= 2
            counts[i, j] = size
    return best_y, best_x, counts


@nb.njit(cache=True)
def _dct2(plane, y0, x0, c, ct, tmp, out):  # type: ignore[no-untyped-def]
    """out = c @ plane[y0:y0+8, x0:x0+8] @ c.T (any 8 x 8 ``c``; ``ct`` its transpose); each
    sum starts from 0 and runs in index order. The 8 inputs of each 1-D transform are held
    in locals: the compiler cannot prove that ``plane``, ``tmp`` and ``out`` do not overlap,
    and would otherwise reload and store at every step."""
    for x in range(8):
        b0, b1, b2, b3 = (
            plane[y0, x0 + x],
            plane[y0 + 1, x0 + x],
            plane[y0 + 2, x0 + x],
            plane[y0 + 3, x0 + x],
        )
        b4, b5, b6, b7 = (
            plane[y0 + 4, x0 + x],
            plane[y0 + 5, x0 + x],
            plane[y0 + 6, x0 + x],
            plane[y0 + 7, x0 + x],
        )
        for u in range(8):
            s = 0.0
            s += c[u, 0] * b0
            s += c[u, 1] * b1
            s += c[u, 2] * b2
            s += c[u, 3] * b3
            s += c[u, 4] * b4
            s += c[u, 5] * b5
            s += c[u, 6] * b6
            s += c[u, 7] * b7
            tmp[u, x] = s
    for u in range(8):
        t0, t1, t2, t3 = tmp[u, 0], tmp[u, 1], tmp[u, 2], tmp[u, 3]
        t4, t5, t6, t7 = tmp[u, 4], tmp[u, 5], tmp[u, 6], tmp[u, 7]
        for v in range(8):
            s = 0.0
            s += t0 * ct[0, v]
            s += t1 * ct[1, v]
            s += t2 * ct[2, v]
            s += t3 * ct[3, v]
            s += t4 * ct[4, v]
            s += t5 * ct[5, v]
            s += t6 * ct[6, v]
            s += t7 * ct[7, v]
            out[u, v] = s


@nb.njit(cache=True)
def _idct2(coef, c, ct, tmp, out):  # type: ignore[no-untyped-def]
    """out = c.T @ coef @ c (``ct`` the transpose of ``c``); each sum starts from 0 and runs
    in index order, inputs held in locals (see `_dct2`)."""
    for v in range(8):
        k0, k1, k2, k3 = coef[0, v], coef[1, v], coef[2, v], coef[3, v]
        k4, k5, k6, k7 = coef[4, v], coef[5, v], coef[6, v], coef[7, v]
        for y in range(8):
            s = 0.0
            s += ct[y, 0] * k0
            s += ct[y, 1] * k1
            s += ct[y, 2] * k2
            s += ct[y, 3] * k3
            s += ct[y, 4] * k4
            s += ct[y, 5] * k5
            s += ct[y, 6] * k6
            s += ct[y, 7] * k7
            tmp[y, v] = s
    for y in range(8):
        t0, t1, t2, t3 = tmp[y, 0], tmp[y, 1], tmp[y, 2], tmp[y, 3]
        t4, t5, t6, t7 = tmp[y, 4], tmp[y, 5], tmp[y, 6], tmp[y, 7]
        for x in range(8):
            s = 0.0
            s += t0 * c[0, x]
            s += t1 * c[1, x]
            s += t2 * c[2, x]
            s += t3 * c[3, x]
            s += t4 * c[4, x]
            s += t5 * c[5, x]
            s += t6 * c[6, x]
            s += t7 * c[7, x]
            out[y, x] = s


@nb.njit(cache=True)
def _haar(group, n, scratch):  # type: ignore[no-untyped-def]
    """Orthonormal 1-D Haar transform along axis 0 of group[:n] (n a power of 2), in place:
    full dyadic decomposition, coarsest (the scaled mean) first."""
    r = 1.0 / math.sqrt(2.0)
    length = n
    while length > 1:
        half = length // 2
        for k in range(half):
            for u in range(8):
                for v in range(8):
                    a = group[2 * k, u, v]
                    b = group[2 * k + 1, u, v]
                    scratch[k, u, v] = (a + b) * r
                    scratch[half + k, u, v] = (a - b) * r
        for k in range(length):
            for u in range(8):
                for v in range(8):
                    group[k, u, v] = scratch[k, u, v]
        length = half


@nb.njit(cache=True)
def _ihaar(group, n, scratch):  # type: ignore[no-untyped-def]
    """Inverse of `_haar`."""
    r = 1.0 / math.sqrt(2.0)
    length = 2
    while length <= n:
        half = length // 2
        for k in range(half):
            for u in range(8):
                for v in range(8):
                    a = group[k, u, v]
                    b = group[half + k, u, v]
                    scratch[2 * k, u, v] = (a + b) * r
                    scratch[2 * k + 1, u, v] = (a - b) * r
        for k in range(length):
            for u in range(8):
                for v in range(8):
                    group[k, u, v] = scratch[k, u, v]
        length *= 2


@nb.njit(cache=True)
def _cached_dct(plane, y0, x0, c, ct, tmp, cache, tag, dest):  # type: ignore[no-untyped-def]
    """The 2-D DCT of the block of ``plane`` at (y0, x0), computed once while its row stays in
    the cache (``cache[y0 % rows, x0]``, tagged with y0): a block belongs to many groups, and
    the references are visited row by row, so a ring of rows a search window high holds every
    block the current row of references can group. The values are those `_dct2` computes;
    copied into ``dest``."""
    slot = y0 % tag.shape[0]
    if tag[slot, x0] != y0:
        _dct2(plane, y0, x0, c, ct, tmp, cache[slot, x0])
        tag[slot, x0] = y0
    for u in range(8):
        for v in range(8):
            dest[u, v] = cache[slot, x0, u, v]


@nb.njit(cache=True)
def band_rows(starts, gy, counts):  # type: ignore[no-untyped-def]
    """Per band of reference rows (`band_starts`), the image rows its groups touch:
    ``lo[b] <= y < hi[b]``; and the highest band's height."""
    bands = starts.size - 1
    lo = np.empty(bands, np.int64)
    hi = np.empty(bands, np.int64)
    span = 0
    for b in range(bands):
        top, bottom = gy[starts[b], 0, 0], 0
        for i in range(starts[b], starts[b + 1]):
            for j in range(gy.shape[1]):
                for m in range(counts[i, j]):
                    top = min(top, gy[i, j, m])
                    bottom = max(bottom, gy[i, j, m] + 8)
        lo[b], hi[b] = top, bottom
        span = max(span, bottom - top)
    return lo, hi, span


@nb.njit(cache=True)
def _add_bands(num, den, band_num, band_den, lo, hi):  # type: ignore[no-untyped-def]
    """num += each band's sums, in band order (the order, so the bits, fixed)."""
    for b in range(lo.size):
        for y in range(hi[b] - lo[b]):
            for x in range(num.shape[1]):
                num[lo[b] + y, x] += band_num[b, y, x]
                den[lo[b] + y, x] += band_den[b, y, x]


@nb.njit(cache=True)
def _hard_band(  # type: ignore[no-untyped-def]
    plane, i0, i1, row0, rx, gy, gx, counts, threshold, c, inverse, window, rows, num, den
):
    """Stage 1 for the references of rows ``i0 <= i < i1`` of one plane, into this band's
    ``num``, ``den`` (zeroed here; their row 0 is the image's ``row0``)."""
    w = plane.shape[1]
    k_max = gy.shape[2]
    ct = np.ascontiguousarray(c.T)
    inverse_t = np.ascontiguousarray(inverse.T)
    group = np.empty((k_max, 8, 8))
    scratch = np.empty((k_max, 8, 8))
    tmp = np.empty((8, 8))
    out = np.empty((8, 8))
    cache = np.empty((rows, w, 8, 8))
    tag = np.full((rows, w), -1, np.int64)
    num[:] = 0.0
    den[:] = 0.0
    for i in range(i0, i1):
        for j in range(rx.size):
            n = counts[i, j]
            for m in range(n):
                y0, x0 = gy[i, j, m], gx[i, j, m]
                _cached_dct(plane, y0, x0, c, ct, tmp, cache, tag, group[m])
            _haar(group, n, scratch)
            kept = 0
            for m in range(n):
                for u in range(8):
                    for v in range(8):
                        if abs(group[m, u, v]) < threshold:
                            group[m, u, v] = 0.0
                        else:
                            kept += 1
            _ihaar(group, n, scratch)
            weight = 1.0 / max(kept, 1)
            for m in range(n):
                _idct2(group[m], inverse_t, inverse, tmp, out)
                y0, x0 = gy[i, j, m] - row0, gx[i, j, m]
                for y in range(8):
                    for x in range(8):
                        k = weight * window[y, x]
                        num[y0 + y, x0 + x] += k * out[y, x]
                        den[y0 + y, x0 + x] += k


@nb.njit(cache=True, parallel=True)
def hard_threshold_stage(noisy, ry, rx, gy, gx, counts, sigma, lam, c, inverse, window, rows):  # type: ignore[no-untyped-def]
    """Stage 1: the basic estimate of every channel of ``noisy`` (C, H, W), as (num, den).
    ``c``: the 2-D block transform's matrix, ``inverse`` its inverse. Channels are
    independent given the groups: one at a time. The reference rows are split into fixed
    bands (`band_starts`), run in parallel, each with its own cache of ``rows`` rows of block
    transforms and its own sums over the rows its groups touch (`band_rows`), then added in
    band order: the same bits whatever the number of threads."""
    ch, h, w = noisy.shape
    num = np.zeros((ch, h, w))
    den = np.zeros((ch, h, w))
    starts = band_starts(ry.size, h)
    lo, hi, span = band_rows(starts, gy, counts)
    band_num = np.empty((starts.size - 1, span, w))
    band_den = np.empty((starts.size - 1, span, w))
    threshold = lam * sigma
    for q in range(ch):
        for b in nb.prange(starts.size - 1):
            _hard_band(
                noisy[q], starts[b], starts[b + 1], lo[b], rx, gy, gx, counts, threshold,
                c, inverse, window, rows, band_num[b], band_den[b],
            )  # fmt: skip
        _add_bands(num[q], den[q], band_num, band_den, lo, hi)
    return num, den


@nb.njit(cache=True)
def _wiener_band(noisy, basic, i0, i1, row0, rx, gy, gx, counts, sigma, c, window, rows, num, den):  # type: ignore[no-untyped-def]
    """Stage 2 for the references of rows ``i0 <= i < i1`` of one plane (see `_hard_band`)."""
    w = noisy.shape[1]
    k_max = gy.shape[2]
    ct = np.ascontiguousarray(c.T)
    group = np.empty((k_max, 8, 8))
    pilot = np.empty((k_max, 8, 8))
    scratch = np.empty((k_max, 8, 8))
    tmp = np.empty((8, 8))
    out = np.empty((8, 8))
    noisy_cache = np.empty((rows, w, 8, 8))
    noisy_tag = np.full((rows, w), -1, np.int64)
    basic_cache = np.empty((rows, w, 8, 8))
    basic_tag = np.full((rows, w), -1, np.int64)
    s2 = sigma * sigma
    num[:] = 0.0
    den[:] = 0.0
    for i in range(i0, i1):
        for j in range(rx.size):
            n = counts[i, j]
            for m in range(n):
                y0, x0 = gy[i, j, m], gx[i, j, m]
                _cached_dct(noisy, y0, x0, c, ct, tmp, noisy_cache, noisy_tag, group[m])
                _cached_dct(basic, y0, x0, c, ct, tmp, basic_cache, basic_tag, pilot[m])
            _haar(group, n, scratch)
            _haar(pilot, n, scratch)
            energy = 0.0
            for m in range(n):
                for u in range(8):
                    for v in range(8):
                        b2 = pilot[m, u, v] * pilot[m, u, v]
                        shrink = b2 / (b2 + s2)
                        group[m, u, v] *= shrink
                        energy += shrink * shrink
            _ihaar(group, n, scratch)
            weight = 1.0 / max(energy, 1e-12)
            for m in range(n):
                _idct2(group[m], c, ct, tmp, out)
                y0, x0 = gy[i, j, m] - row0, gx[i, j, m]
                for y in range(8):
                    for x in range(8):
                        k = weight * window[y, x]
                        num[y0 + y, x0 + x] += k * out[y, x]
                        den[y0 + y, x0 + x] += k


@nb.njit(cache=True, parallel=True)
def wiener_stage(noisy, basic, ry, rx, gy, gx, counts, sigma, c, window, rows):  # type: ignore[no-untyped-def]
    """Stage 2: empirical Wiener filtering of the noisy groups, the basic estimate as the
    pilot; (num, den). One channel at a time, bands in parallel (see `hard_threshold_stage`)."""
    ch, h, w = noisy.shape
    num = np.zeros((ch, h, w))
    den = np.zeros((ch, h, w))
    starts = band_starts(ry.size, h)
    lo, hi, span = band_rows(starts, gy, counts)
    band_num = np.empty((starts.size - 1, span, w))
    band_den = np.empty((starts.size - 1, span, w))
    for q in range(ch):
        for b in nb.prange(starts.size - 1):
            _wiener_band(
                noisy[q], basic[q], starts[b], starts[b + 1], lo[b], rx, gy, gx, counts, sigma,
                c, window, rows, band_num[b], band_den[b],
            )  # fmt: skip
        _add_bands(num[q], den[q], band_num, band_den, lo, hi)
    return num, den


#: Orthonormal opponent colour transform (rows): luma-like, red-blue, green-magenta. The
#: noise keeps its standard deviation in every channel; channel 0 guides the grouping.
OPPONENT = np.array(
    [
        [1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
        [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
        [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)],
    ]
)


def bm3d_stack(stack: Float, sigma: float) -> Float:
    """Both stages on a (C, H, W) float stack (H, W >= 8); channel 0 guides the grouping."""
    c = dct_matrix(BLOCK)
    wavelet, wavelet_inverse = bior15_matrices()
    window = kaiser_window(BLOCK)
    h, w = stack.shape[1:]
    off_y, off_x = half_offsets(RADIUS)
    ry, rx = grid(h, STEP_HARD), grid(w, STEP_HARD)
    gy, gx, counts = match_blocks(stack[0], ry, rx, off_y, off_x, GROUP_HARD, TAU_HARD)
    rows = 2 * RADIUS + 1  # the block rows one row of references can group
    num, den = hard_threshold_stage(
        stack, ry, rx, gy, gx, counts, sigma, LAMBDA_HARD, wavelet, wavelet_inverse, window, rows
    )
    basic = num / den
    ry, rx = grid(h, STEP_WIENER), grid(w, STEP_WIENER)
    gy, gx, counts = match_blocks(basic[0], ry, rx, off_y, off_x, GROUP_WIENER, TAU_WIENER)
    num, den = wiener_stage(stack, basic, ry, rx, gy, gx, counts, sigma, c, window, rows)
    return np.asarray(num / den, np.float64)


def bm3d_image(values: Float, sigma: float) -> Float:
    """BM3D of a [0, 1] grey (H, W) or RGB (H, W, 3) image: colour in the opponent space."""
    if values.ndim == 2:
        return np.asarray(bm3d_stack(np.ascontiguousarray(values[None], np.float64), sigma)[0])
    stack = np.ascontiguousarray(np.einsum("ij,hwj->ihw", OPPONENT, values), np.float64)
    out = bm3d_stack(stack, sigma)
    return np.asarray(np.einsum("ji,jhw->hwi", OPPONENT, out), np.float64)

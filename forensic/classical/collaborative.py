"""Collaborative filtering of grouped similar blocks (BM3D, Dabov et al. 2007), compiled with
numba, in a fast profile: the kernels behind `denoise_bm3d` version 1 (superseded, kept for
replay in `forensic.classical.superseded`) and `forensic.classical.videodenoise`. Version 2 of
`denoise_bm3d` uses `forensic.classical.bm3d_kernels` (the published search window, group
sizes and Haar transform). Nothing here may change the pixels it gives: recorded runs replay
through it.

Why our own code: the reference implementation's package (``bm3d``) has a non-commercial
licence (it stays a benchmark-only anchor), and numpy alone cannot run the per-block loops of
the method at a usable speed. numba compiles these loops to machine code; it is used without
``fastmath`` and single-threaded, so the floating-point operations and their order are
those written here: the output is the same on every CPU and whatever the thread count.

The method, per plane stack ``(C, H, W)`` (channel 0 guides the grouping):

1. Block matching: for reference blocks ``P x P`` on a grid of step ``step`` (the last row and
   column always included), the ``K`` most similar blocks within ``+-radius`` px (sum of
   squared differences of the guide, per offset by an integral image), kept while their mean
   squared difference is at most ``tau``; the group size is the largest power of two <= the
   number kept.
2. Stage 1 (hard thresholding): each group is transformed by a 2-D DCT of every block and a
   Walsh-Hadamard transform along the group; coefficients below ``lambda sigma`` are zeroed;
   the inverse gives estimates of every block, aggregated with weight ``1 / N_nonzero``
   times a Kaiser window (beta 2).
3. Stage 2 (Wiener): groups matched on the stage-1 estimate; the noisy group's 3-D spectrum is
   shrunk by ``|B|^2 / (|B|^2 + sigma^2)`` with ``B`` the stage-1 group's spectrum; weight
   ``1 / sum(shrink^2)``.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import numpy.typing as npt

from forensic.ops.pixels import Float

#: Block side.
BLOCK = 8


def dct_matrix(n: int) -> Float:
    """Orthonormal DCT-II matrix (rows: frequencies)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return np.asarray(c, np.float64)


def kaiser_window(n: int) -> Float:
    return np.asarray(np.outer(np.kaiser(n, 2.0), np.kaiser(n, 2.0)), np.float64)


def grid(n: int, step: int) -> npt.NDArray[np.int64]:
    """Reference block positions along one axis: every ``step`` px, the last one included."""
    last = n - BLOCK
    positions = list(range(0, last + 1, step))
    if positions[-1] != last:
        positions.append(last)
    return np.asarray(positions, np.int64)


@nb.njit(cache=True)
def _insert(best_d, best_y, best_x, i, j, d, y, x):  # type: ignore[no-untyped-def]
    """Insert candidate (d, y, x) into the sorted list of reference (i, j), if it belongs."""
    m = best_d.shape[2] - 1
    if d >= best_d[i, j, m]:
        return
    while m > 0 and best_d[i, j, m - 1] > d:
        best_d[i, j, m] = best_d[i, j, m - 1]
        best_y[i, j, m] = best_y[i, j, m - 1]
        best_x[i, j, m] = best_x[i, j, m - 1]
        m -= 1
    best_d[i, j, m] = d
    best_y[i, j, m] = y
    best_x[i, j, m] = x


@nb.njit(cache=True)
def match_blocks(guide, ry, rx, radius, k_max, tau):  # type: ignore[no-untyped-def]
    """Per reference block (ry[i], rx[j]): up to ``k_max`` most similar block positions, most
    similar first (the reference itself first), and how many to use (a power of two).

    Offsets are visited in a fixed order, half of them: the squared differences for offset
    ``o`` also give, displaced, those for ``-o`` (``|g(p) - g(p + o)|`` is the same pair seen
    from the other block), so one integral image serves both.
    """
    h, w = guide.shape
    p = 8
    ny, nx = ry.size, rx.size
    best_d = np.full((ny, nx, k_max), np.inf)
    best_y = np.zeros((ny, nx, k_max), np.int64)
    best_x = np.zeros((ny, nx, k_max), np.int64)
    for i in range(ny):
        for j in range(nx):
            best_d[i, j, 0] = 0.0
            best_y[i, j, 0] = ry[i]
            best_x[i, j, 0] = rx[j]
    integral = np.zeros((h + 1, w + 1))
    limit = tau * p * p
    for dy in range(0, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx <= 0:
                continue
            # Integral image of (guide(y, x) - guide(y + dy, x + dx))^2, 0 where y + dy or
            # x + dx falls outside.
            x_lo, x_hi = max(0, -dx), min(w, w - dx)
            for y in range(h):
                yy = y + dy
                row = 0.0
                if yy < h:
                    for x in range(x_lo):
                        integral[y + 1, x + 1] = integral[y, x + 1]
                    for x in range(x_lo, x_hi):
                        d = guide[y, x] - guide[yy, x + dx]
                        row += d * d
                        integral[y + 1, x + 1] = integral[y, x + 1] + row
                    for x in range(x_hi, w):
                        integral[y + 1, x + 1] = integral[y, x + 1] + row
                else:
                    for x in range(w):
                        integral[y + 1, x + 1] = integral[y, x + 1]
            for i in range(ny):
                y = ry[i]
                for j in range(nx):
                    x = rx[j]
                    # Candidate at +o: the box at the reference.
                    cy, cx = y + dy, x + dx
                    if cy <= h - p and 0 <= cx <= w - p:
                        d = (
                            integral[y + p, x + p]
                            - integral[y, x + p]
                            - integral[y + p, x]
                            + integral[y, x]
                        )
                        if d <= limit:
                            _insert(best_d, best_y, best_x, i, j, d, cy, cx)
                    # Candidate at -o: the box at the candidate.
                    cy, cx = y - dy, x - dx
                    if cy >= 0 and 0 <= cx <= w - p:
                        d = (
                            integral[cy + p, cx + p]
                            - integral[cy, cx + p]
                            - integral[cy + p, cx]
                            + integral[cy, cx]
                        )
                        if d <= limit:
                            _insert(best_d, best_y, best_x, i, j, d, cy, cx)
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
def _dct2(block, c, out):  # type: ignore[no-untyped-def]
    """out = c @ block @ c.T (8 x 8)."""
    p = 8
    tmp = np.empty((p, p))
    for u in range(p):
        for x in range(p):
            s = 0.0
            for y in range(p):
                s += c[u, y] * block[y, x]
            tmp[u, x] = s
    for u in range(p):
        for v in range(p):
            s = 0.0
            for x in range(p):
                s += tmp[u, x] * c[v, x]
            out[u, v] = s


@nb.njit(cache=True)
def _idct2(coef, c, out):  # type: ignore[no-untyped-def]
    """out = c.T @ coef @ c (8 x 8)."""
    p = 8
    tmp = np.empty((p, p))
    for y in range(p):
        for v in range(p):
            s = 0.0
            for u in range(p):
                s += c[u, y] * coef[u, v]
            tmp[y, v] = s
    for y in range(p):
        for x in range(p):
            s = 0.0
            for v in range(p):
                s += tmp[y, v] * c[v, x]
            out[y, x] = s


@nb.njit(cache=True)
def _hadamard(group, n):  # type: ignore[no-untyped-def]
    """Orthonormal Walsh-Hadamard transform along axis 0 of group[:n] (n a power of 2), in
    place; its own inverse."""
    h = 1
    while h < n:
        for i in range(0, n, 2 * h):
            for j in range(i, i + h):
                for u in range(8):
                    for v in range(8):
                        a = group[j, u, v]
                        b = group[j + h, u, v]
                        group[j, u, v] = a + b
                        group[j + h, u, v] = a - b
        h *= 2
    scale = 1.0 / math.sqrt(n)
    for j in range(n):
        for u in range(8):
            for v in range(8):
                group[j, u, v] *= scale


@nb.njit(cache=True)
def hard_threshold_stage(noisy, ry, rx, gy, gx, counts, sigma, lam, c, window):  # type: ignore[no-untyped-def]
    """Stage 1: the basic estimate of every channel of ``noisy`` (C, H, W)."""
    ch, h, w = noisy.shape
    num = np.zeros((ch, h, w))
    den = np.zeros((ch, h, w))
    k_max = gy.shape[2]
    group = np.empty((k_max, 8, 8))
    block = np.empty((8, 8))
    out = np.empty((8, 8))
    threshold = lam * sigma
    for i in range(ry.size):
        for j in range(rx.size):
            n = counts[i, j]
            for q in range(ch):
                for m in range(n):
                    y0, x0 = gy[i, j, m], gx[i, j, m]
                    for y in range(8):
                        for x in range(8):
                            block[y, x] = noisy[q, y0 + y, x0 + x]
                    _dct2(block, c, group[m])
                _hadamard(group, n)
                kept = 0
                for m in range(n):
                    for u in range(8):
                        for v in range(8):
                            if abs(group[m, u, v]) < threshold:
                                group[m, u, v] = 0.0
                            else:
                                kept += 1
                _hadamard(group, n)
                weight = 1.0 / max(kept, 1)
                for m in range(n):
                    _idct2(group[m], c, out)
                    y0, x0 = gy[i, j, m], gx[i, j, m]
                    for y in range(8):
                        for x in range(8):
                            k = weight * window[y, x]
                            num[q, y0 + y, x0 + x] += k * out[y, x]
                            den[q, y0 + y, x0 + x] += k
    return num, den


@nb.njit(cache=True)
def wiener_stage(noisy, basic, ry, rx, gy, gx, counts, sigma, c, window):  # type: ignore[no-untyped-def]
    """Stage 2: empirical Wiener filtering of the noisy groups, the basic estimate as the
    pilot."""
    ch, h, w = noisy.shape
    num = np.zeros((ch, h, w))
    den = np.zeros((ch, h, w))
    k_max = gy.shape[2]
    group = np.empty((k_max, 8, 8))
    pilot = np.empty((k_max, 8, 8))
    block = np.empty((8, 8))
    out = np.empty((8, 8))
    s2 = sigma * sigma
    for i in range(ry.size):
        for j in range(rx.size):
            n = counts[i, j]
            for q in range(ch):
                for m in range(n):
                    y0, x0 = gy[i, j, m], gx[i, j, m]
                    for y in range(8):
                        for x in range(8):
                            block[y, x] = noisy[q, y0 + y, x0 + x]
                    _dct2(block, c, group[m])
                    for y in range(8):
                        for x in range(8):
                            block[y, x] = basic[q, y0 + y, x0 + x]
                    _dct2(block, c, pilot[m])
                _hadamard(group, n)
                _hadamard(pilot, n)
                energy = 0.0
                for m in range(n):
                    for u in range(8):
                        for v in range(8):
                            b2 = pilot[m, u, v] * pilot[m, u, v]
                            shrink = b2 / (b2 + s2)
                            group[m, u, v] *= shrink
                            energy += shrink * shrink
                _hadamard(group, n)
                weight = 1.0 / max(energy, 1e-12)
                for m in range(n):
                    _idct2(group[m], c, out)
                    y0, x0 = gy[i, j, m], gx[i, j, m]
                    for y in range(8):
                        for x in range(8):
                            k = weight * window[y, x]
                            num[q, y0 + y, x0 + x] += k * out[y, x]
                            den[q, y0 + y, x0 + x] += k
    return num, den


#: Parameters (Dabov et al.'s "normal profile" except where said): block step 4 (theirs 3)
#: and search radius 8 (theirs 19) for speed, measured on chelsea and coins at sigma 25/255
#: to cost 0.07 dB for a 2.7x shorter run; group sizes 16 (stage 2: theirs 32, measured
#: equal here); matching thresholds 2500 and 400 grey levels^2 per pixel (8-bit scale);
#: hard threshold 2.7 sigma.
STEP = 4
RADIUS = 8
GROUP = 16
TAU_HARD = 2500.0 / 255.0**2
TAU_WIENER = 400.0 / 255.0**2
LAMBDA_HARD = 2.7

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
    window = kaiser_window(BLOCK)
    ry, rx = grid(stack.shape[1], STEP), grid(stack.shape[2], STEP)
    gy, gx, counts = match_blocks(stack[0], ry, rx, RADIUS, GROUP, TAU_HARD)
    num, den = hard_threshold_stage(stack, ry, rx, gy, gx, counts, sigma, LAMBDA_HARD, c, window)
    basic = num / den
    gy, gx, counts = match_blocks(basic[0], ry, rx, RADIUS, GROUP, TAU_WIENER)
    num, den = wiener_stage(stack, basic, ry, rx, gy, gx, counts, sigma, c, window)
    return np.asarray(num / den, np.float64)


def bm3d_image(values: Float, sigma: float) -> Float:
    """BM3D of a [0, 1] grey (H, W) or RGB (H, W, 3) image: colour in the opponent space."""
    if values.ndim == 2:
        return np.asarray(bm3d_stack(np.ascontiguousarray(values[None], np.float64), sigma)[0])
    stack = np.ascontiguousarray(np.einsum("ij,hwj->ihw", OPPONENT, values), np.float64)
    out = bm3d_stack(stack, sigma)
    return np.asarray(np.einsum("ji,jhw->hwi", OPPONENT, out), np.float64)

"""The built-in learned super-resolution model (x2, x4): a small residual ESPCN on luma.

Architecture: the low-resolution luma ``y`` goes through conv 5x5 (1 -> 32) + tanh, conv 3x3
(32 -> 32) + tanh, conv 3x3 (32 -> r^2), and a pixel shuffle to r x r; the result is *added*
to the bicubic enlargement of ``y`` (OpenCV's, the classical baseline). The network therefore
only learns what bicubic misses, and what it adds is exactly what the inferred-content map
shows. Chroma (BT.601 Cb, Cr) is enlarged by bicubic interpolation only.

Weights are trained by `forensic.generative.train_sr` on images shipped in scikit-image's
wheel (see ``models/MODEL_CARD.md``) and stored as safetensors. Inference runs on the device the
run chose (`forensic.generative.engine`: the CPU with one thread, or a CUDA GPU), with
deterministic algorithms, tile by tile, so a replay is bit-exact on the same build and device.
"""

from __future__ import annotations

import functools
import hashlib
import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.torch import load as safetensors_load
from safetensors.torch import load_file

from forensic.generative import engine
from forensic.hashing import sha256_file
from forensic.ops.pixels import from_float, join_alpha, split_alpha, to_float

MODELS = Path(__file__).resolve().parent / "models"
SCALES = (2, 4)
BT601 = np.array([0.299, 0.587, 0.114])


class ResidualESPCN(torch.nn.Module):
    def __init__(self, scale: int, features: int = 32) -> None:
        super().__init__()
        self.scale = scale
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, features, 5, padding=2),
            torch.nn.Tanh(),
            torch.nn.Conv2d(features, features, 3, padding=1),
            torch.nn.Tanh(),
            torch.nn.Conv2d(features, scale * scale, 3, padding=1),
            torch.nn.PixelShuffle(scale),
        )

    def forward(self, low: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = baseline + self.body(low)
        return out


def weights_path(scale: int) -> Path:
    return MODELS / f"sr_x{scale}.safetensors"


@functools.cache
def load_model(scale: int) -> ResidualESPCN:
    model = ResidualESPCN(scale)
    model.load_state_dict(load_file(str(weights_path(scale))))
    model.eval()
    return model


def weights_sha256(scale: int) -> str:
    return sha256_file(weights_path(scale))[0]


def bicubic(values: NDArray[np.float64], scale: int) -> NDArray[np.float64]:
    h, w = values.shape[:2]
    out = cv2.resize(
        values.astype(np.float32), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC
    )
    return np.asarray(out, np.float64)


#: Weights files read in this process, by resolved path: (SHA-256, bytes). A file is read
#: exactly once, so that the bytes approved by hash are the bytes that run, are recorded and
#: are copied into the case, even if the file changes on disk meanwhile.
_PINNED: dict[str, tuple[str, bytes]] = {}


def pinned_weights(path: str, op: str = "generative.user_model") -> tuple[bytes, str]:
    """(bytes, SHA-256) of a weights file, read once per process (``op`` names the operation
    in an error)."""
    from forensic.errors import ParameterError

    file = Path(path)
    key = str(file.resolve())
    if key not in _PINNED:
        if not file.is_file():
            raise ParameterError(op, "weights", f"{path!r} is not a file")
        data = file.read_bytes()
        _PINNED[key] = (hashlib.sha256(data).hexdigest(), data)
    digest, data = _PINNED[key]
    return data, digest


def load_user_model(path: str, scale: int, architecture: str = "residual_espcn") -> torch.nn.Module:
    """Weights supplied by the examiner: safetensors, or a state dict read with weights-only
    unpickling (``torch.load(weights_only=True)``), so the file cannot execute code."""
    from forensic.errors import ParameterError
    from forensic.generative.rrdbnet import from_state_dict

    data, _ = pinned_weights(path)
    try:
        if Path(path).suffix == ".safetensors":
            state = safetensors_load(data)
        else:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model: torch.nn.Module
        if architecture == "rrdbnet":
            model = from_state_dict(state)
        else:
            model = ResidualESPCN(scale)
            model.load_state_dict(state)
    except Exception as exc:  # any unreadable or mismatched file is the examiner's input error
        raise ParameterError(
            "generative.user_model",
            "weights",
            f"{path!r} cannot be loaded as {architecture} x{scale} weights ({type(exc).__name__})",
            hint="give a .safetensors file or a .pt/.pth state dict of this architecture",
        ) from None
    if getattr(model, "scale", scale) != scale:
        raise ParameterError(
            "generative.user_model",
            "scale",
            f"is {scale}, but the weights are for x{getattr(model, 'scale', '?')}",
        )
    model.eval()
    return model


#: Input pixels per tile side. The built-in model's result does not depend on it (its overlap
#: covers the receptive field); it bounds the memory a large image needs.
TILE = 256
#: Receptive-field radius of the residual ESPCN (5x5, 3x3, 3x3 convolutions: 2 + 1 + 1).
ESPCN_RADIUS = 4
ESPCN_OVERLAP = 8
#: RRDBNet's receptive field spans hundreds of pixels, more than any practical overlap: pixels
#: near a seam differ slightly from a one-pass run (measured in tests and bench section 11).
RRDBNET_OVERLAP = 32


def tiling_for(architecture: str) -> engine.Tiling:
    """The tile and overlap a network runs with (recorded with the step)."""
    if architecture == "rrdbnet":
        return engine.Tiling(TILE, RRDBNET_OVERLAP)
    return engine.Tiling(TILE, ESPCN_OVERLAP)


def device_for(architecture: str, device: engine.Device | None = None) -> engine.Device:
    """The device a network runs on: the active one, with oneDNN off on the CPU for the
    residual ESPCN (so tiles give a one-pass result bit for bit; it costs about 3x on that
    small network) and on for RRDBNet (tiles cannot be exact there; oneDNN is about 2.5x
    faster on the CPU)."""
    chosen = engine.current() if device is None else device
    return chosen.with_onednn(architecture == "rrdbnet")


def _one_pass_cpu_v1(fn: Any) -> Any:
    """How versions 1 of the operations ran a network: one pass on the CPU, one thread,
    deterministic algorithms, oneDNN at torch's default (on). Kept for their replay."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    onednn = torch.backends.mkldnn.set_flags(True, None, None)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.no_grad():
            return fn()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.mkldnn.set_flags(onednn[0], onednn[1], None, onednn[3])


def enlarge_luma_v1(
    y: NDArray[np.float64], scale: int, model: torch.nn.Module | None = None
) -> NDArray[np.float64]:
    """Version 1's luma enlargement (one pass, CPU), for the replay of runs that used it."""
    cpu = (load_model(scale) if model is None else model).to("cpu")
    low = torch.from_numpy(y.astype(np.float32))[None, None]
    base = torch.from_numpy(bicubic(y, scale).astype(np.float32))[None, None]
    out = _one_pass_cpu_v1(lambda: cpu(low, base))[0, 0].numpy()
    return np.asarray(out, np.float64)


def rgb_resolve_v1(image: NDArray[Any], model: torch.nn.Module, scale: int) -> NDArray[Any]:
    """Version 1 of `rgb_resolve` (one pass, CPU), for the replay of runs that used it."""
    return rgb_resolve(image, model, scale, one_pass_v1=True)


def rgb_resolve(
    image: NDArray[Any], model: torch.nn.Module, scale: int, *, one_pass_v1: bool = False
) -> NDArray[Any]:
    """Enlarge with a network that works on RGB (ESRGAN-style), output clipped to [0, 1]."""
    from forensic.errors import ParameterError

    colour, alpha = split_alpha(image)
    values = to_float(colour)
    channels = int(model.conv_first.weight.shape[1])  # type: ignore[union-attr,index]
    if channels == 1 and values.ndim == 3:
        raise ParameterError(
            "generative.user_model", "weights", "are for greyscale images; this image is colour"
        )
    grey = values.ndim == 2
    planes = np.repeat(values[..., None], channels, axis=2) if grey else values
    tensor = np.ascontiguousarray(planes.transpose(2, 0, 1), np.float32)[None]
    if one_pass_v1:
        cpu = model.to("cpu")
        tiled = _one_pass_cpu_v1(lambda: cpu(torch.from_numpy(tensor))).numpy()
    else:
        device, tiling = device_for("rrdbnet"), tiling_for("rrdbnet")
        with engine.deterministic(device):
            fn = engine.torch_tiles(model, device)
            tiled = engine.run_tiled(
                fn, tensor, tiling.tile, tiling.overlap, scale, engine.current_progress()
            )
    out = tiled[0].transpose(1, 2, 0)
    result = np.asarray(out, np.float64)
    if grey:
        result = result.mean(axis=2)
    enlarged = from_float(result, image.dtype)
    if alpha is not None:
        h, w = alpha.shape
        big = cv2.resize(alpha, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST_EXACT)
        return join_alpha(enlarged, big)
    return enlarged


def enlarge_luma(
    y: NDArray[np.float64], scale: int, model: torch.nn.Module | None = None
) -> NDArray[np.float64]:
    """The model's luma enlargement (float [0, 1] in and out): bicubic plus the network's
    addition, run tile by tile on the active device with its determinism settings."""
    model = load_model(scale) if model is None else model
    low = np.ascontiguousarray(y, np.float32)[None, None]
    base = bicubic(y, scale).astype(np.float32)
    device, tiling = device_for("residual_espcn"), tiling_for("residual_espcn")
    with engine.deterministic(device):
        fn = engine.torch_tiles(model.body, device)
        added = engine.run_tiled(
            fn, low, tiling.tile, tiling.overlap, scale, engine.current_progress()
        )
    # The same float32 sum as ResidualESPCN.forward (baseline + body(low)).
    return np.asarray(base + added[0, 0], np.float64)


#: Largest output a generative enlargement may make (pixels): the uncertainty map runs the
#: model eight more times, and a 12-megapixel photo at x4 would need tens of GB of memory.
MAX_OUTPUT_PIXELS = 16_000_000


def check_size(op: str, image: NDArray[Any], scale: int) -> None:
    from forensic.errors import ParameterError

    pixels = image.shape[0] * image.shape[1] * scale * scale
    if pixels > MAX_OUTPUT_PIXELS:
        raise ParameterError(
            op,
            "image",
            f"is {image.shape[1]} x {image.shape[0]}; x{scale} would make {pixels:,} pixels, "
            f"more than {MAX_OUTPUT_PIXELS:,}",
            hint="crop to the region of interest first",
        )


def super_resolve(
    image: NDArray[Any],
    scale: int,
    model: torch.nn.Module | None = None,
    *,
    enlarge: Any = None,
) -> NDArray[Any]:
    """Enlarge ``image`` (grey or colour, uint8 or uint16) by ``scale`` with the model (the
    built-in one unless ``model`` is given); ``enlarge`` is the luma enlargement (default
    `enlarge_luma`; `enlarge_luma_v1` for version 1)."""
    enlarge = enlarge_luma if enlarge is None else enlarge
    colour, alpha = split_alpha(image)
    values = to_float(colour)
    if values.ndim == 2:
        out = enlarge(values, scale, model)
    else:
        y = values @ BT601
        cb = (values[..., 2] - y) / 1.772
        cr = (values[..., 0] - y) / 1.402
        y2 = enlarge(y, scale, model)
        cb2, cr2 = bicubic(cb, scale), bicubic(cr, scale)
        r = y2 + 1.402 * cr2
        b = y2 + 1.772 * cb2
        g = (y2 - 0.299 * r - 0.114 * b) / 0.587
        out = np.stack([r, g, b], axis=2)
    enlarged = from_float(out, image.dtype)
    if alpha is not None:
        h, w = alpha.shape
        big_alpha = cv2.resize(alpha, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST_EXACT)
        return join_alpha(enlarged, big_alpha)
    return enlarged

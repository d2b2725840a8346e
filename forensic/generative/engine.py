"""Where and how the generative lane's networks run: the device, its determinism, and tiling.

Shared by every network of the lane (the built-in models, user weights, ONNX sessions):

* `select_device` turns the examiner's ``auto | cpu | cuda`` and the policy's allowed
  devices into a `Device`: what ran the step, recorded in its journal entry (kind, model,
  driver, CUDA and cuDNN versions, torch version and the determinism settings in force).
  Nothing is chosen silently: ``cuda`` on a machine without CUDA, or on a case whose policy
  does not allow it, is refused (the policy fails closed: ``cpu`` only unless it names
  ``cuda``).
* `deterministic` is the one place those settings are applied while a network runs:
  ``torch.use_deterministic_algorithms(True)``, TF32 off for matrix products and cuDNN,
  cuDNN's benchmark (autotuning) off, ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (cuBLAS refuses
  deterministic mode without it) and, on the CPU, one thread.
* `run_tiled` runs any callable that maps a float32 NCHW array to its enlarged output (a torch
  module through `torch_tiles`, or an onnxruntime session) tile by tile, streaming each tile's
  centre into one preallocated output, so memory is bounded by the tile, not the image.

The blend is **crop-centre**: the image is cut into a grid of ``tile`` x ``tile`` cores; each
core is run with ``overlap`` extra input pixels on every side (fewer at the image border) and
only the core's part of the output is kept. There is no averaging between tiles. When the
overlap covers the network's receptive field (radius 4 for the built-in model), every output
pixel sees exactly the inputs it would see in one pass over the whole image, so the result
does not depend on the tile count (tested bit for bit on the CPU with oneDNN off, see
`Device.onednn`). For a network whose receptive field is wider than the overlap (RRDBNet's
spans hundreds of pixels), pixels near a seam differ slightly from a one-pass run; the tile
and overlap used are recorded with the step so that a replay uses the same.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import platform
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from forensic.errors import InputError, PolicyError

#: What the examiner may ask for.
DEVICE_CHOICES = ("auto", "cpu", "cuda")
#: Device kinds a policy may allow (``[profiles.X.generative] devices``).
DEVICE_KINDS = ("cpu", "cuda")
#: cuBLAS needs this (or ``:16:8``) for deterministic results (CUDA documentation, "Results
#: reproducibility"); torch raises on a non-deterministic cuBLAS call without it.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"
DETERMINISTIC_CUBLAS = (":4096:8", ":16:8")

#: Called after each tile: (tiles done, tiles in all).
TileProgress = Callable[[int, int], None]
#: A network on float32 NCHW arrays (host memory in, host memory out).
TileFn = Callable[[NDArray[np.float32]], NDArray[np.float32]]


@dataclass(frozen=True)
class Device:
    """The device a generative step ran on, and the settings that make it reproducible."""

    kind: str  # "cpu" or "cuda"
    name: str  # GPU model, or the CPU's architecture and model
    torch: str
    index: int | None = None
    driver: str | None = None  # NVIDIA driver release (nvidia-smi), when it can be read
    cuda: str | None = None  # CUDA runtime torch was built with
    cudnn: str | None = None
    capability: str | None = None  # CUDA compute capability, e.g. "9.0"
    memory_bytes: int | None = None
    #: oneDNN (MKLDNN) convolutions on the CPU: faster, but their summation order depends on
    #: the input's size, so a tiled run would differ from a one-pass run in the last bits.
    onednn: bool = False
    requested: str = "auto"
    determinism: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``cpu (x86_64, ...)`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``: what a verdict names."""
        where = self.kind if self.index is None else f"{self.kind}:{self.index}"
        return f"{where} ({self.name})"

    def record(self) -> dict[str, Any]:
        """The journal's description of this device (``model.device_info``)."""
        return {
            "kind": self.kind,
            "index": self.index,
            "name": self.name,
            "driver": self.driver,
            "cuda": self.cuda,
            "cudnn": self.cudnn,
            "capability": self.capability,
            "memory_bytes": self.memory_bytes,
            "torch": self.torch,
            "requested": self.requested,
            "determinism": dict(self.determinism),
        }

    def summary(self) -> str:
        """The determinism settings in one line (the report's ``Model`` row)."""
        d = self.determinism
        parts = [
            f"torch.use_deterministic_algorithms({d.get('deterministic_algorithms')})",
            f"TF32 matmul {'on' if d.get('tf32_matmul') else 'off'}",
            f"TF32 cuDNN {'on' if d.get('tf32_cudnn') else 'off'}",
            f"cuDNN benchmark {'on' if d.get('cudnn_benchmark') else 'off'}",
        ]
        if self.kind == "cuda":
            parts.append(f"CUBLAS_WORKSPACE_CONFIG={d.get('cublas_workspace_config')}")
        else:
            parts.append(f"{d.get('threads')} thread, oneDNN {'on' if self.onednn else 'off'}")
        return ", ".join(parts)

    def with_onednn(self, on: bool) -> Device:
        """The same device with oneDNN on or off (a per-network choice, recorded)."""
        if self.kind != "cpu" or on == self.onednn:
            return self
        return Device(**{**self.__dict__, "onednn": on, "determinism": _settings(self.kind, on)})

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Device:
        """A recorded device (for a verdict; nothing is run on it)."""
        det = dict(record.get("determinism") or {})
        return cls(
            kind=str(record.get("kind", "cpu")),
            name=str(record.get("name", "?")),
            torch=str(record.get("torch", "?")),
            index=record.get("index"),
            driver=record.get("driver"),
            cuda=record.get("cuda"),
            cudnn=record.get("cudnn"),
            capability=record.get("capability"),
            memory_bytes=record.get("memory_bytes"),
            onednn=bool(det.get("onednn", False)),
            requested=str(record.get("requested", "auto")),
            determinism=det,
        )


def _settings(kind: str, onednn: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "deterministic_algorithms": True,
        "tf32_matmul": False,
        "tf32_cudnn": False,
        "cudnn_benchmark": False,
        "cudnn_deterministic": True,
        "float32_matmul_precision": "highest",
    }
    if kind == "cuda":
        out["cublas_workspace_config"] = os.environ.get(
            "CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG
        )
    else:
        out["threads"] = 1
        out["onednn"] = onednn
    return out


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@functools.cache
def _cpu_name() -> str:
    model = ""
    with (
        contextlib.suppress(OSError),
        open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f,
    ):
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return ", ".join(p for p in (platform.machine(), model or platform.processor()) if p)


def _nvidia_driver(index: int) -> str | None:
    """The NVIDIA driver release, from nvidia-smi (torch does not expose it)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        done = subprocess.run(
            [tool, f"--id={index}", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.strip()
    return text or None


def cpu_device(requested: str = "cpu") -> Device:
    import torch

    return Device(
        kind="cpu",
        name=_cpu_name(),
        torch=str(torch.__version__),
        requested=requested,
        determinism=_settings("cpu", False),
    )


def cuda_device(index: int = 0, requested: str = "cuda") -> Device:
    import torch

    # Set before the first cuBLAS handle exists; an existing value is kept and recorded (a
    # non-deterministic one is refused below).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
    if os.environ["CUBLAS_WORKSPACE_CONFIG"] not in DETERMINISTIC_CUBLAS:
        raise InputError(
            f"CUBLAS_WORKSPACE_CONFIG is {os.environ['CUBLAS_WORKSPACE_CONFIG']!r}; cuBLAS is "
            "deterministic only with :4096:8 or :16:8",
            hint="unset it (forensic then sets :4096:8) or set it to :4096:8",
        )
    props = torch.cuda.get_device_properties(index)
    cudnn = torch.backends.cudnn.version()
    return Device(
        kind="cuda",
        index=index,
        name=str(props.name),
        torch=str(torch.__version__),
        driver=_nvidia_driver(index),
        cuda=torch.version.cuda,
        cudnn=None if cudnn is None else str(cudnn),
        capability=f"{props.major}.{props.minor}",
        memory_bytes=int(props.total_memory),
        requested=requested,
        determinism=_settings("cuda", False),
    )


def select_device(requested: str, allowed: tuple[str, ...] = ("cpu",)) -> Device:
    """The device for the generative steps of a run.

    ``auto`` is CUDA when this machine has it and the policy allows it, else the CPU;
    ``cuda`` is refused when the policy does not allow it (`PolicyError`) or CUDA is absent
    (`InputError`); ``cpu`` is refused only by a policy that does not allow the CPU.
    """
    if requested not in DEVICE_CHOICES:
        raise InputError(
            f"--device is {requested!r}; allowed: {', '.join(DEVICE_CHOICES)}",
            hint="auto uses a CUDA GPU when the policy allows one and it is present",
        )
    rule = "the policy's generative devices"
    if requested == "auto":
        if "cuda" in allowed and cuda_available():
            return cuda_device(0, requested)
        if "cpu" not in allowed:
            raise PolicyError(
                f"{rule} ({', '.join(allowed) or 'none'}) leave no device on this machine "
                "(no CUDA GPU here)",
                hint="run where a CUDA GPU is present, or use a profile that allows the CPU",
            )
        return cpu_device(requested)
    if requested not in allowed:
        raise PolicyError(
            f"--device {requested} is refused: {rule} are {', '.join(allowed) or 'none'}",
            hint="the lab's policy names the devices generative steps may run on "
            '(profiles.NAME.generative.devices = ["cpu", "cuda"])',
        )
    if requested == "cuda":
        if not cuda_available():
            raise InputError(
                "--device cuda: no CUDA GPU is available here (torch.cuda.is_available() is "
                "False: no GPU, no driver, or a CPU build of torch)",
                hint="use --device cpu or --device auto",
            )
        return cuda_device(0, requested)
    return cpu_device(requested)


# -- the device in use -------------------------------------------------------------------------

_ACTIVE: contextvars.ContextVar[Device | None] = contextvars.ContextVar("device", default=None)
_PROGRESS: contextvars.ContextVar[TileProgress | None] = contextvars.ContextVar(
    "tile_progress", default=None
)


def current() -> Device:
    """The device generative operations run on now (the CPU unless `using` says otherwise)."""
    active = _ACTIVE.get()
    return cpu_device() if active is None else active


def current_progress() -> TileProgress | None:
    """The tile progress callback set by `using` (None: no progress shown)."""
    return _PROGRESS.get()


@contextlib.contextmanager
def using(device: Device | None, progress: TileProgress | None = None) -> Iterator[Device]:
    """Run the generative operations inside on ``device`` (None: the CPU), reporting each
    network pass's tiles to ``progress``."""
    token = _ACTIVE.set(device)
    ptoken = _PROGRESS.set(progress)
    try:
        yield current()
    finally:
        _PROGRESS.reset(ptoken)
        _ACTIVE.reset(token)


@contextlib.contextmanager
def deterministic(device: Device) -> Iterator[Any]:
    """Apply ``device``'s determinism settings (and no_grad) while a network runs; the
    previous settings are restored afterwards."""
    import torch

    cuda_matmul = torch.backends.cuda.matmul
    cudnn = torch.backends.cudnn
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cuda_matmul.allow_tf32,
        cudnn.allow_tf32,
        cudnn.benchmark,
        cudnn.deterministic,
        torch.get_float32_matmul_precision(),
    )
    if device.kind == "cpu":
        torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    cuda_matmul.allow_tf32 = False
    cudnn.allow_tf32 = False
    cudnn.benchmark = False
    cudnn.deterministic = True
    torch.set_float32_matmul_precision("highest")
    # set_flags, not flags(): flags() also sets oneDNN's TF32 switch, which warns on a
    # build without Intel GPU support.
    onednn = torch.backends.mkldnn.set_flags(device.onednn, True, None)
    try:
        with torch.no_grad():
            yield torch.device("cuda", device.index or 0) if device.kind == "cuda" else "cpu"
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
        cuda_matmul.allow_tf32 = saved[3]
        cudnn.allow_tf32 = saved[4]
        cudnn.benchmark = saved[5]
        cudnn.deterministic = saved[6]
        torch.set_float32_matmul_precision(saved[7])
        torch.backends.mkldnn.set_flags(onednn[0], onednn[1], None, onednn[3])


def torch_tiles(module: Any, device: Device) -> TileFn:
    """A `TileFn` that runs a torch module on ``device`` (its weights are moved there). Call
    it inside `deterministic`."""
    import torch

    target = torch.device("cuda", device.index or 0) if device.kind == "cuda" else "cpu"
    module = module.to(target)

    def run(tile: NDArray[np.float32]) -> NDArray[np.float32]:
        out = module(torch.from_numpy(np.ascontiguousarray(tile)).to(target))
        return np.asarray(out.detach().to("cpu").numpy(), np.float32)

    return run


# -- tiling --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tiling:
    """How a network was run over an image (recorded with the step)."""

    tile: int  # input pixels per tile side (the core, before the overlap)
    overlap: int  # input pixels of context added on each side of a core
    blend: str = "crop-centre"

    def record(self, height: int, width: int) -> dict[str, Any]:
        return {
            "tile": self.tile,
            "overlap": self.overlap,
            "blend": self.blend,
            "tiles": count_tiles(height, width, self.tile),
        }


def count_tiles(height: int, width: int, tile: int) -> int:
    return -(-height // tile) * -(-width // tile)


def run_tiled(
    fn: TileFn,
    image_nchw: NDArray[np.float32],
    tile: int,
    overlap: int,
    scale: int,
    progress: TileProgress | None = None,
) -> NDArray[np.float32]:
    """``fn`` applied to ``image_nchw`` tile by tile (crop-centre blend, see the module).

    Parameters
    ----------
    fn : callable
        Maps a float32 NCHW array of shape (N, C, h, w) to (N, C', h * scale, w * scale).
    image_nchw : ndarray
        float32, (N, C, H, W).
    tile : int
        Side of a tile's core in input pixels (>= 1); one tile when it covers the image.
    overlap : int
        Input pixels of context on each side of a core (>= 0), cropped from the output.
    scale : int
        Output pixels per input pixel (1 for a restoration network).
    progress : callable, optional
        Called with (tiles done, tiles in all) after each tile.

    Returns
    -------
    ndarray
        float32, (N, C', H * scale, W * scale), written tile by tile into one preallocated
        array: peak memory is the output plus one tile's input and output (and the network's
        activations for one tile).
    """
    if image_nchw.ndim != 4:
        raise InputError(f"run_tiled needs an NCHW array; got shape {image_nchw.shape}")
    if tile < 1 or overlap < 0 or scale < 1:
        raise InputError(
            f"run_tiled: tile {tile}, overlap {overlap}, scale {scale}; need tile >= 1, "
            "overlap >= 0 and scale >= 1"
        )
    n, _, height, width = image_nchw.shape
    total = count_tiles(height, width, tile)
    out: NDArray[np.float32] | None = None
    done = 0
    for y0 in range(0, height, tile):
        y1 = min(y0 + tile, height)
        ya, yb = max(0, y0 - overlap), min(height, y1 + overlap)
        for x0 in range(0, width, tile):
            x1 = min(x0 + tile, width)
            xa, xb = max(0, x0 - overlap), min(width, x1 + overlap)
            piece = np.ascontiguousarray(image_nchw[:, :, ya:yb, xa:xb])
            result = np.asarray(fn(piece), np.float32)
            want = (n, (yb - ya) * scale, (xb - xa) * scale)
            got = (result.shape[0], *result.shape[2:]) if result.ndim == 4 else result.shape
            if got != want:
                raise InputError(
                    f"run_tiled: a {yb - ya} x {xb - xa} tile gave output {result.shape}; "
                    f"expected (N, C, H, W) = ({n}, C, {want[1]}, {want[2]}) for scale {scale}",
                    hint="check the model's scale",
                )
            if out is None:
                out = np.empty((n, result.shape[1], height * scale, width * scale), np.float32)
            top, left = (y0 - ya) * scale, (x0 - xa) * scale
            out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = result[
                :, :, top : top + (y1 - y0) * scale, left : left + (x1 - x0) * scale
            ]
            done += 1
            if progress is not None:
                progress(done, total)
    assert out is not None  # height and width are at least 1
    return out

"""Examiners' ONNX models through onnxruntime: one file read once, hashed, run deterministically.

The file's bytes are read once per process (`forensic.generative.sr.pinned_weights`), hashed,
approved by that hash in the case's policy, copied into the case and handed to onnxruntime
*as bytes*: the session is built from exactly the bytes that were hashed, never from the path,
so a file swapped on disk after approval cannot run.

Session settings (recorded with every step, `SESSION_SETTINGS`): one intra-op and one
inter-op thread, sequential execution, ``use_deterministic_compute`` on, and graph
optimisation limited to the *basic* level (constant folding and removal of redundant nodes,
exact rewrites), so that no layout transformation chosen by the CPU's vector extensions
changes the arithmetic. The CPU execution provider is always last in the list; CUDA's is put
first when ``device == "cuda"`` and onnxruntime offers it, with cuDNN's default convolution
algorithm (no exhaustive search, which may pick different kernels on each run) and TF32 off.
onnxruntime's own fallback (a provider that fails while the session is built or run is
silently replaced by the CPU's, with a message on stdout) is switched off: what is recorded
is what ran, or the step fails.

Where a session runs follows the run's device (`forensic.generative.engine.select_device`,
the same ``--device`` and policy gate as the torch networks), through `placement`: the CPU
provider on the CPU; the CUDA provider on a CUDA device when this onnxruntime build has it
(only the ``onnxruntime-gpu`` wheel does). On a CUDA device without it, ``auto`` runs the
ONNX steps on the CPU (recorded, with the reason) and an explicit ``cuda`` is refused.
`device_facts` is what a step records of it (``device``, ``device_info``, ``determinism``:
the same fields as a torch network's, docs/spec.md §3).

The runner is a plain callable, float32 NCHW in [0, 1] in the RGB order (or one grey plane)
-> float32 NCHW in [0, 1], so that it can be tiled; conventions of the model (channel order,
value range, padding to a multiple) are applied inside it from the declared manifest.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]
from numpy.typing import NDArray

from forensic.errors import InputError, ParameterError
from forensic.generative import engine
from forensic.ops.models import Manifest, parse_manifest

Batch = NDArray[np.float32]
#: The CUDA provider's options: cuDNN's default convolution algorithm (an exhaustive search
#: may pick other kernels from run to run) and TF32 off.
CUDA_OPTIONS: dict[str, Any] = {"cudnn_conv_algo_search": "DEFAULT", "use_tf32": 0}
#: What a step records of how the session was configured.
SESSION_SETTINGS: dict[str, Any] = {
    "intra_op_num_threads": 1,
    "inter_op_num_threads": 1,
    "execution_mode": "sequential",
    "graph_optimization_level": "basic",
    "use_deterministic_compute": True,
    "cuda": CUDA_OPTIONS,
}


def manifest_from_param(op: str, value: Any) -> Manifest:
    """The manifest a step carries (the policy's declaration, recorded as JSON)."""
    if value is None:
        raise ParameterError(
            op,
            "manifest",
            "is missing: an ONNX model runs only with its declared manifest",
            hint="a run takes it from the policy entry approving the model's SHA-256; "
            "`forensic model approve FILE --task ...` prints that entry",
        )

    def fail(message: str) -> ParameterError:
        return ParameterError(op, "manifest", message)

    return parse_manifest(value, fail)


CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def cuda_provider_available() -> bool:
    """Whether this onnxruntime build has the CUDA execution provider (onnxruntime-gpu)."""
    return CUDA_PROVIDER in ort.get_available_providers()


def device_options(allowed: tuple[str, ...] = ("cpu",)) -> list[dict[str, Any]]:
    """What an examiner may choose for ``--device`` here, under a policy allowing ``allowed``:
    for ``auto``, ``cpu`` and ``cuda``, ``{name, available, reason, uses, note}``: whether
    `select_device` would accept it, why not (None when it would), the device kind it would
    run on, and a note (a CUDA GPU whose onnxruntime has no CUDA provider runs ONNX steps on
    the CPU under ``auto``). Nothing is run; the same rules as `select_device`."""
    here = "cuda" in allowed and engine.cuda_available()  # torch is imported only when it matters
    policy = f"the case's policy allows generative steps on: {', '.join(allowed) or 'none'}"
    no_gpu = "no CUDA GPU here (torch.cuda.is_available() is False)"
    note = None
    if here and "cuda" in allowed and not cuda_provider_available():
        note = (
            "this onnxruntime build has no CUDA execution provider: ONNX models run on "
            "the CPU under auto and are refused under cuda"
        )
    cuda_ok = "cuda" in allowed and here
    cpu_ok = "cpu" in allowed
    options = [
        {
            "name": "auto",
            "available": cuda_ok or cpu_ok,
            "reason": None if cuda_ok or cpu_ok else f"{policy}; {no_gpu}",
            "uses": "cuda" if cuda_ok else ("cpu" if cpu_ok else None),
            "note": note,
        },
        {
            "name": "cpu",
            "available": cpu_ok,
            "reason": None if cpu_ok else policy,
            "uses": "cpu" if cpu_ok else None,
            "note": None,
        },
        {
            "name": "cuda",
            "available": cuda_ok,
            "reason": None if cuda_ok else (policy if "cuda" not in allowed else no_gpu),
            "uses": "cuda" if cuda_ok else None,
            "note": note,
        },
    ]
    return options


def placement(device: engine.Device | None = None, *, strict: bool = True) -> engine.Device:
    """The device an ONNX session runs on, for the run's ``device`` (default: the active one).

    A CUDA device is used when onnxruntime has its CUDA provider. Without it, a device chosen
    by ``auto`` becomes the CPU (the record says why, `device_facts`); one the examiner asked
    for by name (``--device cuda``) is refused (`InputError`) when ``strict``, else returned
    as it is (for a record of what was asked, never to run on)."""
    chosen = engine.current() if device is None else device
    if chosen.kind != "cuda" or cuda_provider_available():
        return chosen
    if chosen.requested == "auto":
        return engine.cpu_device("auto")
    if not strict:
        return chosen
    raise InputError(
        f"--device cuda: this onnxruntime build ({ort_package()} {ort.__version__}) has no "
        f"CUDA execution provider (available: {', '.join(ort.get_available_providers())}), "
        "so ONNX models cannot run on the GPU here",
        hint=f"use --device auto (ONNX steps then run on the CPU, recorded) or --device cpu, "
        f"or install onnxruntime-gpu=={ort.__version__} in place of onnxruntime",
    )


def ort_package() -> str:
    """``onnxruntime`` or ``onnxruntime-gpu`` (the wheel's name)."""
    return str(getattr(ort, "package_name", "") or "onnxruntime")


def provider_names(kind: str) -> list[str]:
    """The execution providers a session on a ``kind`` device registers, in order."""
    return [CUDA_PROVIDER, CPU_PROVIDER] if kind == "cuda" else [CPU_PROVIDER]


def determinism(kind: str, index: int | None = None) -> dict[str, Any]:
    """The session's determinism settings on a ``kind`` device (``device_info.determinism``)."""
    out: dict[str, Any] = {
        key: value for key, value in SESSION_SETTINGS.items() if not isinstance(value, dict)
    }
    out["provider_fallback"] = False
    if kind == "cuda":
        out.update(CUDA_OPTIONS)
        out["device_id"] = index or 0
    return out


def device_facts(device: engine.Device | None = None) -> dict[str, Any]:
    """What an ONNX step records of where it ran: ``device`` (its label), ``determinism``
    (one line) and ``device_info`` (the torch networks' fields where they apply: kind, index,
    name, driver, capability, memory_bytes, requested; ``cuda`` and ``cudnn`` are those
    onnxruntime was built with; plus ``onnxruntime``, ``providers`` and, when ``auto`` fell
    back to the CPU, ``fallback``). Never raises for the device (`placement` does)."""
    asked = engine.current() if device is None else device
    used = placement(asked, strict=False)
    hardware = used.record()
    build = importlib.import_module("onnxruntime.capi.build_and_package_info")
    on_gpu = used.kind == "cuda"
    info: dict[str, Any] = {
        key: hardware.get(key)
        for key in ("kind", "index", "name", "driver", "capability", "memory_bytes")
    }
    info.update(
        {
            "cuda": (getattr(build, "cuda_version", None) or None) if on_gpu else None,
            "cudnn": (getattr(build, "cudnn_version", None) or None) if on_gpu else None,
            "onnxruntime": f"{ort_package()} {ort.__version__}",
            "providers": provider_names(used.kind),
            "requested": asked.requested,
            "determinism": determinism(used.kind, used.index),
        }
    )
    if used is not asked and used.kind != asked.kind:
        info["fallback"] = (
            f"{asked.label} was chosen by auto, but this onnxruntime build has no CUDA "
            "execution provider: the ONNX model ran on the CPU"
        )
    line = (
        "onnxruntime: 1 intra-op and 1 inter-op thread, sequential execution, deterministic "
        "compute, basic graph optimisation only, no fallback to another provider"
    )
    if on_gpu:
        line += "; CUDA provider: cuDNN's default convolution algorithm (no search), TF32 off"
    return {"device": used.label, "device_info": info, "determinism": line}


def providers(device: str) -> list[Any]:
    """The execution providers for ``device`` ('cpu' or 'cuda'), CPU always last."""
    cpu: list[Any] = ["CPUExecutionProvider"]
    if device == "cpu":
        return cpu
    if device != "cuda":
        raise ParameterError("onnx", "device", f"is {device!r}; allowed: cpu, cuda")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ParameterError(
            "onnx",
            "device",
            "is 'cuda', but this onnxruntime build has no CUDA execution provider",
            hint="install onnxruntime-gpu, or run on the CPU",
        )
    options = dict(CUDA_OPTIONS)
    return [("CUDAExecutionProvider", options), *cpu]


def session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.use_deterministic_compute = True
    options.log_severity_level = 3  # errors only: warnings would be printed to the terminal
    return options


@functools.cache
def _session(data: bytes, device: str) -> ort.InferenceSession:
    # Keyed by the bytes themselves: a session is never reused for other bytes.
    session = ort.InferenceSession(
        data, session_options(), providers=providers(device), enable_fallback=0
    )
    wanted = provider_names(device)
    if list(session.get_providers()) != wanted:
        raise ParameterError(
            "onnx",
            "device",
            f"the session registered {session.get_providers()}, not {wanted}",
            hint="check the onnxruntime-gpu installation (CUDA and cuDNN libraries)",
        )
    return session


def forget_sessions() -> None:
    """Drop the sessions built so far (the next run builds a fresh one from the bytes)."""
    _session.cache_clear()


def open_session(op: str, data: bytes, device: str = "cpu") -> ort.InferenceSession:
    """An inference session built from ``data`` (the pinned, hashed bytes)."""
    try:
        return _session(data, device)
    except ParameterError:
        raise
    except Exception as exc:  # onnxruntime raises its own types for a malformed graph
        raise ParameterError(
            op,
            "weights",
            f"is not an ONNX model onnxruntime can load ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''})",
            hint="export the model with torch.onnx.export (opset 17 or later)",
        ) from None


def describe(session: ort.InferenceSession) -> dict[str, Any]:
    """The graph's inputs and outputs (names, element types, shapes) and the providers used."""

    def args(items: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": a.name,
                "type": a.type,
                "shape": [d if isinstance(d, int) else str(d) for d in a.shape],
            }
            for a in items
        ]

    return {
        "inputs": args(session.get_inputs()),
        "outputs": args(session.get_outputs()),
        "providers": list(session.get_providers()),
        "provider_options": {
            name: dict(options) for name, options in session.get_provider_options().items()
        },
        "onnxruntime": ort.__version__,
    }


def check_graph(op: str, session: ort.InferenceSession, manifest: Manifest) -> None:
    """Refuse a model whose graph cannot be what its manifest declares (inputs, channels,
    fixed size)."""
    inputs = session.get_inputs()
    wanted = 2 if manifest.task == "inpainting" else 1
    if len(inputs) != wanted:
        raise ParameterError(
            op,
            "weights",
            f"has {len(inputs)} inputs; a {manifest.task} model takes {wanted} "
            "(inpainting: image, then mask)",
        )
    if len(session.get_outputs()) < 1:
        raise ParameterError(op, "weights", "has no output")
    shape = inputs[0].shape
    channels = 1 if manifest.channels == "grey" else 3
    if len(shape) != 4:
        raise ParameterError(op, "weights", f"takes a {len(shape)}-d input, not NCHW")
    if isinstance(shape[1], int) and shape[1] != channels:
        raise ParameterError(
            op,
            "weights",
            f"takes {shape[1]} channels; the manifest declares {manifest.channels}",
        )
    fixed = [d for d in shape[2:] if isinstance(d, int)]
    if fixed and manifest.input_size and any(d != manifest.input_size for d in fixed):
        raise ParameterError(
            op,
            "manifest",
            f"declares input_size {manifest.input_size}, but the model takes {shape[2:]}",
        )
    if fixed and not manifest.input_size:
        raise ParameterError(
            op,
            "manifest",
            f"declares any input size, but the model takes exactly {shape[2:]}",
            hint=f"declare input_size = {fixed[0]}",
        )


def _to_model(batch: Batch, manifest: Manifest) -> Batch:
    low, high = manifest.input_range
    if manifest.channels == "BGR":
        batch = batch[:, ::-1]
    return np.ascontiguousarray(batch * np.float32(high - low) + np.float32(low), np.float32)


def _from_model(batch: Batch, manifest: Manifest) -> Batch:
    low, high = manifest.output_range
    out = (batch.astype(np.float32) - np.float32(low)) / np.float32(high - low)
    if manifest.channels == "BGR":
        out = out[:, ::-1]
    return np.ascontiguousarray(out, np.float32)


def _pad(batch: Batch, multiple: int) -> tuple[Batch, int, int]:
    h, w = int(batch.shape[2]), int(batch.shape[3])
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        widths = ((0, 0), (0, 0), (0, ph), (0, pw))
        reflect = ph < h and pw < w  # reflection needs more rows than it adds
        edge = np.pad(batch, widths, mode="edge")
        batch = np.pad(batch, widths, mode="reflect") if reflect else edge
    return batch, h, w


def runner(
    op: str, data: bytes, manifest: Manifest, device: str = "cpu"
) -> Callable[[Batch], Batch]:
    """The model as a callable: float32 NCHW in [0, 1] (RGB order, or one grey plane; for
    inpainting one more plane, the mask, 1 = hole) -> float32 NCHW in [0, 1] (not clipped),
    ``scale`` times larger."""
    session = open_session(op, data, device)
    check_graph(op, session, manifest)
    names = [i.name for i in session.get_inputs()]
    channels = 1 if manifest.channels == "grey" else 3

    def run(batch: Batch) -> Batch:
        if batch.ndim != 4 or batch.shape[1] != channels + (manifest.task == "inpainting"):
            raise ValueError(f"runner for {manifest.task}: wrong input shape {batch.shape}")
        padded, h, w = _pad(np.asarray(batch, np.float32), manifest.pad_multiple)
        image = _to_model(padded[:, :channels], manifest)
        feeds = {names[0]: image}
        if manifest.task == "inpainting":
            hole = padded[:, channels:] > 0.5
            # The model never sees what lies under the hole (LaMa zeroes it itself, too).
            feeds[names[0]] = np.where(hole, np.float32(manifest.input_range[0]), image)
            value = hole if manifest.mask == "hole=1" else ~hole
            feeds[names[1]] = value.astype(np.float32)
        out = session.run(None, feeds)[0]
        s = manifest.scale
        expected = (batch.shape[0], channels, padded.shape[2] * s, padded.shape[3] * s)
        if tuple(out.shape) != expected:
            raise ParameterError(
                op,
                "manifest",
                f"declares scale {s} and {manifest.channels}, but the model returned "
                f"{list(out.shape)} for {list(padded.shape)}",
            )
        return _from_model(out[:, :, : h * s, : w * s], manifest)

    return run


def inspect(data: bytes, manifest: Manifest, *, where: str) -> dict[str, Any]:
    """Check that the model in ``data`` can be what ``manifest`` declares, by its graph and a
    trial run on a blank input (output shape against the declared scale and channels): the
    graph's description, for the approval's record. `ParameterError` otherwise."""
    op = where
    run = runner(op, data, manifest)
    session = open_session(op, data)
    side = manifest.input_size or 64
    side += (-side) % manifest.pad_multiple
    channels = (1 if manifest.channels == "grey" else 3) + (manifest.task == "inpainting")
    trial = np.zeros((1, channels, side, side), np.float32)
    if manifest.task == "inpainting":
        trial[:, -1, side // 4 : side // 2, side // 4 : side // 2] = 1.0
    out = run(trial)
    return {**describe(session), "trial": {"input": list(trial.shape), "output": list(out.shape)}}

"""Finding an operation by name in either lane.

Classical operations come from `forensic.classical`. A name starting with ``generative.`` is
looked up in the generative lane, which is imported here *on demand* (importlib), only when a
generative step is actually run or replayed: a classical run, the journal and the verifier's
own checks never load it (or torch); tests run a classical recipe in a fresh interpreter and
check exactly that.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from forensic.classical.registry import registry
from forensic.ops.framework import Operation, earlier_version

#: Generative operations are named ``generative.<name>``: the name says what it is.
GENERATIVE_PREFIX = "generative."


def lookup(name: str, version: str | None = None) -> Operation | None:
    """The operation ``name``: its current version, or with ``version`` that version (a
    superseded one kept for replay), or None when it is not available."""
    if name.startswith(GENERATIVE_PREFIX):
        lane = importlib.import_module("forensic.generative")
        found: Operation | None = lane.registry().get(name)
    else:
        found = registry(include_temporal=True).get(name)
    if version is None or found is None or found.version == version:
        return found
    return earlier_version(found.lane, name, version)


def generative_names() -> list[str]:
    lane = importlib.import_module("forensic.generative")
    return sorted(lane.registry())


def pinned_weights(path: str) -> tuple[bytes, str]:
    """The bytes and SHA-256 of a user weights file, read once per process (see
    `forensic.generative.sr.pinned_weights`)."""
    sr = importlib.import_module("forensic.generative.sr")
    result: tuple[bytes, str] = sr.pinned_weights(path)
    return result


def generative_facts(op: Operation, params: dict[str, Any], device: Any = None) -> dict[str, Any]:
    """A generative step's model facts; ``device`` (from `select_device`) is the one it ran
    on (default: the active one)."""
    lane = importlib.import_module("forensic.generative.registry")
    facts: dict[str, Any] = lane.model_facts(op, params, device)
    return facts


def select_device(requested: str, allowed: tuple[str, ...]) -> Any:
    """The device for a run's generative steps (`forensic.generative.engine.select_device`):
    an opaque value for `on_device` and `generative_facts`."""
    engine = importlib.import_module("forensic.generative.engine")
    return engine.select_device(requested, allowed)


def check_device(op: Operation, params: dict[str, Any], device: Any) -> None:
    """Refuse a generative step that cannot run on ``device`` (an ONNX step on CUDA where
    onnxruntime has no CUDA provider; `forensic.generative.registry.check_device`)."""
    lane = importlib.import_module("forensic.generative.registry")
    lane.check_device(op, params, device)


def device_record(device: Any, model: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The label and description of ``device`` as a generative step whose recorded model
    facts are ``model`` would record it (an ONNX step: its session's device and providers)."""
    lane = importlib.import_module("forensic.generative.registry")
    result: tuple[str, dict[str, Any]] = lane.device_record(device, model)
    return result


def device_options(allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    """The device choices (auto, cpu, cuda) and whether each may be used here under a policy
    allowing ``allowed`` (`forensic.generative.onnxrun.device_options`: the answer depends on
    onnxruntime's providers as well as on torch's CUDA)."""
    onnxrun = importlib.import_module("forensic.generative.onnxrun")
    result: list[dict[str, Any]] = onnxrun.device_options(allowed)
    return result


def device_label(device: Any) -> str:
    """What a verdict calls a device, e.g. ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    return str(device.label)


@contextlib.contextmanager
def on_device(device: Any, progress: Callable[[int, int], None] | None = None) -> Iterator[None]:
    """Run the generative operations inside on ``device``; each network pass reports its
    tiles (done, in all) to ``progress``."""
    engine = importlib.import_module("forensic.generative.engine")
    with engine.using(device, progress):
        yield


def generative_maps(
    op: Operation, before: Any, after: Any, params: dict[str, Any], *, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inferred-content, uncertainty and consistency maps of a generative step (see
    `forensic.generative.maps`)."""
    maps = importlib.import_module("forensic.generative.maps")
    result: tuple[dict[str, Any], dict[str, Any]] = maps.inferred_maps(
        op, before, after, params, seed=seed
    )
    return result


def inspect_model(data: bytes, manifest: Any, *, where: str) -> dict[str, Any]:
    """Check an ONNX model's graph against its declared manifest by a trial run (see
    `forensic.generative.onnxrun.inspect`); the graph's description."""
    onnxrun = importlib.import_module("forensic.generative.onnxrun")
    result: dict[str, Any] = onnxrun.inspect(data, manifest, where=where)
    return result

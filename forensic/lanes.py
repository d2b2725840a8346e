"""Finding an operation by name in either lane.

Classical operations come from `forensic.classical`. A name starting with ``generative.`` is
looked up in the generative lane, which is imported here *on demand* (importlib), only when a
generative step is actually run or replayed: a classical run, the journal and the verifier's
own checks never load it (or torch); tests run a classical recipe in a fresh interpreter and
check exactly that.
"""

from __future__ import annotations

import importlib
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


def generative_facts(op: Operation, params: dict[str, Any]) -> dict[str, Any]:
    lane = importlib.import_module("forensic.generative.registry")
    facts: dict[str, Any] = lane.model_facts(op, params)
    return facts


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

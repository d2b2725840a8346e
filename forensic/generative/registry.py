"""The generative lane's own operation registry (same metadata as the classical one)."""

from __future__ import annotations

from forensic.classical.registry import Operation
from forensic.errors import InputError

LANE = "generative"
PREFIX = "generative."
_GENERATIVE: dict[str, Operation] = {}


def registry() -> dict[str, Operation]:
    import forensic.generative.inpaint  # noqa: F401  (registers the operations)

    return dict(sorted(_GENERATIVE.items()))


def get(name: str) -> Operation:
    ops = registry()
    if name not in ops:
        raise InputError(
            f"no generative operation named {name!r}",
            hint=f"generative operations: {', '.join(ops)}",
        )
    return ops[name]

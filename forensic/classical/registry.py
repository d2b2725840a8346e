"""The classical lane's table of operations (the framework itself is `forensic.ops`)."""

from __future__ import annotations

from forensic.errors import InputError
from forensic.ops.framework import LANE, Operation, registered


def registry(*, include_temporal: bool = False) -> dict[str, Operation]:
    """The registered operations by name (importing every classical module first).

    By default the single-image ("frame") operations only, each applied with
    `Operation.run`; ``include_temporal=True`` adds the temporal ("map", "reduce") ones,
    which run over a video frame range (`Operation.stream`, `Operation.reduce`).
    """
    import forensic.classical  # noqa: F401  (registers the operations)

    return dict(
        sorted(
            (name, op)
            for name, op in registered(LANE).items()
            if include_temporal or op.temporal == "frame"
        )
    )


def get(name: str) -> Operation:
    """The classical operation ``name``, single-image or temporal."""
    ops = registry(include_temporal=True)
    try:
        return ops[name]
    except KeyError:
        close = [n for n in ops if name.lower() in n or n in name.lower()]
        raise InputError(
            f"no classical operation named {name!r}",
            hint=(f"did you mean {', '.join(close)}? " if close else "")
            + "`forensic ops list` shows them all",
        ) from None

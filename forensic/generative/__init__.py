"""The generative lane: operations that invent pixels. Quarantined.

Everything here produces *inferred* pixels: learned models, and inpainting too (a classical
algorithm, but what it writes into the hole was never recorded by the camera). Outputs are
marked inferred pixel by pixel, gated by the case's policy profile, and never accepted as
evidence input. This is the only package that may import torch; the classical lane, the
journal and the verifier never import it (import-linter contracts in `make lint`, and tests).

Operations are named ``generative.<name>`` so that a recipe, a journal entry or a policy
says what a step is in its very name.
"""

from __future__ import annotations

from forensic.errors import InputError
from forensic.generative.registry import LANE
from forensic.ops.framework import Operation, registered

__all__ = ["get", "registry"]


def registry() -> dict[str, Operation]:
    import forensic.generative.inpaint
    import forensic.generative.learned
    import forensic.generative.restore
    import forensic.generative.superres  # noqa: F401

    return dict(sorted(registered(LANE).items()))


def get(name: str) -> Operation:
    ops = registry()
    if name not in ops:
        raise InputError(
            f"no generative operation named {name!r}",
            hint=f"generative operations: {', '.join(ops)}",
        )
    return ops[name]

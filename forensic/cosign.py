"""Co-signatures: a second examiner's signed statement that they reviewed a generative step.

A policy profile with ``generative.require_cosign = true`` requires one for every generative
step before any report or export includes it. ``forensic cosign CASE R1.2`` appends a
``cosign`` entry, signed by an enrolled examiner who is *not* the one who signed the step,
naming the step entry by its hash. `missing_cosignatures` lists the steps still waiting.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from forensic.case import Case
from forensic.errors import InputError
from forensic.journal import Entry
from forensic.keys import Signer

_STEP = re.compile(r"^[Rr](\d+)\.(\d+)$")
STATEMENT = (
    "I have reviewed this generative step, its inferred-content, uncertainty and consistency "
    "maps, and I agree that its output is labelled and used only as inferred content."
)


def find_step(entries: list[Entry], ref: str) -> Entry:
    """The ``run.step`` entry ``R<run>.<step>`` (e.g. R1.2)."""
    m = _STEP.match(ref)
    if m is None:
        raise InputError(f"{ref!r} is not a step reference", hint="write RUN.STEP, e.g. R1.2")
    run, step = f"R{m.group(1)}", int(m.group(2))
    for e in entries:
        if e.kind == "run.step" and e.payload.get("run") == run and e.payload.get("step") == step:
            return e
    raise InputError(f"no step {ref} in this case", hint="`forensic case show CASE` lists runs")


def cosign(case: Case, ref: str, *, signer: Signer, now: datetime) -> Entry:
    with case.writer(signer) as writer:
        target = find_step(writer.entries, ref)
        if target.payload.get("lane") != "generative":
            raise InputError(f"step {ref} is classical; only generative steps are co-signed")
        if target.actor == signer.fingerprint:
            raise InputError(
                f"step {ref} was signed by this examiner; a co-signature must come from another",
                hint="a second enrolled examiner runs `forensic cosign` with their own key",
            )
        if any(
            e.kind == "cosign"
            and e.payload["entry"] == target.hash
            and e.actor == signer.fingerprint
            for e in writer.entries
        ):
            raise InputError(f"step {ref} is already co-signed by this examiner")
        return writer.append(
            "cosign",
            {
                "entry": target.hash,
                "run": target.payload["run"],
                "step": target.payload["step"],
                "op": target.payload["op"],
                "statement": STATEMENT,
            },
            now=now,
        )


def missing_cosignatures(entries: list[Entry], *, required: bool = True) -> list[dict[str, Any]]:
    """Generative steps with no co-signature from an examiner other than their signer (none
    when the case's profile does not require co-signatures: ``required`` false)."""
    if not required:
        return []
    signed = {(e.payload["entry"], e.actor) for e in entries if e.kind == "cosign"}
    missing = []
    for e in entries:
        generative = e.kind == "run.step" and e.payload.get("lane") == "generative"
        if generative and not any(h == e.hash and a != e.actor for h, a in signed):
            missing.append(
                {"run": e.payload["run"], "step": e.payload["step"], "op": e.payload["op"]}
            )
    return missing

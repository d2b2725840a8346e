"""The batch manifest: jobs as TOML (``[[jobs]]`` tables) or CSV (a header row), checked whole
before anything runs; every problem names the line or job and the field.

A job is: the case folder, the exhibit (a file to ingest, or an exhibit or run ID already in
the case: ``E1``, ``R2``), the recipe (a file or a shipped recipe's name), and optionally a
video range (``frames = "A:B"`` or ``"all"``, or ``seconds = "S:E"``) and a run name. Relative
paths are taken from the manifest's folder, so a manifest travels with its media.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensic import api
from forensic.errors import ForensicError, InputError
from forensic.fsutil import parse_toml, read_regular

#: A manifest is a small text file (a million jobs would not fit: split such a batch).
MAX_MANIFEST_BYTES = 8 << 20
FIELDS = ("case", "exhibit", "recipe", "frames", "seconds", "name")
REQUIRED = ("case", "exhibit", "recipe")
#: An exhibit or run reference rather than a file name (when no such file exists).
_REF = re.compile(r"^[ER][0-9]+$", re.IGNORECASE)


@dataclass(frozen=True)
class Job:
    """One line of the manifest, checked: ingest ``exhibit_file`` (if any), then run ``recipe``
    on the exhibit (or on ``source_ref``)."""

    number: int  # 1-based, in manifest order: the order entries are journaled in
    where: str  # "jobs.csv line 4", "batch.toml job 2": how messages name it
    case_dir: Path
    exhibit: str  # as written
    exhibit_file: Path | None  # a file to ingest; None when ``source_ref`` names one
    source_ref: str | None  # E1 / R2 already in the case
    recipe_ref: str
    recipe: Any  # forensic.recipe.Recipe, with the range applied
    frames: str | None
    seconds: str | None
    name: str | None


def load_manifest(path: Path) -> list[Job]:
    """Parse and check a manifest (``.toml``, else CSV); `InputError` naming the line or job
    and the field on the first problem."""
    raw = read_regular(path, what="batch manifest", max_bytes=MAX_MANIFEST_BYTES)
    where = path.name
    rows = _toml_rows(raw, where) if path.suffix.lower() == ".toml" else _csv_rows(raw, where)
    if not rows:
        raise InputError(
            f"{where}: no jobs", hint="add one [[jobs]] table (TOML) or one row (CSV) per job"
        )
    base = path.resolve().parent
    return [_job(n, label, row, base) for n, (label, row) in enumerate(rows, start=1)]


def _toml_rows(raw: bytes, where: str) -> list[tuple[str, dict[str, Any]]]:
    data = parse_toml(raw, where=where)
    extra = sorted(set(data) - {"jobs"})
    if extra:
        raise InputError(
            f"{where}: unknown top-level key {extra[0]!r}", hint="a manifest holds [[jobs]] tables"
        )
    jobs = data.get("jobs", [])
    if not isinstance(jobs, list) or not all(isinstance(j, dict) for j in jobs):
        raise InputError(f"{where}: 'jobs' must be an array of tables ([[jobs]])")
    return [(f"{where} job {n}", j) for n, j in enumerate(jobs, start=1)]


def _csv_rows(raw: bytes, where: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return []
    try:
        parsed = list(csv.reader(io.StringIO("\n".join(line for _, line in lines)), strict=True))
    except csv.Error as exc:
        raise InputError(f"{where}: not valid CSV ({exc})") from None
    header_line, header = lines[0][0], [h.strip().lower() for h in parsed[0]]
    for column in header:
        if column not in FIELDS:
            raise InputError(
                f"{where} line {header_line}: unknown column {column!r}",
                hint=f"the header names columns among: {', '.join(FIELDS)}",
            )
    rows = []
    for (n, _), values in zip(lines[1:], parsed[1:], strict=True):
        if len(values) != len(header):
            raise InputError(
                f"{where} line {n}: {len(values)} values for {len(header)} columns",
                hint="quote a value that holds a comma",
            )
        row = {k: v.strip() for k, v in zip(header, values, strict=True) if v.strip()}
        rows.append((f"{where} line {n}", row))
    return rows


def _job(number: int, where: str, row: dict[str, Any], base: Path) -> Job:
    for key, value in row.items():
        if key not in FIELDS:
            raise InputError(
                f"{where}: unknown field {key!r}", hint=f"a job has the fields {', '.join(FIELDS)}"
            )
        if not isinstance(value, str):
            raise InputError(f"{where}, field {key!r}: must be a text (in quotes)")
    for key in REQUIRED:
        if not row.get(key):
            raise InputError(
                f"{where}: field {key!r} is missing", hint="a job needs case, exhibit, recipe"
            )
    case_dir = base / row["case"]
    if not case_dir.is_dir():
        raise InputError(
            f"{where}, field 'case': {row['case']} is not a case folder",
            hint="create it first: forensic case init",
        )
    exhibit = row["exhibit"]
    file = base / exhibit
    is_ref = _REF.match(exhibit) is not None and not os.path.lexists(file)
    if not is_ref and not os.path.lexists(file):
        raise InputError(
            f"{where}, field 'exhibit': {exhibit}: no such file",
            hint="give an evidence file (relative to the manifest) or an exhibit ID like E1",
        )
    recipe_ref = row["recipe"]
    recipe_path = base / recipe_ref
    try:
        recipe = api.load_recipe(recipe_path if os.path.lexists(recipe_path) else recipe_ref)
    except ForensicError as exc:
        raise InputError(f"{where}, field 'recipe': {exc.message}", hint=exc.hint) from None
    try:
        recipe = api.recipe_with_range(recipe, frames=row.get("frames"), seconds=row.get("seconds"))
    except ForensicError as exc:
        field = "frames" if row.get("frames") else "seconds"
        raise InputError(f"{where}, field {field!r}: {exc.message}", hint=exc.hint) from None
    if row.get("name"):
        try:
            api.check_run_name(row["name"])
        except ForensicError as exc:
            raise InputError(f"{where}, field 'name': {exc.message}", hint=exc.hint) from None
    return Job(
        number=number,
        where=where,
        case_dir=case_dir,
        exhibit=exhibit,
        exhibit_file=None if is_ref else file,
        source_ref=exhibit.upper() if is_ref else None,
        recipe_ref=recipe_ref,
        recipe=recipe,
        frames=row.get("frames"),
        seconds=row.get("seconds"),
        name=row.get("name"),
    )

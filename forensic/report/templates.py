"""The lab-customisable parts of the report: wording (``lab.toml``) and fonts.

The folder is ``reports/`` in a source checkout, or any copy of it passed as
``--templates DIR`` or in ``FORENSIC_REPORT_TEMPLATES``. ``lab.toml`` and the three fonts are
hashed (the README and sample pages are not part of a report); the hashes are printed in
the report and journaled, so the wording used is part of the record and a rebuild can tell
"different templates" from "different report".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensic.errors import InputError
from forensic.fsutil import parse_toml, read_regular
from forensic.hashing import sha256_hex
from forensic.journal import canonical

ENV = "FORENSIC_REPORT_TEMPLATES"
FONTS = {
    "regular": "fonts/DejaVuSans.ttf",
    "bold": "fonts/DejaVuSans-Bold.ttf",
    "mono": "fonts/DejaVuSansMono.ttf",
}
LAB_KEYS = {"name", "address", "accreditation"}
WORDING_KEYS = {"title", "purpose", "methodology", "lay_summary", "declaration", "limitations"}


@dataclass(frozen=True)
class Templates:
    folder: Path
    lab: dict[str, str]
    wording: dict[str, str]
    files: dict[str, str]  # relative path -> SHA-256 of its bytes

    @property
    def sha256(self) -> str:
        """One digest over every template file: the SHA-256 of the canonical JSON of
        ``{relative path: sha256}``."""
        return sha256_hex(canonical(self.files))

    def font(self, role: str) -> Path:
        return self.folder / FONTS[role]


def default_folder() -> Path:
    """The installed copy (wheel) if there is one, else the checkout's ``reports/``."""
    packaged = Path(__file__).resolve().parents[1] / "_data" / "reports"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "reports"


def _strings(table: Any, keys: set[str], where: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise InputError(f"{where}: missing table", hint="compare with reports/lab.toml")
    missing = sorted(keys - set(table))
    unknown = sorted(set(table) - keys)
    if missing or unknown:
        raise InputError(
            f"{where}: missing keys {missing}, unknown keys {unknown}",
            hint="compare with reports/lab.toml",
        )
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}.{key}: must be non-empty text")
    return {k: str(v).strip() for k, v in table.items()}


def load_templates(folder: Path | None = None) -> Templates:
    """Read and check a template folder (``folder``, else ``$FORENSIC_REPORT_TEMPLATES``,
    else the checkout's ``reports/``)."""
    if folder is None:
        folder = Path(os.environ[ENV]) if os.environ.get(ENV) else default_folder()
    lab_file = folder / "lab.toml"
    if not os.path.lexists(lab_file):
        raise InputError(
            f"report templates: cannot read {lab_file}: no such file",
            hint=f"pass --templates DIR (a copy of the project's reports/ folder) or set {ENV}",
        )
    raw = read_regular(lab_file, what="report template")
    doc = parse_toml(raw, where=str(lab_file))
    extra = sorted(set(doc) - {"lab", "wording"})
    if extra:
        raise InputError(f"{lab_file}: unknown tables {extra}", hint="use [lab] and [wording]")
    lab = _strings(doc.get("lab"), LAB_KEYS, f"{lab_file} [lab]")
    wording = _strings(doc.get("wording"), WORDING_KEYS, f"{lab_file} [wording]")
    files = {"lab.toml": sha256_hex(raw)}
    for rel in sorted(FONTS.values()):
        try:
            files[rel] = sha256_hex((folder / rel).read_bytes())
        except OSError as exc:
            raise InputError(
                f"report templates: cannot read the font {folder / rel}: {exc.strerror}",
                hint="the report embeds these fonts; copy them from the project's reports/",
            ) from None
    return Templates(folder=folder, lab=lab, wording=wording, files=files)


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each with its white space collapsed."""
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]

"""The lab-customisable parts of the report: wording (``lab.toml``) and fonts.

The folder is ``reports/`` in a source checkout, or any copy of it passed as
``--templates DIR`` or in ``FORENSIC_REPORT_TEMPLATES``. ``lab.toml`` and the three fonts are
hashed (the README and sample pages are not part of a report); the hashes are printed in
the report and journaled, so the wording used is part of the record and a rebuild can tell
"different templates" from "different report".
"""

from __future__ import annotations

import os
import re
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
#: What the lab sets about attachments (``[attachments]``, optional).
ATTACHMENT_KEYS = {"outputs_max_mb"}
#: Stored outputs (images, run videos) are attached until they would pass this many MB.
DEFAULT_OUTPUTS_MAX_MB = 20.0
#: A placeholder the lab must replace before a report is issued: ``{{what to write here}}``.
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)


@dataclass(frozen=True)
class Templates:
    folder: Path
    lab: dict[str, str]
    wording: dict[str, str]
    files: dict[str, str]  # relative path -> SHA-256 of its bytes
    outputs_max_bytes: int = int(DEFAULT_OUTPUTS_MAX_MB * 1e6)

    def placeholders(self) -> list[str]:
        """``[section] key: {{text}}`` for every placeholder still in the wording."""
        return [
            f"[{section}] {key}: {{{{{m.group(1).strip()}}}}}"
            for section, table in (("lab", self.lab), ("wording", self.wording))
            for key, value in sorted(table.items())
            for m in PLACEHOLDER.finditer(value)
        ]

    def require_filled(self) -> None:
        """Refuse a report while a placeholder is unfilled (`InputError` naming them all).

        A signed report is the examiner's declaration: printing "state the accreditation
        here" or an example lab's name would sign a statement nobody made, and printing
        "not stated" leaves a court to guess whether the lab is accredited. So the lab
        states it once, in its copy of the templates (also when it is not accredited)."""
        found = self.placeholders()
        if found:
            raise InputError(
                f"report templates {self.folder / 'lab.toml'}: {len(found)} placeholder(s) not "
                "filled in; no report is issued with a template's placeholder: " + "; ".join(found),
                hint="copy the templates folder (reports/), replace every {{...}} in its "
                "lab.toml with the lab's own statement (write 'Not accredited for this work.' "
                "if that is so), and pass --templates DIR or set " + ENV,
            )

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
    extra = sorted(set(doc) - {"lab", "wording", "attachments"})
    if extra:
        raise InputError(
            f"{lab_file}: unknown tables {extra}", hint="use [lab], [wording] and [attachments]"
        )
    lab = _strings(doc.get("lab"), LAB_KEYS, f"{lab_file} [lab]")
    wording = _strings(doc.get("wording"), WORDING_KEYS, f"{lab_file} [wording]")
    outputs_max_bytes = _outputs_limit(doc.get("attachments", {}), f"{lab_file} [attachments]")
    files = {"lab.toml": sha256_hex(raw)}
    for rel in sorted(FONTS.values()):
        try:
            files[rel] = sha256_hex((folder / rel).read_bytes())
        except OSError as exc:
            raise InputError(
                f"report templates: cannot read the font {folder / rel}: {exc.strerror}",
                hint="the report embeds these fonts; copy them from the project's reports/",
            ) from None
    return Templates(
        folder=folder, lab=lab, wording=wording, files=files, outputs_max_bytes=outputs_max_bytes
    )


def _outputs_limit(table: Any, where: str) -> int:
    if not isinstance(table, dict) or set(table) - ATTACHMENT_KEYS:
        raise InputError(
            f"{where}: unknown keys {sorted(set(table) - ATTACHMENT_KEYS)}"
            if isinstance(table, dict)
            else f"{where}: must be a table",
            hint="the only key is outputs_max_mb",
        )
    value = table.get("outputs_max_mb", DEFAULT_OUTPUTS_MAX_MB)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InputError(f"{where}.outputs_max_mb: must be a number of MB, 0 or more")
    return round(float(value) * 1e6)


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each with its white space collapsed."""
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]

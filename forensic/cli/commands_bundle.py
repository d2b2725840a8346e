"""Commands for evidence bundles and trusted timestamps (issue 20): ``forensic bundle`` and
``forensic timestamp``; ``forensic verify BUNDLE`` is in `forensic.cli.commands`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from forensic.cli import render
from forensic.cli.app import CaseDir, JsonFlag, TemplatesDir, app


@app.command("bundle")
def bundle_cmd(
    case_dir: CaseDir,
    out: Annotated[
        Path,
        typer.Argument(
            help="The bundle to write: a new folder, or a new tar file (--archive, or a name ending .tar).",
            show_default=False,
        ),
    ],
    archive: Annotated[
        bool,
        typer.Option(
            "--archive", help="Write one POSIX tar file (uncompressed) instead of a folder."
        ),
    ] = False,
    templates: TemplatesDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a self-verifying evidence bundle (BagIt, RFC 8493): the case, its outputs,
    provenance maps, signed reports, certificates and timestamp tokens. `forensic verify
    BUNDLE` checks it offline."""
    from forensic import api

    case = api.open_case(case_dir)
    bundled = api.write_bundle(
        case, out, now=datetime.now(UTC), archive=archive, templates_dir=templates
    )
    render.bundled(bundled.as_dict(), as_json)


@app.command("timestamp")
def timestamp_cmd(case_dir: CaseDir, as_json: JsonFlag = False) -> None:
    """Take an RFC 3161 timestamp token over the case's current checkpoint from the TSA its
    policy names (timestamps.url), check it against the policy's TSA root, and keep it."""
    from forensic import api

    case = api.open_case(case_dir)
    stamp = api.timestamp_case(case)
    render.timestamped(stamp.as_dict(), case.case_id, as_json)

"""Commands for reports and the lab PKI, and the reference commands (policy, ops).

As in `forensic.cli.commands`: parse, read the clock once, call one `forensic.api` function
(imported inside the command), render.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from forensic.cli import render
from forensic.cli.app import (
    CaseDir,
    JsonFlag,
    KeyDir,
    TemplatesDir,
    TsaUrl,
    ask_passphrase,
    model_app,
    ops_app,
    pki_app,
    policy_app,
    report_app,
)
from forensic.errors import InputError

# -- pki ------------------------------------------------------------------------------------


@pki_app.command("init")
def pki_init(
    lab: Annotated[str, typer.Option("--lab", help="Laboratory name for the certificates.")],
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a local lab CA and the examiner's report-signing certificate (key folder)."""
    from forensic import api
    from forensic.pki import CA_CERT, SIGNING_CERT

    folder, made = api.pki_init(key_dir, lab=lab, passphrase=ask_passphrase, now=datetime.now(UTC))
    # The certificate is bound to the journal key that was just unlocked: the key file's.
    fingerprint = api.key_info(key_dir).fingerprint
    render.pki_created(folder / CA_CERT, folder / SIGNING_CERT, made, fingerprint, as_json)


@pki_app.command("bind")
def pki_bind(case_dir: CaseDir, key_dir: KeyDir = None, as_json: JsonFlag = False) -> None:
    """Record in a case that the report-signing certificate belongs to this examiner."""
    from forensic import api

    case = api.open_case(case_dir)
    signer, report_signer = api.unlock_report_signer(key_dir, ask_passphrase, notify=render.notice)
    entry = api.pki_bind(case, signer, report_signer, now=datetime.now(UTC))
    render.pki_bound(report_signer, signer.fingerprint, case.case_id, entry, as_json)


# -- report ---------------------------------------------------------------------------------


@report_app.command("issue")
def report_issue(
    case_dir: CaseDir,
    out: Annotated[
        Path,
        typer.Option("--out", help="The report to write (never overwritten).", show_default=False),
    ],
    exhibit: Annotated[
        list[str] | None,
        typer.Option("--exhibit", help="Only this exhibit and its outputs (repeatable)."),
    ] = None,
    templates: TemplatesDir = None,
    tsa_url: TsaUrl = None,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Build, sign and journal the chain-of-custody report of a case (the default command)."""
    from forensic import api

    case = api.open_case(case_dir)
    tsa_url = api.report_tsa_url(case, tsa_url)
    signer, report_signer = api.unlock_report_signer(key_dir, ask_passphrase, notify=render.notice)
    issued = api.issue_report(
        case,
        out=out,
        signer=signer,
        report_signer=report_signer,
        now=datetime.now(UTC),
        exhibits_wanted=exhibit,
        templates_dir=templates,
        timestamper=api.http_timestamper(tsa_url),
        tsa_url=tsa_url,
    )
    render.report_issued(issued, case.case_id, case_dir, as_json)


@report_app.command("sign")
def report_sign(
    case_dir: CaseDir,
    report: Annotated[Path, typer.Argument(help="The report PDF to approve.", show_default=False)],
    out: Annotated[
        Path, typer.Option("--out", help="The approved copy to write.", show_default=False)
    ],
    templates: TemplatesDir = None,
    tsa_url: TsaUrl = None,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """A second examiner's approval signature on a report that verifies against its case."""
    from forensic import api

    case = api.open_case(case_dir)
    tsa_url = api.report_tsa_url(case, tsa_url)
    signer, report_signer = api.unlock_report_signer(key_dir, ask_passphrase, notify=render.notice)
    issued = api.approve_report(
        case,
        report,
        out=out,
        signer=signer,
        report_signer=report_signer,
        now=datetime.now(UTC),
        templates_dir=templates,
        timestamper=api.http_timestamper(tsa_url),
    )
    render.report_approved(issued, case.case_id, case_dir, as_json)


# -- policy ---------------------------------------------------------------------------------


@policy_app.command("check")
def policy_check(
    policy_file: Annotated[Path, typer.Argument(help="The policy TOML file.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Validate a policy file: every table, key, lane, operation name and model hash."""
    from forensic import api

    render.policy(api.check_policy(policy_file), policy_file, as_json)


# -- ops ------------------------------------------------------------------------------------


@ops_app.command("list")
def ops_list(
    category: Annotated[
        str | None, typer.Option("--category", help="Only this category (e.g. denoise).")
    ] = None,
    lane: Annotated[
        str,
        typer.Option("--lane", help="classical, generative (imports torch) or all."),
    ] = "classical",
    as_json: JsonFlag = False,
) -> None:
    """List the operations by category (the classical lane unless --lane says otherwise)."""
    from forensic import api

    if lane not in api.LANES:
        raise InputError(f"--lane {lane}: no such lane", hint=f"lanes: {', '.join(api.LANES)}")
    registry = api.operations(include_temporal=True, lane=lane)
    ops = [op for op in registry.values() if category in (None, op.category)]
    if not ops:
        known = sorted({op.category for op in registry.values()})
        raise InputError(
            f"--category {category}: no such category", hint=f"categories: {', '.join(known)}"
        )
    render.operations(ops, as_json)


@ops_app.command("show")
def ops_show(
    name: Annotated[
        str,
        typer.Argument(
            help="Operation name, e.g. denoise_nl_means or generative.face_restoration."
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Describe one operation: algorithm, parameters (types, units, ranges), references."""
    from forensic import api

    render.operation(api.operation(name), as_json)


# -- model ----------------------------------------------------------------------------------


def _range(text: str, option: str) -> list[float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{option} {text!r}: give two numbers, low,high (e.g. 0,1)") from None
    return [low, high]


@model_app.command("approve")
def model_approve(
    model_file: Annotated[Path, typer.Argument(help="The ONNX model file.", show_default=False)],
    task: Annotated[
        str,
        typer.Option(
            "--task", help="super-resolution, face-restoration or inpainting.", show_default=False
        ),
    ],
    channels: Annotated[str, typer.Option("--channels", help="RGB, BGR or grey.")] = "RGB",
    input_range: Annotated[
        str, typer.Option("--input-range", help="Values the model reads for black,white.")
    ] = "0,1",
    output_range: Annotated[
        str, typer.Option("--output-range", help="Values the model writes for black,white.")
    ] = "0,1",
    scale: Annotated[int, typer.Option("--scale", help="Output size / input size.")] = 1,
    input_size: Annotated[
        int, typer.Option("--input-size", help="Fixed square input side (0: any size).")
    ] = 0,
    pad_multiple: Annotated[
        int, typer.Option("--pad-multiple", help="Pad height and width to a multiple of this.")
    ] = 1,
    mask: Annotated[
        str | None, typer.Option("--mask", help="Inpainting: hole=1 or hole=0.")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Text naming the model.")] = "",
    profile: Annotated[
        str, typer.Option("--profile", help="Policy profile the entry is for.")
    ] = "investigative",
    as_json: JsonFlag = False,
) -> None:
    """Print the policy entry that approves MODEL_FILE: its SHA-256 and declared manifest,
    checked against the model by a trial run. Add it to the lab's policy; cases opened with
    that policy may then run the model."""
    from forensic import api

    manifest = {
        "task": task,
        "channels": channels,
        "input_range": _range(input_range, "--input-range"),
        "output_range": _range(output_range, "--output-range"),
        "scale": scale,
        "input_size": input_size,
        "pad_multiple": pad_multiple,
        "name": name,
        **({"mask": mask} if mask is not None else {}),
    }
    render.model_approval(api.approve_model(model_file, manifest, profile=profile), as_json)

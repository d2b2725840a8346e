"""Commands for keys, cases, evidence, runs and verification.

Each command parses its options, reads the clock once (``datetime.now(UTC)``), calls one
`forensic.api` function and hands the result to `forensic.cli.render`. `forensic.api` is
imported inside each command: it loads the whole pipeline, which ``--help`` does not need.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from forensic.cli import render
from forensic.cli.app import (
    CaseDir,
    JsonFlag,
    KeyDir,
    TemplatesDir,
    app,
    ask_new_passphrase,
    ask_passphrase,
    case_app,
    keys_app,
    run_app,
)
from forensic.errors import InputError, VerificationError

# -- keys -------------------------------------------------------------------------------------


class DeviceChoice(StrEnum):
    """``enhance --device`` and ``verify --replay-device``: where generative steps run."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@keys_app.command("init")
def keys_init(
    name: Annotated[
        str, typer.Option("--name", help="The examiner's full name.", show_default=False)
    ],
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an Ed25519 signing key, encrypted with a passphrase (scrypt + AES-256-GCM)."""
    from forensic import api

    now = datetime.now(UTC)
    info = api.create_keys(key_dir, name=name, passphrase=ask_new_passphrase, now=now)
    render.key(info, api.public_key_pem(key_dir), as_json, created=True)


@keys_app.command("show")
def keys_show(key_dir: KeyDir = None, as_json: JsonFlag = False) -> None:
    """Print the examiner's public key and its fingerprint (no passphrase needed)."""
    from forensic import api

    info = api.key_info(key_dir)
    render.key(info, api.public_key_pem(key_dir), as_json, created=False)


@keys_app.command("export-public")
def keys_export_public(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the PEM here instead of to standard output.")
    ] = None,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Write the public key as PEM (SubjectPublicKeyInfo), usable by OpenSSL."""
    from forensic import api

    pem = api.public_key_pem(key_dir)
    if out is not None:
        if out.exists():
            raise InputError(f"--out {out} already exists", hint="choose a new file name")
        if not out.parent.is_dir():
            raise InputError(f"--out {out}: the folder {out.parent} does not exist")
        api.write_public_key(key_dir, out)
    render.public_key(pem, api.key_info(key_dir), out, as_json)


# -- case -------------------------------------------------------------------------------------


@case_app.command("init")
def case_init(
    case_dir: CaseDir,
    case_id: Annotated[
        str, typer.Option("--case-id", help="Case reference, e.g. 2026-0142.", show_default=False)
    ],
    title: Annotated[str, typer.Option("--title", help="Short case title.", show_default=False)],
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Policy file (default: the bundled policy.toml)."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", help="Policy profile, e.g. evidence (default: the policy's default)."
        ),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field", help="Extra case field NAME=VALUE (repeatable).", show_default=False
        ),
    ] = None,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a case folder, copy the policy in, and sign the case.open entry."""
    from forensic import api

    fields: dict[str, str] = {}
    for item in field or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--field {item!r} must be NAME=VALUE")
        if name in fields:
            raise InputError(f"--field {name} is given twice")
        fields[name] = value
    signer = api.unlock_signer(key_dir, ask_passphrase)
    case = api.create_case(
        case_dir,
        case_id=case_id,
        title=title,
        policy_path=policy,
        signer=signer,
        now=datetime.now(UTC),
        profile=profile,
        fields=fields,
    )
    opened = api.case_overview(case)
    render.case_created(case, opened.policy, signer.name, signer.fingerprint, as_json)


@case_app.command("show")
def case_show(case_dir: CaseDir, as_json: JsonFlag = False) -> None:
    """List the case's examiners and exhibits (reads the journal; verifies nothing)."""
    from forensic import api

    case = api.open_case(case_dir)
    overview = api.case_overview(case)
    runs = [render.run_view(run, api.run_output_frames(case, run)) for run in overview.runs]
    render.case_overview(overview, runs, as_json)


@case_app.command("add-examiner")
def case_add_examiner(
    case_dir: CaseDir,
    public_key: Annotated[
        Path, typer.Option("--public-key", help="The new examiner's PEM public key.")
    ],
    name: Annotated[str, typer.Option("--name", help="The new examiner's full name.")],
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Enrol another examiner's key; signed by an examiner already enrolled."""
    from forensic import api

    try:
        pem = api.read_pem_file(public_key, what="--public-key")
    except UnicodeDecodeError as exc:
        raise InputError(f"--public-key {public_key}: cannot read: {exc}") from None
    case = api.open_case(case_dir)
    signer = api.unlock_signer(key_dir, ask_passphrase)
    entry = api.add_examiner(case, pem, name=name, signer=signer, now=datetime.now(UTC))
    render.examiner_enrolled(entry, case.case_id, as_json)


@case_app.command("recover")
def case_recover(
    case_dir: CaseDir,
    key_dir: KeyDir = None,
    remove_temporary: Annotated[
        bool,
        typer.Option(
            "--remove-temporary",
            help="Also remove temporary files left by interrupted commands (only when no "
            "other forensic command is working on this case).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Finish an append that a crash interrupted (journaled), and list the temporary files
    that interrupted commands left. Any writing command finishes an interrupted append by
    itself; this is the explicit step."""
    from forensic import api

    case = api.open_case(case_dir)
    signer = api.unlock_signer(key_dir, ask_passphrase)
    recovery = api.recover_case(
        case, signer=signer, now=datetime.now(UTC), remove_temporaries=remove_temporary
    )
    render.recovery(recovery, case.case_id, as_json)


@app.command("cosign")
def cosign_cmd(
    case_dir: CaseDir,
    step: Annotated[str, typer.Argument(help="The generative step, RUN.STEP (e.g. R1.2).")],
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Co-sign a generative step as a second examiner (required where the policy says so)."""
    from forensic import api

    case = api.open_case(case_dir)
    signer = api.unlock_signer(key_dir, ask_passphrase)
    entry = api.cosign(case, step, signer=signer, now=datetime.now(UTC))
    render.cosigned(signer.name, entry, api.COSIGN_STATEMENT, as_json)


# -- ingest -----------------------------------------------------------------------------------


@app.command("ingest")
def ingest_cmd(
    case_dir: CaseDir,
    files: Annotated[
        list[Path], typer.Argument(help="Evidence files: images or video.", show_default=False)
    ],
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Copy evidence into the case (read-only, content-addressed), hash it and journal it."""
    from forensic import api

    case = api.open_case(case_dir)
    signer = api.unlock_signer(key_dir, ask_passphrase)
    now = datetime.now(UTC)
    with render.ingest_progress(not as_json and sys.stderr.isatty()) as progress:
        results = api.ingest(case, files, signer=signer, now=now, progress=progress)
    render.ingested(results, as_json)


# -- verify -----------------------------------------------------------------------------------


@app.command("verify")
def verify_cmd(
    case_dir: Annotated[
        Path,
        typer.Argument(
            help="The case folder, a report PDF, or an evidence bundle (folder or .tar).",
            show_default=False,
        ),
    ],
    trust: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust", help="PEM public key the case must have been opened with (repeatable)."
        ),
    ] = None,
    pixels: Annotated[
        bool,
        typer.Option(
            "--pixels", help="Also decode all evidence and compare pixel and frame hashes."
        ),
    ] = False,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay",
            help="Also re-run every enhancement run from the evidence and compare each step.",
        ),
    ] = False,
    case: Annotated[
        Path | None,
        typer.Option(
            "--case",
            help="With a report PDF: also check it against this case and rebuild it.",
            show_default=False,
        ),
    ] = None,
    templates: TemplatesDir = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="A copy of an earlier journal.checkpoint kept outside the case: the journal "
            "must extend it (catches a journal rolled back to an earlier state).",
            show_default=False,
        ),
    ] = None,
    replay_device: Annotated[
        DeviceChoice,
        typer.Option(
            "--replay-device",
            help="With --replay: where generative steps are re-run: auto (the recorded kind "
            "when present here, else the CPU), cpu or cuda. Their verdicts name both devices.",
        ),
    ] = DeviceChoice.auto,
    as_json: JsonFlag = False,
) -> None:
    """Check a case (signatures, hash chain, checkpoint, timestamps, policy, evidence, runs), a
    report PDF (its signatures, its attached journal, and with --case the case) or an evidence
    bundle (its manifests, then the case and reports in it). Exit 0 only if all hold."""
    from forensic import api

    trusted = []
    for path in trust or []:
        try:
            text = api.read_pem_file(path, what="--trust")
        except UnicodeDecodeError as exc:
            raise InputError(f"--trust {path}: cannot read: {exc}") from None
        trusted.append(api.public_key_from_pem(text, where=f"--trust {path}"))
    if api.is_bundle(case_dir):
        if case is not None or checkpoint is not None:
            raise InputError(
                f"{case_dir} is an evidence bundle: --case and --checkpoint apply to reports "
                "and cases",
                hint="verify BUNDLE alone",
            )
        bundle = api.verify_bundle(case_dir, trusted=trusted, pixels=pixels, replay=replay)
        render.bundle_verdict(bundle, case_dir, as_json)
        if not bundle.ok:
            if as_json:
                raise typer.Exit(1)
            raise VerificationError(f"Verification failed: {bundle.failure}")
        return
    if case_dir.is_file():
        report = api.verify_report(
            case_dir, case_dir=case, templates_dir=templates, trusted=trusted
        )
        render.report_verdict(report, case_dir, case, as_json)
        if not report.ok:
            if as_json:
                raise typer.Exit(1)
            raise VerificationError(str(report.failure))
        if not as_json:
            render.report_verified(report, case_dir)
        return
    if case is not None:
        raise InputError(f"--case: {case_dir} is not a report PDF", hint="verify CASE alone")
    printer = None if as_json else render.CaseChecks(case_dir)
    verdict = api.verify_case(
        case_dir,
        trusted=trusted,
        pixels=pixels,
        replay=replay,
        checkpoint=checkpoint,
        progress=printer,
        replay_device=replay_device.value,
    )
    if printer is None:
        render.emit_json(verdict.as_dict())
    else:
        printer.finish(verdict)
    if not verdict.ok:
        if as_json:
            raise typer.Exit(1)
        verdict.raise_for_failure()


# -- enhance ----------------------------------------------------------------------------------


@app.command("enhance")
def enhance_cmd(
    case_dir: CaseDir,
    exhibit: Annotated[str, typer.Argument(help="Exhibit ID, e.g. E1.", show_default=False)],
    recipe: Annotated[
        str,
        typer.Option(
            "--recipe",
            help="Recipe TOML file, or the name of a shipped recipe (forensic recipes).",
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="A name for this run (default: the recipe's).")
    ] = None,
    keep_intermediates: Annotated[
        bool,
        typer.Option(
            "--keep-intermediates", help="Also store every step's output (default: hashes only)."
        ),
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            max=64,
            help="Threads for per-frame video steps (default: the cores available, at most 4). "
            "Results do not depend on it.",
        ),
    ] = None,
    frames: Annotated[
        str | None,
        typer.Option(
            "--frames",
            help="Video: the frames to read, A:B inclusive, or all (steps without their own "
            "range apply to all of them; frames outside a step's range pass through it).",
            show_default=False,
        ),
    ] = None,
    seconds: Annotated[
        str | None,
        typer.Option(
            "--seconds",
            help="Video: the frames displayed from S to E seconds (S:E), as --frames.",
            show_default=False,
        ),
    ] = None,
    again: Annotated[
        bool,
        typer.Option(
            "--again", help="Run even if the same recipe already ran on the same input and range."
        ),
    ] = False,
    device: Annotated[
        DeviceChoice,
        typer.Option(
            "--device",
            help="Where generative steps run: auto (a CUDA GPU when present and allowed by the "
            "case's policy, else the CPU), cpu or cuda. Recorded with each generative step.",
        ),
    ] = DeviceChoice.auto,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a recipe on an exhibit: validate, check the policy, compute, store, sign each step."""
    from forensic import api

    case = api.open_case(case_dir)
    parsed = api.recipe_with_range(api.load_recipe(recipe), frames=frames, seconds=seconds)
    signer = api.unlock_signer(key_dir, ask_passphrase)
    now = datetime.now(UTC)
    with render.run_progress(not as_json and sys.stderr.isatty(), "Enhancing") as progress:
        summary = api.run_recipe(
            case,
            exhibit,
            parsed,
            signer=signer,
            now=now,
            name=name,
            keep_intermediates=keep_intermediates,
            workers=threads,
            progress=progress.frames,
            again=again,
            device=device.value,
            tile_progress=progress.tiles,
        )
    render.run_summary(summary, as_json)


@run_app.command("supersede")
def run_supersede_cmd(
    case_dir: CaseDir,
    run: Annotated[str, typer.Argument(help="Run ID, e.g. R1.", show_default=False)],
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why the run is superseded (recorded).", show_default=False),
    ],
    by: Annotated[
        str | None,
        typer.Option("--by", help="The run that replaces it, e.g. R3.", show_default=False),
    ] = None,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Mark a run superseded (journaled): it stays in the case and is verified as before, and
    reports list it in one short table instead of in full."""
    from forensic import api

    case = api.open_case(case_dir)
    signer = api.unlock_signer(key_dir, ask_passphrase)
    record = api.supersede_run(
        case, run, reason=reason, signer=signer, now=datetime.now(UTC), by=by
    )
    render.superseded(record, as_json)


@app.command("export")
def export_cmd(
    case_dir: CaseDir,
    run: Annotated[str, typer.Argument(help="Run ID, e.g. R2.", show_default=False)],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            help="File (ffv1, h264) or new folder (png, --c2pa) to write; never overwritten.",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="ffv1: lossless FFV1/Matroska (evidence copy); png: one lossless PNG per frame; "
            "h264: lossy presentation copy, marked as such in the journal and report.",
        ),
    ] = "ffv1",
    burn_in: Annotated[
        bool,
        typer.Option("--burn-in", help="Draw each frame's number and timecode into a corner."),
    ] = False,
    c2pa: Annotated[
        bool,
        typer.Option(
            "--c2pa",
            help="Write the output into the new folder --out with C2PA Content Credentials, "
            "signed with the examiner's certificate (`forensic pki init`): a still as lossless "
            "PNG (TIFF for 16 bits), a video as its FFV1 frames in an MP4; --format is not used.",
        ),
    ] = False,
    c2pa_sidecar: Annotated[
        bool,
        typer.Option(
            "--c2pa-sidecar",
            help="With --c2pa: the manifest beside the file as <run>.c2pa, the file unchanged.",
        ),
    ] = False,
    redaction_reason: Annotated[
        str | None,
        typer.Option(
            "--redaction-reason",
            help="With --c2pa, for a run that redacts: why, as C2PA says it (c2pa.PII.present, "
            "c2pa.invalid.data, c2pa.trade-secret.present, c2pa.government.confidentiality).",
            show_default=False,
        ),
    ] = None,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Export a run's output (lossless video, PNG frames, a lossy H.264 copy, or with C2PA
    Content Credentials) and journal it."""
    from forensic import api

    case = api.open_case(case_dir)
    if c2pa or c2pa_sidecar:
        if burn_in:
            raise InputError("--burn-in cannot be used with --c2pa (the output's own pixels)")
        signer, report_signer = api.unlock_report_signer(
            key_dir, ask_passphrase, notify=render.notice
        )
        payload = api.export_c2pa(
            case,
            run,
            out=out_path,
            sidecar=c2pa_sidecar,
            redaction_reason=redaction_reason,
            signer=signer,
            report_signer=report_signer,
            now=datetime.now(UTC),
        )
        render.exported_c2pa(payload, out_path, as_json)
        return
    if redaction_reason is not None:
        raise InputError("--redaction-reason is for --c2pa exports")
    signer = api.unlock_signer(key_dir, ask_passphrase)
    payload = api.export_run(
        case, run, fmt=fmt, out=out_path, burn_in=burn_in, signer=signer, now=datetime.now(UTC)
    )
    render.exported(payload, fmt, out_path, as_json)


@app.command("recipes")
def recipes_cmd(as_json: JsonFlag = False) -> None:
    """List the recipes shipped with forensic (usable by name with enhance --recipe)."""
    from forensic import api

    items = []
    for name, path in api.bundled_recipes().items():
        r = api.load_recipe(path)
        items.append(
            {
                "name": name,
                "description": r.description,
                "steps": [s.op_name for s in r.steps],
                "path": str(path),
            }
        )
    render.recipes(items, as_json)


# -- workbench --------------------------------------------------------------------------------


@app.command("workbench")
def workbench_cmd(
    case_dir: CaseDir,
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1 to listen on.")
    ] = 8765,
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="A reviewer's workbench: look and verify, never write."),
    ] = False,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the address; do not open a browser.")
    ] = False,
    key_dir: KeyDir = None,
) -> None:
    """Open the case in the examiner's workbench: a local web page to look at evidence frame by
    frame, pick regions, preview and run recipes, compare results and review the record."""
    from forensic.workbench import serve

    serve(
        case_dir,
        port=port,
        read_only=read_only,
        open_browser=not no_browser,
        key_dir=key_dir,
        passphrase=ask_passphrase,
    )


# -- key upgrade and lifecycle (issue 15) -----------------------------------------------------


@keys_app.command("upgrade")
def keys_upgrade(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="The key folder [default: --key-dir, FORENSIC_KEY_DIR or the per-user one].",
            show_default=False,
        ),
    ] = None,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Give old report and lab CA key files the journal key's protection (scrypt).

    Key folders made by forensic 0.1.0 hold them as PKCS#8 with PBKDF2 at 2,048 iterations.
    """
    from forensic import api

    chosen = folder if folder is not None else key_dir
    upgraded = api.upgrade_keys(chosen, ask_passphrase)
    render.keys_upgraded(api.key_info(chosen).path.parent, upgraded, as_json)


def _ask_new_key_passphrase() -> str:
    """The passphrase of the key rotated to: ``FORENSIC_NEW_PASSPHRASE``, else a prompt."""
    import getpass
    import os

    env = os.environ.get("FORENSIC_NEW_PASSPHRASE")
    if env is not None:
        return env
    if not sys.stdin.isatty():
        raise InputError(
            "no passphrase for the new key: this is not a terminal and FORENSIC_NEW_PASSPHRASE "
            "is not set",
            hint="run the command in a terminal, or set FORENSIC_NEW_PASSPHRASE for scripts",
        )
    return getpass.getpass("New key passphrase: ")


@keys_app.command("rotate")
def keys_rotate(
    case_dir: CaseDir,
    new_key_dir: Annotated[
        Path,
        typer.Option(
            "--new-key-dir",
            help="Folder of the new key (made with `forensic keys init --key-dir NEW`).",
            show_default=False,
        ),
    ],
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Replace your key in a case by a new one (both sign the key.rotate entry).

    Afterwards only the new key signs for you in this case.
    """
    from forensic import api

    case = api.open_case(case_dir)
    old = api.unlock_signer(key_dir, ask_passphrase)
    new = api.unlock_signer(new_key_dir, _ask_new_key_passphrase)
    entry = api.rotate_key(case, old, new, now=datetime.now(UTC))
    render.key_rotated(old.fingerprint, new.fingerprint, new.name, case.case_id, entry, as_json)


@case_app.command("revoke-key")
def case_revoke_key(
    case_dir: CaseDir,
    fingerprint: Annotated[
        str, typer.Argument(help="The key's fingerprint (or its first 8+ hex digits).")
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why the key is revoked.", show_default=False)
    ],
    effective: Annotated[
        str | None,
        typer.Option(
            "--effective",
            help="From when (ISO 8601 with zone, e.g. 2026-11-20T14:00:00Z; may be in the past "
            "to cover a compromise) [default: now].",
            show_default=False,
        ),
    ] = None,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke an enrolled key: every entry it signed from the effective time on fails verify."""
    from forensic import api

    case = api.open_case(case_dir)
    when = None if effective is None else api.parse_effective(effective)
    signer = api.unlock_signer(key_dir, ask_passphrase)
    entry = api.revoke_key(
        case, fingerprint, reason=reason, effective=when, signer=signer, now=datetime.now(UTC)
    )
    render.key_revoked(entry, case.case_id, as_json)

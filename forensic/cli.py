"""Command line. Thin typer commands over plain functions; one error boundary in `main`.

The clock is read here and only here (``datetime.now(UTC)``), then passed down as ``now``.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from forensic import __version__
from forensic.errors import ForensicError, InputError, KeyFileError
from forensic.keys import Signer

app = typer.Typer(
    name="forensic",
    help="Enhance images and CCTV video as evidence, and prove what was done.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Examiner signing keys.", no_args_is_help=True)
case_app = typer.Typer(help="Create and inspect cases.", no_args_is_help=True)
ops_app = typer.Typer(
    help="The classical operations: what each does, its parameters and references.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
app.add_typer(case_app, name="case")
app.add_typer(ops_app, name="ops")
policy_app = typer.Typer(help="Check policy files.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
pki_app = typer.Typer(
    help="The lab PKI that signs PDF reports (ECDSA P-256), bound to the journal key.",
    no_args_is_help=True,
)
app.add_typer(pki_app, name="pki")


class _DefaultIssue(typer.core.TyperGroup):
    """`forensic report CASE ...` means `forensic report issue CASE ...`; `sign` and `issue`
    stay subcommands (a case folder named like one must be given as ./sign)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(
    cls=_DefaultIssue,
    help="Signed PDF chain-of-custody reports: `forensic report CASE --out FILE.pdf`.",
    no_args_is_help=True,
)
app.add_typer(report_app, name="report")

_debug = False

KeyDir = Annotated[
    Path | None,
    typer.Option(
        "--key-dir",
        envvar="FORENSIC_KEY_DIR",
        help="Folder holding the examiner key [default: ~/.config/forensic/keys].",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
CaseDir = Annotated[Path, typer.Argument(help="The case folder.", show_default=False)]
TemplatesDir = Annotated[
    Path | None,
    typer.Option(
        "--templates",
        envvar="FORENSIC_REPORT_TEMPLATES",
        help="Report templates folder (a copy of reports/) [default: the project's reports/].",
        show_default=False,
    ),
]
TsaUrl = Annotated[
    str | None,
    typer.Option(
        "--tsa-url",
        envvar="FORENSIC_TSA_URL",
        help="RFC 3161 time-stamping authority to countersign the PDF signature.",
        show_default=False,
    ),
]


def _now() -> datetime:
    return datetime.now(UTC)


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _passphrase(*, confirm: bool = False) -> str:
    env = os.environ.get("FORENSIC_PASSPHRASE")
    if env is not None:
        return env
    if not sys.stdin.isatty():
        raise KeyFileError(
            "no passphrase: this is not a terminal and FORENSIC_PASSPHRASE is not set",
            hint="run the command in a terminal, or set FORENSIC_PASSPHRASE for scripts",
        )
    first = getpass.getpass("Key passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise KeyFileError("the two passphrases differ; nothing was created")
    return first


def _signer(key_dir: Path | None) -> Signer:
    from forensic.keys import resolve_key_dir, unlock

    return unlock(resolve_key_dir(key_dir), _passphrase())


def _report_signer(key_dir: Path | None) -> tuple[Signer, Any]:
    """The journal key and the report-signing key, which share the examiner's passphrase."""
    from forensic.keys import resolve_key_dir, unlock
    from forensic.pki import load_report_signer

    folder = resolve_key_dir(key_dir)
    passphrase = _passphrase()
    return unlock(folder, passphrase), load_report_signer(folder, passphrase=passphrase)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"forensic {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    global _debug
    _debug = debug


# -- keys -------------------------------------------------------------------------------------


@keys_app.command("init")
def keys_init(
    name: Annotated[
        str, typer.Option("--name", help="The examiner's full name.", show_default=False)
    ],
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an Ed25519 signing key, encrypted with a passphrase (scrypt + AES-256-GCM)."""
    from forensic.keys import create_key, resolve_key_dir

    folder = resolve_key_dir(key_dir)
    info = create_key(folder, name=name, passphrase=_passphrase(confirm=True), now=_now())
    _print_key(info, as_json, created=True)


@keys_app.command("show")
def keys_show(key_dir: KeyDir = None, as_json: JsonFlag = False) -> None:
    """Print the examiner's public key and its fingerprint (no passphrase needed)."""
    from forensic.keys import read_key_info, resolve_key_dir

    _print_key(read_key_info(resolve_key_dir(key_dir)), as_json, created=False)


def _print_key(info: Any, as_json: bool, *, created: bool) -> None:
    from forensic.keys import public_pem

    data = {
        "name": info.name,
        "fingerprint": info.fingerprint,
        "created": info.created,
        "key_file": str(info.path),
        "public_key": public_pem(info.public_key),
    }
    if as_json:
        _emit_json(data)
        return
    out = _out()
    if created:
        out.print(f"Created examiner key for {info.name} in {info.path}")
    out.print(f"Examiner:    {info.name}")
    out.print(f"Fingerprint: {info.fingerprint}  (SHA-256 of the raw Ed25519 public key)")
    out.print(f"Created:     {info.created}")
    out.print(f"Key file:    {info.path}")
    out.print(public_pem(info.public_key), end="")


@keys_app.command("export-public")
def keys_export_public(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the PEM here instead of to standard output.")
    ] = None,
    key_dir: KeyDir = None,
) -> None:
    """Write the public key as PEM (SubjectPublicKeyInfo), usable by OpenSSL."""
    from forensic.fsutil import write_atomic
    from forensic.keys import public_pem, read_key_info, resolve_key_dir

    pem = public_pem(read_key_info(resolve_key_dir(key_dir)).public_key)
    if out is None:
        sys.stdout.write(pem)
        return
    if out.exists():
        raise InputError(f"--out {out} already exists", hint="choose a new file name")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: the folder {out.parent} does not exist")
    write_atomic(out, pem.encode("ascii"))
    _out().print(f"Wrote public key to {out}")


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
        typer.Option("--policy", help="Policy file [default: the bundled policy.toml]."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", help="Policy profile, e.g. evidence [default: the policy's default]."
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
    from forensic.case import init_case

    fields: dict[str, str] = {}
    for item in field or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--field {item!r} must be NAME=VALUE")
        if name in fields:
            raise InputError(f"--field {name} is given twice")
        fields[name] = value
    signer = _signer(key_dir)
    case = init_case(
        case_dir,
        case_id=case_id,
        title=title,
        policy_path=policy,
        signer=signer,
        now=_now(),
        profile=profile,
        fields=fields,
    )
    opened = case.entries()[0].payload
    if as_json:
        _emit_json({"case": str(case.root), "case_id": case.case_id, "policy": opened["policy"]})
        return
    _out().print(
        f"Created case {case.case_id} in {case.root}\n"
        f"Policy {opened['policy']['name']!r}, profile {opened['policy']['profile']!r}, "
        f"sha256 {opened['policy']['sha256']}\n"
        f"Examiner {signer.name} ({signer.fingerprint})"
    )


@case_app.command("show")
def case_show(case_dir: CaseDir, as_json: JsonFlag = False) -> None:
    """List the case's examiners and exhibits (reads the journal; verifies nothing)."""
    from forensic.case import exhibits, open_case
    from forensic.cosign import missing_cosignatures
    from forensic.enhance import runs
    from forensic.journal import enrolled_keys

    case = open_case(case_dir)
    entries = case.entries()
    items = exhibits(entries)
    run_list = [_run_summary(case.root, run, steps) for run, steps in runs(entries)]
    opened = entries[0].payload if entries else {}
    if as_json:
        _emit_json(
            {
                "case": str(case.root),
                "case_id": case.case_id,
                "title": case.manifest["title"],
                "fields": case.manifest.get("fields", {}),
                "policy": opened.get("policy"),
                "entries": len(entries),
                "examiners": enrolled_keys(entries),
                "exhibits": [{k: v for k, v in x.items() if k != "frames"} for x in items],
                "runs": run_list,
                "awaiting_cosignature": missing_cosignatures(
                    entries, required=_cosign_required(case)
                ),
                "reports": [],
            }
        )
        return
    out = _out()
    out.print(
        f"Case {case.case_id}: {case.manifest['title']}  ({len(entries)} journal entries)",
        markup=False,
    )
    policy = opened.get("policy", {})
    if policy:
        out.print(
            f"Policy {policy.get('name')!r}, profile {policy.get('profile', '-')!r}", markup=False
        )
    for key, value in case.manifest.get("fields", {}).items():
        out.print(f"{key}: {value}", markup=False)
    for fpr, name in enrolled_keys(entries).items():
        out.print(f"Examiner {name}  {fpr}", markup=False)
    _exhibit_table(out, items)
    for r in run_list:
        out.print(
            f"{r['run']}  {r['name']} on {r['exhibit']}  (recipe {r['recipe']}, "
            f"lanes {', '.join(r['lanes'])}, {len(r['steps'])} steps)",
            markup=False,
        )
        out.print(f"    steps   {' -> '.join(r['steps'])}", markup=False)
        _print_output(out, r["output"], r["provenance"])
        for f in r["frames"][:SHOWN_FRAMES]:
            out.print(
                f"    frame {f['frame']}  {f['output']['file']}  pixels {f['output']['pixel_sha256']}",
                markup=False,
            )
        if len(r["frames"]) > SHOWN_FRAMES:
            out.print(
                f"    ... {len(r['frames']) - SHOWN_FRAMES} more frames (all with --json)",
                markup=False,
            )
        for warning in r["warnings"]:
            out.print(f"    warning: {warning}", markup=False)
    if not run_list:
        out.print("No enhancement runs yet (forensic enhance CASE EXHIBIT --recipe FILE).")
    for m in missing_cosignatures(entries, required=_cosign_required(case)):
        out.print(
            f"Awaiting co-signature: step {m['run']}.{m['step']} ({m['op']}); a second examiner "
            f"runs `forensic cosign CASE {m['run']}.{m['step']}`",
            markup=False,
        )
    out.print("No reports yet.")


#: Output frames `case show` prints per run; --json lists them all.
SHOWN_FRAMES = 20


def _cosign_required(case: Any) -> bool:
    try:
        return bool(case.profile().generative.require_cosign)
    except ForensicError:
        return True  # an unreadable policy: show everything that might need one


def _run_summary(root: Path, run: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    if run.get("format") == "forensic-run/2":
        from forensic.videorun import load_artifact

        video = run["output"]["video"]["file"]
        frames = [
            {
                "frame": f["frame"],
                "output": {**f["output"], "file": f"{video} #{f['output']['stored']}"},
                "provenance": f["provenance"],
            }
            for f in load_artifact(root, run["frames"], what=f"run {run['run']} output frame")
        ]
    else:
        frames = [
            {k: f[k] for k in ("frame", "pts", "source_sha256", "output", "provenance")}
            for f in run.get("frames", [])
        ]
    return {
        "run": run["run"],
        "name": run["name"],
        "exhibit": run["exhibit"],
        "recipe": f"{run['recipe']['name']} ({run['recipe']['sha256'][:12]}…)",
        "recipe_sha256": run["recipe"]["sha256"],
        "lanes": run["lanes"],
        "steps": [s["op"] for s in steps],
        "output": run["output"],
        "provenance": run["provenance"],
        "frames": frames,
        "warnings": run["warnings"],
    }


def _exhibit_table(out: Console, items: Sequence[dict[str, Any]]) -> None:
    # One block per exhibit, full hashes on one line each: examiners compare and copy them.
    for x in items:
        facts = x["facts"]
        if x["media"] == "video":
            kind = f"{facts['codec']} video {facts['width']}x{facts['height']}, {facts['frame_count']} frames"
        else:
            kind = f"{x['format']} image {facts['width']}x{facts['height']} {facts['dtype']}"
        out.print(f"{x['exhibit']}  {x['original']['name']}  ({kind}, {x['size']:,} bytes)")
        out.print(f"    sha256  {x['sha256']}")
        out.print(f"    pixels  {x['pixel_hash']['algorithm']} {x['pixel_hash']['sha256']}")
        for warning in x.get("warnings", []):
            out.print(f"    warning: {warning}")


@case_app.command("add-examiner")
def case_add_examiner(
    case_dir: CaseDir,
    public_key: Annotated[
        Path, typer.Option("--public-key", help="The new examiner's PEM public key.")
    ],
    name: Annotated[str, typer.Option("--name", help="The new examiner's full name.")],
    key_dir: KeyDir = None,
) -> None:
    """Enrol another examiner's key; signed by an examiner already enrolled."""
    from forensic.case import enrol_examiner, open_case

    try:
        pem = public_key.read_text("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--public-key {public_key}: cannot read: {exc}") from None
    case = open_case(case_dir)
    entry = enrol_examiner(case, pem, name=name, signer=_signer(key_dir), now=_now())
    _out().print(f"Enrolled {name} ({entry.payload['fingerprint']}) in case {case.case_id}")


@app.command("cosign")
def cosign_cmd(
    case_dir: CaseDir,
    step: Annotated[str, typer.Argument(help="The generative step, RUN.STEP (e.g. R1.2).")],
    key_dir: KeyDir = None,
) -> None:
    """Co-sign a generative step as a second examiner (required where the policy says so)."""
    from forensic.case import open_case
    from forensic.cosign import STATEMENT, cosign

    case = open_case(case_dir)
    signer = _signer(key_dir)
    cosign(case, step, signer=signer, now=_now())
    _out().print(f"{signer.name} co-signed step {step.upper()}: {STATEMENT}", markup=False)


# -- ingest -----------------------------------------------------------------------------------


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(where: str, done: int, total: int | None) -> None:
            if where not in tasks:
                tasks[where] = bar.add_task(f"Hashing frames of {Path(where).name}", total=total)
            if done % 25 == 0 or (total is not None and done >= total):
                bar.update(tasks[where], completed=done)

        yield update


@contextmanager
def _frame_progress(enabled: bool, what: str) -> Iterator[Any]:
    """A progress bar for a long video run: frames done of total, rate and time left."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


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
    from forensic.case import open_case
    from forensic.ingest import ingest

    case = open_case(case_dir)
    signer = _signer(key_dir)
    with _progress(not as_json and sys.stderr.isatty()) as progress:
        results = ingest(case, files, signer=signer, now=_now(), progress=progress)
    if as_json:
        _emit_json(
            [
                {
                    "exhibit": r.exhibit,
                    "new": r.new,
                    "source": str(r.source),
                    "sha256": r.sha256,
                    "stored": r.stored,
                    "pixel_hash": r.payload["pixel_hash"],
                    "warnings": r.payload.get("warnings", []),
                }
                for r in results
            ]
        )
        return
    out = _out()
    for r in results:
        if r.new:
            out.print(f"{r.exhibit}  {r.source.name}  sha256 {r.sha256}")
            out.print(
                f"    pixels {r.payload['pixel_hash']['algorithm']} {r.payload['pixel_hash']['sha256']}"
            )
            for warning in r.payload.get("warnings", []):
                out.print(f"    warning: {warning}")
        else:
            out.print(
                f"{r.exhibit}  {r.source.name}  already in the case (same SHA-256); not added again"
            )


# -- verify -----------------------------------------------------------------------------------


def _trusted(trust: list[Path] | None) -> list[Any]:
    from forensic.keys import load_public_pem

    trusted = []
    for path in trust or []:
        try:
            trusted.append(load_public_pem(path.read_text("ascii"), where=f"--trust {path}"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--trust {path}: cannot read: {exc}") from None
    return trusted


@app.command("verify")
def verify_cmd(
    case_dir: Annotated[
        Path, typer.Argument(help="The case folder, or a report PDF.", show_default=False)
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
    as_json: JsonFlag = False,
) -> None:
    """Check a case (signatures, hash chain, checkpoint, policy, evidence, runs) or a report
    PDF (its signatures, its attached journal, and with --case the case). Exit 0 only if all
    hold."""
    from forensic.verify import verify_case

    trusted = _trusted(trust)
    if case_dir.is_file():
        _verify_report(case_dir, case, templates, trusted, as_json)
        return
    if case is not None:
        raise InputError(f"--case: {case_dir} is not a report PDF", hint="verify CASE alone")
    verdict = verify_case(case_dir, trusted=trusted, pixels=pixels, replay=replay)
    if as_json:
        _emit_json(verdict.as_dict())
    else:
        out = _out()
        out.print(f"Verifying case at {case_dir}")
        for c in verdict.checks:
            out.print(
                f"{c.number}. {c.name}: {c.status}"
                + (f" ({c.detail})" if c.detail and c.ok else "")
            )
            for note in c.notes:
                out.print(f"   note: {note}", markup=False)
        replayed = verdict.replay or []
        ordered = [r for r in replayed if r["lane"] == "classical"] + [
            r for r in replayed if r["lane"] != "classical"
        ]
        for i, r in enumerate(ordered):
            if r["lane"] != "classical" and (i == 0 or ordered[i - 1]["lane"] == "classical"):
                out.print("   generative steps (their output is inferred, whatever the verdict):")
            extra = ""
            if r["max_abs_difference"] is not None:
                extra = f" (max difference {r['max_abs_difference']}, PSNR {r['psnr_db']} dB)"
            detail = f": {r['detail']}" if r["detail"] else ""
            out.print(
                f"   run {r['run']} step {r['step']} {r['op']}: {r['verdict']}{extra}{detail}",
                markup=False,
            )
        if verdict.ok:
            cp = verdict.checkpoint or {}
            out.print(f"VERIFIED: {cp.get('count')} entries, Merkle root {cp.get('root')}")
    if not verdict.ok:
        if as_json:
            raise typer.Exit(1)
        verdict.raise_for_failure()


def _verify_report(
    path: Path, case: Path | None, templates: Path | None, trusted: list[Any], as_json: bool
) -> None:
    from forensic.report import verify_report

    verdict = verify_report(path, case_dir=case, templates_dir=templates, trusted=trusted)
    if as_json:
        _emit_json(verdict.as_dict())
        if not verdict.ok:
            raise typer.Exit(1)
        return
    out = _out()
    out.print(f"Verifying report {path}" + (f" against case {case}" if case else ""), markup=False)
    for c in verdict.checks:
        out.print(
            f"{c.number}. {c.name}: {c.status}" + (f" ({c.detail})" if c.detail and c.ok else ""),
            markup=False,
        )
        for note in c.notes:
            out.print(f"   note: {note}", markup=False)
    if case is None and verdict.ok:
        out.print("   note: pass --case CASE to check the report against its case", markup=False)
    if not verdict.ok:
        from forensic.errors import VerificationError

        raise VerificationError(str(verdict.failure))
    out.print(f"VERIFIED: {path}, {len(verdict.signatures)} signature(s)", markup=False)


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
        str | None, typer.Option("--name", help="A name for this run [default: the recipe's].")
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
            help="Threads for per-frame video steps [default: the cores available, at most 4]. "
            "Results do not depend on it.",
        ),
    ] = None,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a recipe on an exhibit: validate, check the policy, compute, store, sign each step."""
    from forensic.case import open_case
    from forensic.enhance import run_recipe
    from forensic.recipe import load_recipe

    case = open_case(case_dir)
    parsed = load_recipe(recipe)
    signer = _signer(key_dir)
    with _frame_progress(not as_json and sys.stderr.isatty(), "Enhancing") as progress:
        summary = run_recipe(
            case,
            exhibit,
            parsed,
            signer=signer,
            now=_now(),
            name=name,
            keep_intermediates=keep_intermediates,
            workers=threads,
            progress=progress,
        )
    if as_json:
        _emit_json(
            {
                "run": summary.run_id,
                "exhibit": summary.exhibit,
                "recipe": summary.recipe,
                "output": summary.output,
                "provenance": summary.provenance,
                "steps": summary.steps,
                "warnings": summary.warnings,
            }
        )
        return
    out = _out()
    out.print(f"{summary.run_id}: recipe {summary.recipe!r} on {summary.exhibit}", markup=False)
    for s in summary.steps:
        if s["output"] is None:
            out.print(f"  step {s['step']} {s['op']}: no frame in its range", markup=False)
            continue
        frames = f", {s['frames']} frames" if "merkle_root" in summary.output else ""
        out.print(
            f"  step {s['step']} {s['op']} ({s['effect']}{frames}, {s['duration_ms']:.0f} ms) -> "
            f"{s['output']['width']}x{s['output']['height']} pixels "
            f"{s['output']['pixel_sha256'][:16]}…",
            markup=False,
        )
    _print_output(out, summary.output, summary.provenance)
    for warning in summary.warnings:
        out.print(f"warning: {warning}", markup=False)


@app.command("export")
def export_cmd(
    case_dir: CaseDir,
    run: Annotated[str, typer.Argument(help="Run ID, e.g. R2.", show_default=False)],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            help="File (ffv1, h264) or new folder (png) to write; never overwritten.",
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
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Export a run's output (lossless video, PNG frames or a lossy H.264 copy) and journal it."""
    from forensic.case import open_case
    from forensic.export import export_run

    case = open_case(case_dir)
    signer = _signer(key_dir)
    payload = export_run(
        case, run, fmt=fmt, out=out_path, burn_in=burn_in, signer=signer, now=_now()
    )
    if as_json:
        _emit_json(payload)
        return
    out = _out()
    kind = "lossless" if payload["lossless"] else "LOSSY presentation copy"
    out.print(
        f"exported run {payload['run']} as {fmt} ({kind}, {payload['frames']} frame(s)) to "
        f"{out_path}",
        markup=False,
    )
    if "file" in payload:
        out.print(f"    sha256  {payload['file']['sha256']}", markup=False)
        out.print(f"    frames  Merkle root {payload['frame_hashes_root']}", markup=False)
    else:
        out.print(f"    listing {out_path / 'frames.json'}", markup=False)
    if payload.get("note"):
        out.print(f"note: {payload['note']}", markup=False)


def _print_output(out: Console, output: dict[str, Any], pmap: dict[str, Any]) -> None:
    if "merkle_root" in output:
        out.print(
            f"    output  {output['frames']} frames, Merkle root of their pixel hashes "
            f"{output['merkle_root']}",
            markup=False,
        )
        if "video" in output:
            out.print(f"    video   {output['video']['file']} (FFV1, lossless)", markup=False)
        if "video" in pmap:
            counts = ", ".join(f"{k} {v}" for k, v in pmap["counts"].items() if v)
            out.print(f"    provenance maps {pmap['video']['file']} ({counts})", markup=False)
        return
    out.print(f"    output  {output['file']}", markup=False)
    out.print(f"    sha256  {output['sha256']}", markup=False)
    out.print(
        f"    pixels  {output['pixel_hash_algorithm']} {output['pixel_sha256']}", markup=False
    )
    counts = ", ".join(f"{k} {v}" for k, v in pmap["counts"].items() if v)
    out.print(f"    provenance map {pmap['file']} ({counts})", markup=False)


@app.command("recipes")
def recipes_cmd(as_json: JsonFlag = False) -> None:
    """List the recipes shipped with forensic (usable by name with enhance --recipe)."""
    from forensic.recipe import bundled_recipes, load_recipe

    items = []
    for name, path in bundled_recipes().items():
        r = load_recipe(path)
        items.append(
            {
                "name": name,
                "description": r.description,
                "steps": [s.op_name for s in r.steps],
                "path": str(path),
            }
        )
    if as_json:
        _emit_json(items)
        return
    out = _out()
    for item in items:
        out.print(f"{item['name']}: {item['description']}", markup=False)
        out.print(f"    steps: {' -> '.join(item['steps'])}", markup=False)
        out.print(f"    file:  {item['path']}", markup=False)


# -- pki ------------------------------------------------------------------------------------


@pki_app.command("init")
def pki_init(
    lab: Annotated[str, typer.Option("--lab", help="Laboratory name for the certificates.")],
    key_dir: KeyDir = None,
) -> None:
    """Create a local lab CA and the examiner's report-signing certificate (key folder)."""
    from forensic.keys import resolve_key_dir
    from forensic.pki import CA_CERT, SIGNING_CERT, init_pki

    folder = resolve_key_dir(key_dir)
    signer = _signer(key_dir)
    made = init_pki(folder, signer, passphrase=_passphrase(), lab=lab, now=_now())
    out = _out()
    out.print(f"Lab CA certificate      {folder / CA_CERT}", markup=False)
    out.print(f"Report-signing cert     {folder / SIGNING_CERT}", markup=False)
    out.print(f"    subject {made.certificate.subject.rfc4514_string()}", markup=False)
    out.print(f"    bound to journal key {signer.fingerprint}", markup=False)


@pki_app.command("bind")
def pki_bind(case_dir: CaseDir, key_dir: KeyDir = None) -> None:
    """Record in a case that the report-signing certificate belongs to this examiner."""
    from forensic.case import open_case
    from forensic.pki import bind

    case = open_case(case_dir)
    signer, report_signer = _report_signer(key_dir)
    bind(case, signer, report_signer, now=_now())
    _out().print(
        f"Bound {report_signer.certificate.subject.rfc4514_string()} to {signer.fingerprint} "
        f"in case {case.case_id}",
        markup=False,
    )


# -- report ---------------------------------------------------------------------------------


def _timestamper(url: str | None) -> Any:
    if not url:
        return None
    from pyhanko.sign.timestamps import HTTPTimeStamper

    return HTTPTimeStamper(url)


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
) -> None:
    """Build, sign and journal the chain-of-custody report of a case (the default command)."""
    from forensic.case import open_case
    from forensic.report import issue_report

    case = open_case(case_dir)
    signer, report_signer = _report_signer(key_dir)
    issued = issue_report(
        case,
        out=out,
        signer=signer,
        report_signer=report_signer,
        now=_now(),
        exhibits_wanted=exhibit,
        templates_dir=templates,
        timestamper=_timestamper(tsa_url),
        tsa_url=tsa_url,
    )
    console = _out()
    console.print(f"Report {issued.number} of case {case.case_id}: {issued.path}", markup=False)
    console.print(f"    sha256 {issued.sha256}, {issued.pages} pages", markup=False)
    console.print(f"    copy in the case: {issued.stored}; journal entry #{issued.entry.seq}",
                  markup=False)  # fmt: skip
    console.print(f"    check it: forensic verify {issued.path} --case {case_dir}", markup=False)


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
) -> None:
    """A second examiner's approval signature on a report that verifies against its case."""
    from forensic.case import open_case
    from forensic.report import approve_report

    case = open_case(case_dir)
    signer, report_signer = _report_signer(key_dir)
    issued = approve_report(
        case,
        report,
        out=out,
        signer=signer,
        report_signer=report_signer,
        now=_now(),
        templates_dir=templates,
        timestamper=_timestamper(tsa_url),
    )
    _out().print(
        f"Approved report {issued.number} of case {case.case_id}: {issued.path} "
        f"(sha256 {issued.sha256}; journal entry #{issued.entry.seq})",
        markup=False,
    )


# -- policy ---------------------------------------------------------------------------------


@policy_app.command("check")
def policy_check(
    policy_file: Annotated[Path, typer.Argument(help="The policy TOML file.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Validate a policy file: every table, key, lane, operation name and model hash."""
    from forensic.policy import load_policy

    policy = load_policy(policy_file)
    if as_json:
        _emit_json(
            {
                "ok": True,
                "name": policy.name,
                "sha256": policy.sha256,
                "default_profile": policy.default_profile,
                "profiles": {n: p.as_dict() for n, p in policy.profiles.items()},
            }
        )
        return
    out = _out()
    out.print(f"{policy_file}: OK, policy {policy.name!r}, sha256 {policy.sha256}", markup=False)
    for pname, prof in policy.profiles.items():
        default = " (default)" if pname == policy.default_profile else ""
        allowed = ", ".join(prof.lanes) or "no lane"
        out.print(f"  profile {pname}{default}: lanes {allowed}", markup=False)


# -- ops ------------------------------------------------------------------------------------


@ops_app.command("list")
def ops_list(
    category: Annotated[
        str | None, typer.Option("--category", help="Only this category (e.g. denoise).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the classical operations by category."""
    from forensic.classical import registry

    ops = [op for op in registry(include_temporal=True).values() if category in (None, op.category)]
    if not ops:
        known = sorted({op.category for op in registry(include_temporal=True).values()})
        raise InputError(
            f"--category {category}: no such category", hint=f"categories: {', '.join(known)}"
        )
    if as_json:
        _emit_json([op.as_dict() for op in ops])
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_lines=False)
    for column in ("operation", "category", "class", "effect"):
        table.add_column(column, no_wrap=True)
    table.add_column("what it does", overflow="fold", min_width=24)
    for op in sorted(ops, key=lambda o: (o.category, o.name)):
        table.add_row(op.name, op.category, op.swgit_class, op.effect, escape(op.summary))
    out = _out()
    out.print(table)
    out.print("`forensic ops show NAME` gives the description, parameters and references.")


@ops_app.command("show")
def ops_show(
    name: Annotated[str, typer.Argument(help="Operation name, e.g. denoise_nl_means.")],
    as_json: JsonFlag = False,
) -> None:
    """Describe one operation: algorithm, parameters (types, units, ranges), references."""
    from forensic.classical import get

    op = get(name)
    if as_json:
        _emit_json(op.as_dict())
        return
    from rich.markup import escape
    from rich.table import Table

    out = _out()
    out.print(f"[bold]{op.name}[/bold] (version {op.version}): {escape(op.summary)}")
    out.print(
        f"lane {op.lane} | SWGIT class {op.swgit_class} | category {op.category} | "
        f"effect on provenance: {op.effect}"
    )
    out.print()
    out.print(op.description, markup=False)
    out.print()
    if op.params:
        table = Table(box=None, pad_edge=False, title_justify="left", title="Parameters")
        table.add_column("name", no_wrap=True)
        for column in ("default", "allowed", "meaning"):
            table.add_column(column, overflow="fold")
        for p in op.params:
            default = "required" if p.required else ("auto" if p.default is None else p.default)
            meaning = p.description + (f" Auto: {p.auto}." if p.auto else "")
            table.add_row(*(escape(c) for c in (p.name, _plain(default), p.allowed(), meaning)))
        out.print(table)
        out.print()
    out.print(f"Output: {op.output_dtype}", markup=False)
    out.print(f"Determinism: {op.determinism}", markup=False)
    out.print()
    out.print("References:")
    for ref in op.references:
        doi = f" https://doi.org/{ref.doi}" if ref.doi else ""
        note = f" ({ref.note})" if ref.note else ""
        out.print(f"  - {ref.citation}{doi}{note}", markup=False)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


# -- error boundary ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code. The one place errors become messages."""
    global _debug
    _debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        # Standalone mode: typer prints usage errors itself and exits through SystemExit.
        app(args=None if argv is None else list(argv), prog_name="forensic", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ForensicError as exc:
        if _debug:
            raise
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("aborted\n")
        return 130
    except Exception as exc:
        if _debug:
            raise
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  This is a bug in forensic; rerun with --debug for the traceback and report it.\n"
        )
        return 70
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()

"""The typer application: command groups, shared options, the passphrase prompt, ``--debug``.

Commands register on these apps in `forensic.cli.commands` and `forensic.cli.commands_reports`.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from forensic import __version__
from forensic.errors import KeyFileError

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
run_app = typer.Typer(help="Manage recorded runs (mark one superseded).", no_args_is_help=True)
app.add_typer(run_app, name="run")


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


class _Options:
    """Global options `main` reads back: ``--debug`` (show tracebacks)."""

    debug = False


options = _Options()

KeyDir = Annotated[
    Path | None,
    typer.Option(
        "--key-dir",
        envvar="FORENSIC_KEY_DIR",
        help="Folder holding the examiner key (default: ~/.config/forensic/keys).",
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
        help="Report templates folder, a copy of reports/ (default: the project's reports/).",
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


def ask_passphrase(*, confirm: bool = False) -> str:
    """The examiner's passphrase: ``FORENSIC_PASSPHRASE``, else a prompt on a terminal.

    Passed to `forensic.api` as a callable, so it is asked at most once per command, and only
    when a key is actually unlocked or created."""
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


def ask_new_passphrase() -> str:
    """A passphrase for a new key (asked twice on a terminal)."""
    return ask_passphrase(confirm=True)


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
    options.debug = debug


model_app = typer.Typer(
    help="Examiners' model files (ONNX) for the generative lane: approve one by hash and manifest.",
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")

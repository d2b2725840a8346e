"""Command line: thin typer commands over `forensic.api`; one error boundary in `main`.

* `forensic.cli.app` -- the typer apps, shared options, the passphrase prompt;
* `forensic.cli.commands` -- keys, cases, evidence, runs, verification;
* `forensic.cli.commands_reports` -- reports, the lab PKI, policy and operations;
* `forensic.cli.render` -- everything printed, as text or ``--json``.

Commands call only the application API (`forensic.api`). The clock is read in the commands
and only there (``datetime.now(UTC)``), then passed down as ``now``.

Under ``--json`` every outcome is one JSON document on standard output: the command's result
on success, and on failure the error object of `error_document` (docs/cli-json.md), whatever
failed -- a usage mistake, a `ForensicError`, an interrupt or a bug.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

from forensic.cli import (  # noqa: F401  (they register the commands)
    commands,
    commands_batch,
    commands_bundle,
    commands_reports,
)
from forensic.cli.app import app, options
from forensic.cli.render import emit_json
from forensic.errors import ForensicError

__all__ = ["app", "error_document", "main", "run"]

#: Exit codes that are not a `ForensicError`'s own.
USAGE_EXIT, INTERRUPTED_EXIT, INTERNAL_EXIT = 2, 130, 70


def error_document(
    kind: str, message: str, exit_code: int, hint: str | None = None
) -> dict[str, Any]:
    """The one shape of a failure under ``--json`` (docs/cli-json.md)."""
    return {
        "ok": False,
        "error": {"kind": kind, "message": message, "hint": hint, "exit_code": exit_code},
    }


def _flags(argv: Sequence[str]) -> set[str]:
    """The global flags main needs before typer parses: ``--debug`` and ``--json`` (options
    after a bare ``--`` are arguments, not flags)."""
    before = list(argv)[: list(argv).index("--")] if "--" in argv else list(argv)
    return {a for a in before if a in ("--debug", "--json")}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code. The one place errors become messages."""
    args = list(sys.argv[1:] if argv is None else argv)
    flags = _flags(args)
    options.debug = "--debug" in flags
    as_json = "--json" in flags

    def fail(kind: str, message: str, code: int, hint: str | None = None, text: str = "") -> int:
        if as_json:
            emit_json(error_document(kind, message, code, hint))
        else:
            sys.stderr.write(text or f"error: {message}\n")
        return code

    try:
        if not as_json:
            # Standalone mode: typer prints usage errors itself and exits through SystemExit.
            app(args=args, prog_name="forensic", standalone_mode=True)
            return 0
        code = app(args=args, prog_name="forensic", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except typer.TyperException as exc:  # only under --json: usage errors
        return fail("UsageError", exc.format_message(), exc.exit_code)
    except typer.Abort:
        return fail("Interrupted", "aborted", INTERRUPTED_EXIT, text="aborted\n")
    except ForensicError as exc:
        if options.debug:
            raise
        return fail(type(exc).__name__, exc.message, exc.exit_code, exc.hint, f"error: {exc}\n")
    except KeyboardInterrupt:
        return fail("Interrupted", "aborted", INTERRUPTED_EXIT, text="aborted\n")
    except Exception as exc:
        if options.debug:
            raise
        return fail(
            "InternalError",
            f"{type(exc).__name__}: {exc}",
            INTERNAL_EXIT,
            "this is a bug in forensic; rerun with --debug for the traceback and report it",
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  This is a bug in forensic; rerun with --debug for the traceback and report it.\n",
        )


def run() -> None:
    sys.exit(main())

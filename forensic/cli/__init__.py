"""Command line: thin typer commands over `forensic.api`; one error boundary in `main`.

* `forensic.cli.app` -- the typer apps, shared options, the passphrase prompt;
* `forensic.cli.commands` -- keys, cases, evidence, runs, verification;
* `forensic.cli.commands_reports` -- reports, the lab PKI, policy and operations;
* `forensic.cli.render` -- everything printed, as text or ``--json``.

Commands call only the application API (`forensic.api`). The clock is read in the commands
and only there (``datetime.now(UTC)``), then passed down as ``now``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from forensic.cli import commands, commands_reports  # noqa: F401  (they register the commands)
from forensic.cli.app import app, options
from forensic.errors import ForensicError

__all__ = ["app", "main", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code. The one place errors become messages."""
    options.debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        # Standalone mode: typer prints usage errors itself and exits through SystemExit.
        app(args=None if argv is None else list(argv), prog_name="forensic", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ForensicError as exc:
        if options.debug:
            raise
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("aborted\n")
        return 130
    except Exception as exc:
        if options.debug:
            raise
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  This is a bug in forensic; rerun with --debug for the traceback and report it.\n"
        )
        return 70
    return 0


def run() -> None:
    sys.exit(main())

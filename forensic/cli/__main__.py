"""`python -m forensic.cli`: the same as the `forensic` command."""

from forensic.cli import run

run()

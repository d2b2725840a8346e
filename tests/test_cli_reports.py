"""`forensic case show` lists the reports a case has issued (text and --json)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., tuple[int, str, str]]


def test_case_show_lists_an_issued_report(
    run_cli: Run, tmp_path: Path, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key folder of its own: `pki init` adds the lab CA to it, which the session key must not get.
    monkeypatch.setenv("FORENSIC_KEY_DIR", str(tmp_path / "keys"))
    case = tmp_path / "case"
    pdf = tmp_path / "out" / "report-C-1.pdf"
    pdf.parent.mkdir()
    for argv in (
        ("keys", "init", "--name", "Report Examiner"),
        ("pki", "init", "--lab", "Test Lab"),
        ("case", "init", case, "--case-id", "C-1", "--title", "Reports"),
        ("ingest", case, media / "camera_noisy.png"),
    ):
        code, _, err = run_cli(*argv)
        assert code == 0, (argv, err)

    code, out, _ = run_cli("case", "show", case)
    assert code == 0
    assert "No reports yet." in out
    code, out, _ = run_cli("case", "show", case, "--json")
    assert json.loads(out)["reports"] == []

    for argv in (("pki", "bind", case), ("report", case, "--out", pdf)):
        code, _, err = run_cli(*argv)
        assert code == 0, (argv, err)
    sha256 = hashlib.sha256(pdf.read_bytes()).hexdigest()

    code, out, err = run_cli("case", "show", case, "--json")
    assert code == 0, err
    (listed,) = json.loads(out)["reports"]
    assert listed["kind"] == "report.generated"
    assert listed["number"] == 1
    assert listed["file"] == pdf.name
    assert listed["sha256"] == sha256
    assert (case / listed["stored"]).read_bytes() == pdf.read_bytes()

    code, out, err = run_cli("case", "show", case)
    assert code == 0, err
    assert "No reports yet." not in out
    (line,) = [x for x in out.splitlines() if x.startswith("Report ")]
    assert "Report 1 generated" in line
    assert pdf.name in line
    assert sha256 in line
    assert listed["time"] in line

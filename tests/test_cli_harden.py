"""Bad input an examiner can give the CLI, found by a sweep of every command (harden): each
gives a clear error naming the bad thing and a non-zero exit, never an internal error (70)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from forensic.case import Case

Run = Callable[..., tuple[int, str, str]]


def _png(path: Path, shape: tuple[int, ...] = (48, 64, 3)) -> Path:
    pixels = np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
    return path


def test_a_case_whose_lock_cannot_be_opened_is_refused_not_a_crash(
    run_cli: Run, case: Case, tmp_path: Path
) -> None:
    # As on a read-only file system: the lock file cannot be opened for writing (a folder
    # in its place fails the same way for root, whom permissions do not stop).
    lock = case.root / ".lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()
    journal = (case.root / "journal.jsonl").read_bytes()
    code, _, err = run_cli("ingest", case.root, _png(tmp_path / "still.png"))
    assert code == 2, err
    assert "cannot be written" in err
    assert ".lock" in err
    assert (case.root / "journal.jsonl").read_bytes() == journal


def _lab_case(run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A case with a key folder of its own, a lab PKI, one still (E1) and one run on it (R1)."""
    monkeypatch.setenv("FORENSIC_KEY_DIR", str(tmp_path / "keys"))
    case = tmp_path / "case"
    recipe = tmp_path / "levels.toml"
    recipe.write_text('[recipe]\nname = "lift"\n\n[[steps]]\nop = "levels"\ngamma = 1.2\n')
    for argv in (
        ("keys", "init", "--name", "Harden Examiner"),
        ("pki", "init", "--lab", "Test Lab"),
        ("case", "init", case, "--case-id", "H-1", "--title", "Harden"),
        ("ingest", case, _png(tmp_path / "still.png")),
        ("enhance", case, "E1", "--recipe", recipe),
    ):
        code, _, err = run_cli(*argv)
        assert code == 0, (argv, err)
    return case


class _ReadOnlyFolder:
    """`tempfile` as a folder on a read-only file system answers it."""

    @staticmethod
    def mkdtemp(*_args: object, **_kwargs: object) -> str:
        raise OSError(errno.EROFS, "Read-only file system")

    mkstemp = mkdtemp


def test_outputs_into_a_folder_that_cannot_be_written_are_refused_naming_it(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensic.bundle
    import forensic.export
    import forensic.report.issue

    case = _lab_case(run_cli, tmp_path, monkeypatch)
    assert run_cli("pki", "bind", case)[0] == 0
    journal = (case / "journal.jsonl").read_bytes()
    out = tmp_path / "read-only"
    for module in (forensic.export, forensic.report.issue, forensic.bundle):
        monkeypatch.setattr(module, "tempfile", _ReadOnlyFolder)
    for argv in (
        ("export", case, "R1", "--format", "png", "--out", out / "R1"),
        ("report", case, "--out", out / "report.pdf"),
        ("bundle", case, out / "bundle.tar"),
    ):
        code, _, err = run_cli(*argv)
        assert code == 2, (argv, err)
        assert f"cannot write in {out} (Read-only file system)" in err, argv
    assert (case / "journal.jsonl").read_bytes() == journal


def test_key_folders_that_cannot_be_written_are_refused_naming_them(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensic.fsutil

    a_file = _png(tmp_path / "still.png")
    code, _, err = run_cli("keys", "init", "--name", "X", "--key-dir", a_file)
    assert code == 2, err
    assert f"--key-dir {a_file} is a file, not a folder" in err
    code, _, err = run_cli("keys", "init", "--name", "X", "--key-dir", a_file / "keys")
    assert code == 2, err
    assert f"cannot write in {a_file}" in err

    keys = tmp_path / "keys"
    assert run_cli("keys", "init", "--name", "X", "--key-dir", keys)[0] == 0
    monkeypatch.setattr(forensic.fsutil, "tempfile", _ReadOnlyFolder)
    code, _, err = run_cli("pki", "init", "--lab", "Lab", "--key-dir", keys)
    assert code == 2, err
    assert f"cannot write in {keys} (Read-only file system)" in err
    assert sorted(p.name for p in keys.iterdir()) == ["examiner.key", "examiner.pub.pem"]


def test_a_report_after_binding_the_certificate_twice_verifies(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `pki bind` run twice (an examiner unsure it worked) journals two bindings of the same
    # certificate; the report used to attach it twice, and `verify` refused its own report.
    case = _lab_case(run_cli, tmp_path, monkeypatch)
    for _ in range(2):
        assert run_cli("pki", "bind", case)[0] == 0
    pdf = tmp_path / "report.pdf"
    code, _, err = run_cli("report", case, "--out", pdf)
    assert code == 0, err
    code, out, err = run_cli("verify", pdf, "--case", case)
    assert code == 0, err + out
    assert "occurs twice" not in err + out


def test_burn_in_on_a_still_is_refused_not_journaled_as_burnt_in(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A still has no frame number or timecode: nothing was drawn, yet the export entry said
    # burn_in = true and evidence_copy = false.
    case = _lab_case(run_cli, tmp_path, monkeypatch)
    journal = (case / "journal.jsonl").read_bytes()
    out = tmp_path / "R1-png"
    code, _, err = run_cli("export", case, "R1", "--format", "png", "--burn-in", "--out", out)
    assert code == 2, err
    assert "--burn-in" in err
    assert "still" in err
    assert not out.exists()
    assert (case / "journal.jsonl").read_bytes() == journal


def test_a_polygon_beyond_32_bit_coordinates_is_refused_not_wrapped(
    run_cli: Run, case: Case, tmp_path: Path
) -> None:
    # polygon(0,0, 3e9,0, 0,3e9) covers the whole image, but cast to OpenCV's 32-bit points
    # it wrapped round and marked one pixel.
    assert run_cli("ingest", case.root, _png(tmp_path / "still.png"))[0] == 0
    recipe = tmp_path / "mask.toml"
    recipe.write_text(
        '[recipe]\nname = "mask"\n\n[[steps]]\nop = "detect_defects"\n'
        'add = "polygon(0, 0, 3e9, 0, 0, 3e9)"\n'
    )
    code, _, err = run_cli("enhance", case.root, "E1", "--recipe", recipe)
    assert code == 2, err
    assert "parameter 'add' region 1: polygon coordinates must lie within" in err


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("notes.txt", "is text, not a supported image or video"),
        ("notes.png", "it is not a PNG, JPEG, TIFF or BMP image (by its first bytes"),
    ],
)
def test_a_text_file_given_as_evidence_is_named_as_not_an_image_or_video(
    run_cli: Run, case: Case, tmp_path: Path, name: str, said: str
) -> None:
    # FFmpeg reads a .txt as ANSI art (the error then blamed a 'pal8' pixel format and asked
    # for the file to be reported); a .png that is text failed with "no video frame".
    text = tmp_path / name
    text.write_text("".join(f"line {i} of a log file, not a picture\n" for i in range(400)))
    code, _, err = run_cli("ingest", case.root, text)
    assert code == 2, err
    assert f"{text}: " in err
    assert said in err
    assert "pal8" not in err


def test_a_revocation_effective_before_year_1000_keeps_the_case_readable(
    run_cli: Run, case: Case, tmp_path: Path
) -> None:
    # strftime wrote year 1 as "1-01-01T05:00:00.000000Z": the signed key.revoke entry broke
    # every later command on the case and its verification ("not a UTC time").
    code, _, err = run_cli(
        "case", "revoke-key", case.root, case.entries()[0].actor[:16],
        "--reason", "compromised before the case", "--effective", "0001-01-01T00:00:00-05:00",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli("ingest", case.root, _png(tmp_path / "still.png"))
    assert code == 2, err
    assert "is revoked in case" in err  # the revocation is read, not refused as malformed
    assert "not a UTC time" not in err
    code, _, err = run_cli(
        "case", "revoke-key", case.root, case.entries()[0].actor[:16],
        "--reason", "r", "--effective", "0001-01-01T00:00:00+05:00",
    )  # fmt: skip
    assert code == 2, err
    assert "--effective '0001-01-01T00:00:00+05:00' is out of range" in err


def test_utc_timestamp_pads_the_year_to_four_digits() -> None:
    from datetime import UTC, datetime

    from forensic.timeutil import utc_timestamp

    assert utc_timestamp(datetime(1, 1, 1, 5, tzinfo=UTC)) == "0001-01-01T05:00:00.000000Z"
    assert utc_timestamp(datetime(2026, 11, 24, 7, 30, tzinfo=UTC)) == (
        "2026-11-24T07:30:00.000000Z"
    )


def test_run_names_and_reasons_a_report_cannot_print_are_refused(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 10,000-character run name or supersede reason was signed into the journal; every
    # report of the case then failed with reportlab's LayoutError (exit 70), for good.
    case = _lab_case(run_cli, tmp_path, monkeypatch)
    journal = (case / "journal.jsonl").read_bytes()
    recipe = tmp_path / "levels.toml"
    long = "a" * 10_000
    code, _, err = run_cli("enhance", case, "E1", "--recipe", recipe, "--again", "--name", long)
    assert code == 2, err
    assert "run name (--name) must be at most 200 characters" in err
    code, _, err = run_cli(
        "enhance", case, "E1", "--recipe", recipe, "--again", "--name", "a\x1b[2J"
    )
    assert code == 2, err
    assert "without control codes" in err
    code, _, err = run_cli("run", "supersede", case, "R1", "--reason", long)
    assert code == 2, err
    assert "--reason must be at most 2,000 characters" in err
    assert (case / "journal.jsonl").read_bytes() == journal
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"case,exhibit,recipe,name\ncase,E1,levels.toml,{long}\n")
    code, _, err = run_cli("batch", manifest, "--workers", "1")
    assert code == 2, err
    assert "line 2, field 'name': the run name (--name) must be at most 200" in err


def test_an_examiner_name_a_report_cannot_print_is_refused_at_enrolment(
    run_cli: Run, case: Case, tmp_path: Path, other_key_dir: Path
) -> None:
    # `keys init` limits a name to 200 printable characters; `case add-examiner --name` took
    # 10,000, and every later report of the case failed with LayoutError (exit 70).
    pem = tmp_path / "other.pub.pem"
    pem.write_bytes((other_key_dir / "examiner.pub.pem").read_bytes())
    journal = (case.root / "journal.jsonl").read_bytes()
    for name in ("a" * 10_000, "Second\x1b[2J Examiner"):
        code, _, err = run_cli(
            "case", "add-examiner", case.root, "--public-key", pem, "--name", name
        )
        assert code == 2, err
        assert "--name must be 1 to 200 printable characters" in err
    assert (case.root / "journal.jsonl").read_bytes() == journal

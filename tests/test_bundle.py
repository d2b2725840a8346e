"""Evidence bundles (docs/spec.md §12): a BagIt bag of a case, its outputs, provenance maps,
signed report, certificates and timestamp token, that `forensic verify` checks offline. A copy
in a fresh folder verifies; removing or changing any file in it fails with the file named; an
extra file is reported."""

from __future__ import annotations

import fnmatch
import json
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from forensic.bundle import Bundled, verify_bundle, write_bundle
from forensic.case import Case, init_case
from forensic.errors import InputError, VerificationError
from forensic.ingest import ingest
from forensic.keys import Signer, public_pem
from forensic.pipeline.run import run_recipe
from forensic.pki import ReportSigner, bind, init_pki
from forensic.policy import default_policy_path
from forensic.recipe import parse_recipe
from forensic.report import issue_report
from forensic.tsa import stamp_checkpoint
from tests.conftest import NOW, PASSPHRASE, Run
from tests.tsa_helpers import loopback_tsa, make_tsa_pki, policy_with_tsa

LEVELS = b"""
[recipe]
name = "lift"
[[steps]]
op = "levels"
gamma = 1.2
"""


@dataclass
class Made:
    case: Case
    bundle: Path
    bundled: Bundled


@pytest.fixture(scope="module")
def report_signer(tmp_path_factory: pytest.TempPathFactory, key_dir: Path) -> ReportSigner:
    folder = tmp_path_factory.mktemp("bundle-pki") / "keys"
    shutil.copytree(key_dir, folder)
    from forensic.keys import unlock

    return init_pki(folder, unlock(folder, PASSPHRASE), passphrase=PASSPHRASE, lab="Lab", now=NOW)


@pytest.fixture(scope="module")
def made(
    tmp_path_factory: pytest.TempPathFactory,
    media: Path,
    signer: Signer,
    report_signer: ReportSigner,
) -> Iterator[Made]:
    """A case with an exhibit, a classical run, a signed report and a timestamp token over
    its last checkpoint, bundled as a folder."""
    root = tmp_path_factory.mktemp("bundle")
    pki = make_tsa_pki("Bundle")
    with loopback_tsa(pki) as url:
        policy = root / "policy.toml"
        base = default_policy_path().read_text("utf-8")
        policy.write_text(policy_with_tsa(base, url, pki.root_pem, required=True), "utf-8")
        case = init_case(
            root / "case", case_id="B-1", title="T", policy_path=policy, signer=signer, now=NOW
        )
        ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
        run_recipe(case, "E1", parse_recipe(LEVELS, where="l.toml"), signer=signer, now=NOW)
        bind(case, signer, report_signer, now=NOW)
        issue_report(case, out=root / "r.pdf", signer=signer, report_signer=report_signer, now=NOW)
        out = root / "bundle"
        bundled = write_bundle(case, out, now=NOW, stamp=lambda c: stamp_checkpoint(c).as_dict())
        yield Made(case, out, bundled)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _fresh_copy(made: Made, dest: Path) -> Path:
    copy = dest / "moved" / "evidence-bundle"
    shutil.copytree(made.bundle, copy)
    return copy


def test_a_bundle_copied_to_a_fresh_folder_verifies(made: Made, tmp_path: Path) -> None:
    copy = _fresh_copy(made, tmp_path)
    verdict = verify_bundle(copy)
    assert verdict.ok, verdict.failure
    assert [c.status for c in verdict.checks] == ["ok"] * 5
    assert verdict.case is not None
    assert verdict.case["ok"]
    assert len(verdict.case["timestamps"]) == 1
    assert verdict.checks[2].detail == "8 case checks passed"
    # The report's signatures verify and it is rebuilt from the bundled templates.
    (report,) = verdict.reports
    assert report["ok"]
    assert report["checks"][-1]["detail"].startswith("identical")
    assert made.bundled.timestamp is not None
    assert made.bundled.notes == []
    files = _files(copy)
    for expected in (
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha256.txt",
        "tagmanifest-sha256.txt",
        "data/case/journal.jsonl",
        "data/templates/lab.toml",
    ):
        assert expected in files
    assert any(fnmatch.fnmatch(f, "data/case/timestamps/*.tst") for f in files)
    assert any(fnmatch.fnmatch(f, "data/certificates/tsa-root-1.cert.pem") for f in files)
    # The evidence keeps its read-only mode.
    (evidence,) = (copy / "data/case/evidence").iterdir()
    assert evidence.stat().st_mode & 0o222 == 0


#: Every kind of file a bundle of this case holds (a test below checks none is left out).
ROLES = [
    "bagit.txt",
    "bag-info.txt",
    "manifest-sha256.txt",
    "tagmanifest-sha256.txt",
    "data/case/case.json",
    "data/case/policy.toml",
    "data/case/journal.jsonl",
    "data/case/journal.checkpoint",
    "data/case/evidence/*",
    "data/case/derived/*.png",
    "data/case/reports/*.pdf",
    "data/case/keys/*.pem",
    "data/case/timestamps/*.tst",
    "data/case/timestamps/*.checkpoint",
    "data/certificates/lab-ca-*",
    "data/certificates/report-signing-*",
    "data/certificates/tsa-root-*",
    "data/templates/lab.toml",
    "data/templates/fonts/*",
]


def _matching(made: Made, role: str) -> list[str]:
    return [f for f in _files(made.bundle) if fnmatch.fnmatch(f, role)]


def test_the_roles_cover_every_file_of_the_bundle(made: Made) -> None:
    files = _files(made.bundle)
    uncovered = [f for f in files if not any(fnmatch.fnmatch(f, r) for r in ROLES)]
    assert not uncovered
    assert all(_matching(made, r) for r in ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_removing_or_changing_any_file_fails_naming_it(
    made: Made, role: str, tmp_path: Path
) -> None:
    for n, rel in enumerate(_matching(made, role)):
        for change in ("remove", "flip"):
            copy = tmp_path / f"{n}-{change}"
            shutil.copytree(made.bundle, copy)
            path = copy / rel
            if change == "remove":
                path.unlink()
            else:
                data = bytearray(path.read_bytes())
                data[len(data) // 2] ^= 0x01
                path.chmod(0o644)
                path.write_bytes(bytes(data))
            verdict = verify_bundle(copy)
            assert not verdict.ok, f"{change} {rel} went unnoticed"
            assert verdict.failure is not None
            assert rel in verdict.failure, (change, rel, verdict.failure)
            shutil.rmtree(copy)


def test_an_extra_file_is_reported(made: Made, tmp_path: Path) -> None:
    copy = _fresh_copy(made, tmp_path)
    (copy / "data/case/derived/planted.png").write_bytes(b"x")
    verdict = verify_bundle(copy)
    assert verdict.failure == (
        "data/case/derived/planted.png is in the bundle but not in manifest-sha256.txt"
    )
    (copy / "data/case/derived/planted.png").unlink()
    (copy / "notes.txt").write_text("x")
    assert verify_bundle(copy).failure == (
        "notes.txt is in the bundle but is not part of a forensic bag"
    )


def test_the_archive_verifies_and_a_changed_byte_in_it_is_named(made: Made, tmp_path: Path) -> None:
    out = tmp_path / "case-B-1.tar"
    bundled = write_bundle(made.case, out, now=NOW)
    assert bundled.archive
    assert bundled.sha256 is not None
    verdict = verify_bundle(out)
    assert verdict.ok, verdict.failure
    # Extracted, the evidence is read-only as it was (no "writable" note from case check 6).
    assert not [n for c in verdict.checks for n in c.notes if "writable" in n]
    with tarfile.open(out) as tar:
        names = tar.getnames()
        journal = tar.getmember("case-B-1/data/case/journal.jsonl")
    assert names[0] == "case-B-1"
    assert all(n.startswith("case-B-1/") for n in names[1:])
    data = bytearray(out.read_bytes())
    data[journal.offset_data + 10] ^= 0x01
    out.write_bytes(bytes(data))
    assert verify_bundle(out).failure == (
        "data/case/journal.jsonl does not match its SHA-256 in manifest-sha256.txt"
    )


def test_originals_left_in_the_evidence_store(tmp_path: Path, media: Path, signer: Signer) -> None:
    policy = tmp_path / "policy.toml"
    base = default_policy_path().read_text("utf-8")
    policy.write_text(base + '\n[bundle]\noriginals = "hashes"\n', "utf-8")
    case = init_case(
        tmp_path / "case", case_id="B-2", title="T", policy_path=policy, signer=signer, now=NOW
    )
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    out = tmp_path / "bundle"
    bundled = write_bundle(case, out, now=NOW)
    assert bundled.originals == "hashes"
    assert not (out / "data/case/evidence").exists()
    listed = (out / "data/originals-sha256.txt").read_text()
    (item,) = [line.split() for line in listed.splitlines()]
    assert item[0] == (case.root / item[1]).name.split(".")[0]
    verdict = verify_bundle(out)
    assert verdict.ok, verdict.failure
    assert verdict.case is not None
    assert "1 kept in the evidence store" in verdict.case["checks"][5]["detail"]
    # The list must be the journal's.
    (out / "data/originals-sha256.txt").write_text(listed.replace(item[2], "E9"))
    assert "data/originals-sha256.txt" in str(verify_bundle(out).failure)


def test_a_case_that_does_not_verify_is_not_bundled(
    tmp_path: Path, media: Path, signer: Signer
) -> None:
    case = init_case(
        tmp_path / "case", case_id="B-3", title="T", policy_path=None, signer=signer, now=NOW
    )
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    (evidence,) = (case.root / "evidence").iterdir()
    evidence.chmod(0o644)
    evidence.write_bytes(b"altered")
    with pytest.raises(VerificationError, match="no bundle is made of a case that does not"):
        write_bundle(case, tmp_path / "bundle", now=NOW)
    assert not (tmp_path / "bundle").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["case"]  # no temporary folder left
    with pytest.raises(InputError, match="exists"):
        write_bundle(case, tmp_path / "case", now=NOW)


def test_cli_bundle_and_verify(
    made: Made, tmp_path: Path, run_cli: Run, other_signer: Signer
) -> None:
    out = tmp_path / "b.tar"
    code, stdout, err = run_cli("bundle", made.case.root, out, "--archive", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["archive"] is True
    assert result["bundle"] == str(out)
    code, stdout, _ = run_cli("verify", out)
    assert code == 0
    assert f"VERIFIED: {out}" in stdout
    # --trust pins the key the case was opened with: another key fails case check 2.
    other = tmp_path / "other.pem"
    other.write_text(public_pem(other_signer.public_key))
    code, stdout, err = run_cli("verify", out, "--trust", other)
    assert code == 1
    assert "case check 2" in err
    copy = _fresh_copy(made, tmp_path)
    (copy / "bagit.txt").unlink()
    code, stdout, err = run_cli("verify", copy)
    assert code == 1
    assert "bagit.txt is missing" in err
    code, stdout, _ = run_cli("verify", copy, "--json")
    assert code == 1
    assert json.loads(stdout)["ok"] is False


def test_the_library_of_congress_validator_accepts_the_bag(made: Made, tmp_path: Path) -> None:
    """bagit-python (the reference implementation's validator) agrees: the bag is valid, and
    invalid once a payload file is removed."""
    import bagit

    copy = _fresh_copy(made, tmp_path)
    bag = bagit.Bag(str(copy))
    bag.validate()
    assert bag.info["External-Identifier"] == "B-1"
    (report,) = (copy / "data/case/reports").iterdir()
    report.unlink()
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(copy)).validate()


def _relist(bag: Path, manifest_text: str) -> None:
    """Replace the payload manifest and re-hash the tag manifest (a consistent forgery)."""
    import hashlib

    (bag / "manifest-sha256.txt").write_text(manifest_text)
    lines = [
        f"{hashlib.sha256((bag / n).read_bytes()).hexdigest()}  {n}\n"
        for n in ("bag-info.txt", "bagit.txt", "manifest-sha256.txt")
    ]
    (bag / "tagmanifest-sha256.txt").write_text("".join(lines))


def test_hostile_bundles_fail_with_a_sentence(made: Made, tmp_path: Path) -> None:
    """Links, FIFOs, paths out of the bag and archives that escape are refused, never
    followed, read or extracted."""
    import os

    copy = _fresh_copy(made, tmp_path)
    (copy / "data/case/keys/link.pem").symlink_to("/etc/passwd")
    assert verify_bundle(copy).failure == (
        "data/case/keys/link.pem is a symbolic link, which a bundle never holds"
    )
    (copy / "data/case/keys/link.pem").unlink()
    listed = (copy / "manifest-sha256.txt").read_text()
    os.mkfifo(copy / "data/fifo")
    _relist(copy, listed + f"{'0' * 64}  data/fifo\n")
    assert str(verify_bundle(copy).failure).startswith("data/fifo cannot be read")
    (copy / "data/fifo").unlink()
    _relist(copy, listed + f"{'0' * 64}  data/../../etc/passwd\n")
    line = len(listed.splitlines()) + 1
    assert verify_bundle(copy).failure == (
        f"manifest-sha256.txt line {line} names a path outside the bag: 'data/../../etc/passwd'"
    )
    # An archive whose member is a link out of the folder is not extracted.
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("bag/data/x")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    verdict = verify_bundle(evil)
    assert not verdict.ok
    assert str(verdict.failure).startswith(f"{evil}: not a readable tar archive")

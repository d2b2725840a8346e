"""The signed PDF report: third-party validation, attachments, text, labels, rendering,
reproducibility, and the refusals (unverified case, unbound certificate, missing co-signature,
overwrite)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pypdf
import pytest

from forensic.case import Case, enrol_examiner, init_case
from forensic.cosign import cosign
from forensic.errors import InputError, KeyFileError, PolicyError, VerificationError
from forensic.ingest import ingest
from forensic.journal import read_entries
from forensic.keys import Signer, create_key, public_pem, unlock
from forensic.pipeline.run import run_recipe
from forensic.pki import ReportSigner, bind, init_pki
from forensic.recipe import parse_recipe
from forensic.records import StepRecord
from forensic.report import approve_report, issue_report, verify_report
from forensic.report.pdf import check_signatures, sign_with_attachments
from forensic.verify import verify_case
from tests.conftest import NOW, PASSPHRASE
from tests.pdfa import pdfa3b_problems

LABEL = "INFERRED - NOT FOR IDENTIFICATION"
UNICODE_NAME = "Zoë Ångström-Øre"

CLASSICAL = b"""
[recipe]
name = "still"
[[steps]]
op = "denoise_nl_means"
[[steps]]
op = "unsharp_mask"
roi = [100, 100, 64, 48]
"""
VIDEO = b"""
[recipe]
name = "clip"
[[steps]]
op = "levels"
gamma = 1.2
frames = [3, 5]
"""
INPAINT = b"""
[recipe]
name = "fill"
[[steps]]
op = "generative.inpaint_telea"
x = 200
y = 200
width = 40
height = 40
"""


def tool(name: str) -> str:
    """poppler's command-line tools: required in CI (make system-deps installs them)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("FORENSIC_REQUIRE_FFMPEG") == "1":
            pytest.fail(f"{name} is required here but not installed (poppler-utils)")
        pytest.skip(f"{name} is not installed (make system-deps installs poppler-utils)")
    return path


@dataclass
class Examiner:
    key_dir: Path
    signer: Signer
    report_signer: ReportSigner


def _examiner(folder: Path, name: str) -> Examiner:
    create_key(folder, name=name, passphrase=PASSPHRASE, now=NOW)
    signer = unlock(folder, PASSPHRASE)
    made = init_pki(folder, signer, passphrase=PASSPHRASE, lab="Test Lab", now=NOW)
    return Examiner(folder, signer, made)


@pytest.fixture(scope="module")
def examiners(tmp_path_factory: pytest.TempPathFactory) -> tuple[Examiner, Examiner]:
    root = tmp_path_factory.mktemp("report-keys")
    return _examiner(root / "a", UNICODE_NAME), _examiner(root / "b", "Second Examiner")


def _recipe(case: Case, signer: Signer, source: str, text: bytes) -> None:
    run_recipe(case, source, parse_recipe(text, where="t.toml"), signer=signer, now=NOW)


@dataclass
class Issued:
    case: Case
    pdf: Path
    journal_at_issue: bytes
    examiner: Examiner


@pytest.fixture(scope="module")
def evidence_report(
    tmp_path_factory: pytest.TempPathFactory, media: Path, examiners: tuple[Examiner, Examiner]
) -> Issued:
    """An evidence-profile case: a still with a classical run (with a region) and a clip."""
    a, _ = examiners
    root = tmp_path_factory.mktemp("evidence-report")
    case = init_case(
        root / "case",
        case_id="R-001",
        title="Report test: Ünïcode title",
        policy_path=None,
        signer=a.signer,
        now=NOW,
    )
    ingest(case, [media / "camera_noisy.png", media / "cctv.mp4"], signer=a.signer, now=NOW)
    _recipe(case, a.signer, "E1", CLASSICAL)
    _recipe(case, a.signer, "E2", VIDEO)
    bind(case, a.signer, a.report_signer, now=NOW)
    journal = (case.root / "journal.jsonl").read_bytes()
    out = root / "report.pdf"
    issue_report(case, out=out, signer=a.signer, report_signer=a.report_signer, now=NOW)
    return Issued(case, out, journal, a)


@pytest.fixture(scope="module")
def inferred_report(
    tmp_path_factory: pytest.TempPathFactory, media: Path, examiners: tuple[Examiner, Examiner]
) -> Issued:
    """An investigative case: a classical run, then an inpainting run co-signed by a second
    examiner (the investigative profile requires it)."""
    a, b = examiners
    root = tmp_path_factory.mktemp("inferred-report")
    case = init_case(
        root / "case",
        case_id="R-002",
        title="Leads",
        policy_path=None,
        signer=a.signer,
        now=NOW,
        profile="investigative",
    )
    ingest(case, [media / "camera_clean.png"], signer=a.signer, now=NOW)
    _recipe(case, a.signer, "E1", CLASSICAL)
    _recipe(case, a.signer, "E1", INPAINT)
    bind(case, a.signer, a.report_signer, now=NOW)
    enrol_examiner(
        case, public_pem(b.signer.public_key), name=b.signer.name, signer=a.signer, now=NOW
    )
    out = root / "report.pdf"
    with pytest.raises(PolicyError, match=r"R2 step 1 \(generative.inpaint_telea\)"):
        issue_report(case, out=out, signer=a.signer, report_signer=a.report_signer, now=NOW)
    assert not out.exists()
    cosign(case, "R2.1", signer=b.signer, now=NOW)
    journal = (case.root / "journal.jsonl").read_bytes()
    issue_report(case, out=out, signer=a.signer, report_signer=a.report_signer, now=NOW)
    return Issued(case, out, journal, a)


def _text(pdf: Path, page: int | None = None) -> str:
    args = [tool("pdftotext"), "-layout"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    done = subprocess.run([*args, str(pdf), "-"], capture_output=True, check=True, text=True)
    return done.stdout


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


# -- signatures ------------------------------------------------------------------------------


def test_pyhanko_validates_the_signature_and_a_flipped_byte_breaks_it(
    evidence_report: Issued, tmp_path: Path
) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from forensic.report.pdf import asn1_cert as _asn1_cert

    data = evidence_report.pdf.read_bytes()
    ca = _asn1_cert(evidence_report.examiner.report_signer.ca_certificate)
    context = ValidationContext(trust_roots=[ca])
    (sig,) = PdfFileReader(io.BytesIO(data)).embedded_signatures
    status = validate_pdf_signature(sig, signer_validation_context=context)
    assert status.intact
    assert status.valid
    assert status.trusted
    assert status.coverage is not None
    assert status.coverage.name == "ENTIRE_FILE"
    assert status.md_algorithm == "sha256"
    # One byte inside the report's content (the first revision), well inside a stream.
    bad = _flip(data, len(data) // 3)
    (sig,) = PdfFileReader(io.BytesIO(bad), strict=False).embedded_signatures
    assert not validate_pdf_signature(sig, signer_validation_context=context).intact
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bad)
    verdict = verify_report(tampered)
    assert not verdict.ok
    assert "changed after it was signed" in str(verdict.failure)


def test_pdfsig_says_valid_and_a_flipped_byte_makes_it_fail(
    evidence_report: Issued, tmp_path: Path
) -> None:
    pdfsig = tool("pdfsig")
    done = subprocess.run([pdfsig, str(evidence_report.pdf)], capture_output=True, text=True)
    assert "Signature Validation: Signature is Valid." in done.stdout, done.stdout
    assert "Total document signed" in done.stdout
    data = evidence_report.pdf.read_bytes()
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(_flip(data, len(data) // 3))
    done = subprocess.run([pdfsig, str(bad)], capture_output=True, text=True)
    assert "Signature is Valid." not in done.stdout, done.stdout


def test_flipped_bytes_anywhere_fail_with_a_sentence(
    evidence_report: Issued, tmp_path: Path
) -> None:
    """Issue 15: a damaged report never ends in an internal error (the tampering campaign found
    a zlib error in an attachment and a PdfReadError in a dictionary escaping as exit 70)."""
    import random

    data = evidence_report.pdf.read_bytes()
    embedded = data.index(b"/EmbeddedFile")
    targeted = [
        data.index(b"stream", embedded) + 40,  # inside an attachment's compressed data
        data.index(b"/EmbeddedFiles"),  # a dictionary key of the attachment tree
        data.rindex(b"/Names"),
    ]
    places = targeted + sorted(random.Random(15).sample(range(len(data)), 40))
    detected = 0
    for at in places:
        damaged = tmp_path / f"flip-{at}.pdf"
        damaged.write_bytes(_flip(data, at))
        detected += not verify_report(damaged).ok  # anything but a verdict is a test error
    # Only the zero padding of the signature's /Contents is outside what is signed and read.
    assert detected >= len(places) - 3, f"{len(places) - detected} flips went unnoticed"


def test_verify_checks_the_report_alone_and_against_its_case(evidence_report: Issued) -> None:
    alone = verify_report(evidence_report.pdf)
    assert alone.ok, alone.failure
    assert [c.number for c in alone.checks] == [1, 2, 3, 4]
    full = verify_report(evidence_report.pdf, case_dir=evidence_report.case.root)
    assert full.ok, full.failure
    assert full.checks[-1].detail.startswith("identical")
    assert verify_case(evidence_report.case.root).ok


def test_a_report_signed_with_an_unbound_certificate_fails(
    evidence_report: Issued, examiners: tuple[Examiner, Examiner], tmp_path: Path
) -> None:
    from forensic.report.pdf import attachments

    data = evidence_report.pdf.read_bytes()
    issued = next(
        e for e in read_entries(evidence_report.case.root) if e.kind == "report.generated"
    )
    unsigned = data[: issued.payload["unsigned"]["size"]]
    from forensic.report.model import Attachment

    items = [
        Attachment(n, d, "application/octet-stream", n)
        for n, d in attachments(data, where="x").items()
    ]
    _, b = examiners  # b's certificate is bound in no case of this report
    forged = sign_with_attachments(
        unsigned, items, b.report_signer, field="X", reason="r", location="l"
    )
    path = tmp_path / "forged.pdf"
    path.write_bytes(forged)
    verdict = verify_report(path)
    assert not verdict.ok
    assert "no journal entry binds" in str(verdict.failure)
    assert check_signatures(forged, trust_roots=[], where="x")[0].intact


# -- content -------------------------------------------------------------------------------


def test_attachments_extract_byte_identical_to_the_case_files(evidence_report: Issued) -> None:
    case = evidence_report.case
    reader = pypdf.PdfReader(evidence_report.pdf)
    files = {name: data[0] for name, data in reader.attachments.items()}
    assert files["journal.jsonl"] == evidence_report.journal_at_issue
    assert files["policy.toml"] == (case.root / "policy.toml").read_bytes()
    assert files["case.json"] == (case.root / "case.json").read_bytes()
    maps = [n for n in files if n.startswith("derived_")]
    assert len(maps) >= 2  # the still's provenance map and the clip's frame maps
    for name in maps:
        assert files[name] == (case.root / "derived" / name.removeprefix("derived_")).read_bytes()
    issued = next(e for e in read_entries(case.root) if e.kind == "report.generated")
    assert files["journal.checkpoint"].decode().rstrip("\n") == issued.payload["checkpoint"]
    fp = evidence_report.examiner.signer.fingerprint
    assert files[f"key-{fp}.pem"].decode() == public_pem(evidence_report.examiner.signer.public_key)
    frames = files["E2-frames.csv"].decode().splitlines()
    assert frames[0] == "index,pts,type,key,sha256"
    ingest_entry = next(e for e in read_entries(case.root) if e.payload.get("exhibit") == "E2")
    assert len(frames) - 1 == len(ingest_entry.payload["frames"])


def test_every_exhibit_hash_and_journal_entry_appears_in_the_text(evidence_report: Issued) -> None:
    text = _text(evidence_report.pdf)
    flat = re.sub(r"\s+", " ", text)
    entries = read_entries(evidence_report.case.root)
    covered = [e for e in entries if e.kind != "report.generated"]
    for e in covered:
        assert e.hash in text, f"entry {e.seq} ({e.kind})"
    for e in covered:
        if e.kind == "evidence.ingest":
            assert e.payload["sha256"] in text
            assert e.payload["pixel_hash"]["sha256"] in text
        if e.kind == "run.step":
            assert e.payload["op"] in text
            for record in (
                StepRecord(e.hash, e.actor, e.payload).applied(evidence_report.case.store)
                or [e.payload]
            )[:1]:
                assert record["output"]["pixel_sha256"] in text
            for ref in e.payload["algorithm"]["references"]:
                assert " ".join(ref["citation"].split()[:4]) in flat
    assert UNICODE_NAME in text  # embedded Unicode font
    assert "Ünïcode title" in text
    assert "page 1 of" in text
    assert "R-001" in text


def test_the_inferred_label_is_on_every_page_that_shows_inferred_content(
    inferred_report: Issued,
) -> None:
    pdfimages = tool("pdfimages")
    listing = subprocess.run(
        [pdfimages, "-list", str(inferred_report.pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    pages_with_images = sorted({int(line.split()[0]) for line in listing})
    inferred_pages, classical_pages = [], []
    section = None
    count = len(pypdf.PdfReader(inferred_report.pdf).pages)
    for page in range(1, count + 1):
        text = _text(inferred_report.pdf, page)
        if "Output R2:" in text:
            section = "inferred"
        elif "Output R1:" in text:
            section = "classical"
        elif "Chain of custody" in text:
            section = None
        if page in pages_with_images and section == "inferred":
            inferred_pages.append(page)
            assert text.count(LABEL) >= 2, f"page {page} shows inferred content without the label"
        if section == "classical":
            classical_pages.append(page)
            assert LABEL not in text
    assert len(inferred_pages) >= 2  # before/after, maps, provenance, presentation copy
    assert classical_pages
    flat = _text(inferred_report.pdf)
    assert "Contains inferred pixels" in flat
    assert "Evidence-grade" in flat
    assert "Second Examiner" in flat  # the co-signature is shown


def test_pages_render_with_pdftoppm(inferred_report: Issued, tmp_path: Path) -> None:
    done = subprocess.run(
        [tool("pdftoppm"), "-r", "30", "-png", str(inferred_report.pdf), str(tmp_path / "p")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert not done.stderr.strip(), done.stderr
    pages = len(pypdf.PdfReader(inferred_report.pdf).pages)
    rendered = sorted(tmp_path.glob("p-*.png"))
    assert len(rendered) == pages
    assert all(p.stat().st_size > 1000 for p in rendered)


# -- issuing rules ---------------------------------------------------------------------------


def test_reports_never_overwrite_and_are_numbered_and_kept(evidence_report: Issued) -> None:
    case, a = evidence_report.case, evidence_report.examiner
    before = evidence_report.pdf.read_bytes()
    with pytest.raises(InputError, match="never overwritten"):
        issue_report(
            case, out=evidence_report.pdf, signer=a.signer, report_signer=a.report_signer, now=NOW
        )
    assert evidence_report.pdf.read_bytes() == before
    second = evidence_report.pdf.with_name("second.pdf")
    made = issue_report(
        case,
        out=second,
        signer=a.signer,
        report_signer=a.report_signer,
        now=NOW,
        exhibits_wanted=["e1"],
    )
    assert made.number == 2
    reports = [e for e in read_entries(case.root) if e.kind == "report.generated"]
    assert [e.payload["number"] for e in reports] == [1, 2]
    assert reports[1].payload["exhibits"] == ["E1"]
    for e in reports:
        assert (case.root / e.payload["stored"]).read_bytes() in (before, second.read_bytes())
    verdict = verify_report(second, case_dir=case.root)
    assert verdict.ok, verdict.failure
    text = _text(second)
    assert "E2:" not in text
    assert "clip" not in text.split("Chain of custody")[0]
    assert verify_case(case.root).ok


def test_a_missing_case_copy_of_a_report_fails_verify(
    evidence_report: Issued, tmp_path: Path
) -> None:
    copy = tmp_path / "case"
    shutil.copytree(evidence_report.case.root, copy)
    issued = next(e for e in read_entries(copy) if e.kind == "report.generated")
    (copy / issued.payload["stored"]).unlink()
    verdict = verify_case(copy)
    assert not verdict.ok
    assert "copy of the report" in str(verdict.failure)


def test_a_case_that_does_not_verify_gets_no_report(
    evidence_report: Issued, tmp_path: Path
) -> None:
    copy = tmp_path / "case"
    shutil.copytree(evidence_report.case.root, copy)
    run_entry = next(e for e in read_entries(copy) if e.kind == "run")
    output = copy / run_entry.payload["output"]["file"]
    output.chmod(0o644)
    output.write_bytes(output.read_bytes() + b"x")
    from forensic.case import open_case

    a = evidence_report.examiner
    out = tmp_path / "r.pdf"
    with pytest.raises(VerificationError, match="does not verify"):
        issue_report(
            open_case(copy), out=out, signer=a.signer, report_signer=a.report_signer, now=NOW
        )
    assert not out.exists()


def test_an_unbound_certificate_is_refused_with_the_fix(
    case: Case, signer: Signer, media: Path, tmp_path: Path
) -> None:
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    made = init_pki(tmp_path, signer, passphrase=PASSPHRASE, lab="Lab", now=NOW)
    with pytest.raises(KeyFileError, match="not bound") as caught:
        issue_report(case, out=tmp_path / "r.pdf", signer=signer, report_signer=made, now=NOW)
    assert "forensic pki bind" in str(caught.value)


def test_the_report_is_rebuilt_identically_and_a_template_change_is_named(
    evidence_report: Issued, tmp_path: Path
) -> None:
    from forensic.report.templates import default_folder

    custom = tmp_path / "templates"
    shutil.copytree(default_folder(), custom)
    lab = custom / "lab.toml"
    lab.write_text(lab.read_text().replace("Example Forensic Imaging Laboratory", "Other Lab"))
    verdict = verify_report(
        evidence_report.pdf, case_dir=evidence_report.case.root, templates_dir=custom
    )
    assert verdict.ok
    assert any("not rebuilt: the report used templates" in n for n in verdict.checks[-1].notes)


def test_bad_templates_are_refused_naming_the_key(tmp_path: Path) -> None:
    from forensic.report.templates import default_folder, load_templates

    custom = tmp_path / "templates"
    shutil.copytree(default_folder(), custom)
    lab = custom / "lab.toml"
    lab.write_text(lab.read_text().replace("declaration =", "declarations ="))
    with pytest.raises(InputError, match=r"missing keys \['declaration'\]"):
        load_templates(custom)


def test_a_second_examiner_approves_and_both_signatures_validate(
    inferred_report: Issued, examiners: tuple[Examiner, Examiner], tmp_path: Path
) -> None:
    a, b = examiners
    case = inferred_report.case
    out = tmp_path / "approved.pdf"
    with pytest.raises(KeyFileError, match="not bound"):
        approve_report(
            case,
            inferred_report.pdf,
            out=out,
            signer=b.signer,
            report_signer=b.report_signer,
            now=NOW,
        )
    bind(case, b.signer, b.report_signer, now=NOW)
    with pytest.raises(InputError, match="second examiner"):
        approve_report(
            case,
            inferred_report.pdf,
            out=out,
            signer=a.signer,
            report_signer=a.report_signer,
            now=NOW,
        )
    approve_report(
        case, inferred_report.pdf, out=out, signer=b.signer, report_signer=b.report_signer, now=NOW
    )
    assert out.read_bytes().startswith(inferred_report.pdf.read_bytes())
    verdict = verify_report(out, case_dir=case.root)
    assert verdict.ok, verdict.failure
    assert len(verdict.signatures) == 2
    # Without the case, the approver's binding (made after the report) is unknown.
    alone = verify_report(out)
    assert not alone.ok
    assert "pass --case" in str(alone.failure)
    done = subprocess.run([tool("pdfsig"), str(out)], capture_output=True, text=True)
    assert done.stdout.count("Signature is Valid.") == 2, done.stdout
    assert any(e.kind == "report.approved" for e in read_entries(case.root))
    assert pdfa3b_problems(out.read_bytes()) == []  # the approval keeps PDF/A-3b


def test_cli_report_and_verify(
    run_cli: object, evidence_report: Issued, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forensic import cli

    monkeypatch.setenv("FORENSIC_KEY_DIR", str(evidence_report.examiner.key_dir))
    monkeypatch.setenv("FORENSIC_PASSPHRASE", PASSPHRASE)
    out = tmp_path / "cli.pdf"
    assert cli.main(["report", str(evidence_report.case.root), "--out", str(out)]) == 0
    assert cli.main(["verify", str(out), "--case", str(evidence_report.case.root)]) == 0
    assert cli.main(["report", str(evidence_report.case.root), "--out", str(out)]) == 2
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(_flip(out.read_bytes(), out.stat().st_size // 3))
    assert cli.main(["verify", str(bad)]) == 1
    assert (
        cli.main(
            [
                "report",
                str(evidence_report.case.root),
                "--out",
                str(tmp_path / "x.pdf"),
                "--exhibit",
                "E9",
            ]
        )
        == 2
    )


def test_the_printed_openssl_recipe_verifies_journal_signatures(
    evidence_report: Issued, tmp_path: Path
) -> None:
    from forensic.report.back import openssl_recipe

    for name in ("pdfdetach", "jq", "openssl"):
        tool(name)
    subprocess.run(["pdfdetach", "-saveall", str(evidence_report.pdf)], cwd=tmp_path, check=True)
    text = _text(evidence_report.pdf)
    lines = (tmp_path / "journal.jsonl").read_bytes().splitlines()
    for command in openssl_recipe(1):  # the report prints these very commands
        assert command.rstrip(" \\") in text
    for line in (1, len(lines)):
        script = "\n".join(openssl_recipe(line))
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True)
        assert "Signature Verified Successfully" in done.stdout, done.stdout + done.stderr
    # A changed payload no longer verifies.
    journal = tmp_path / "journal.jsonl"
    journal.write_bytes(journal.read_bytes().replace(b'"payload":"', b'"payload":"e', 1))
    script = "\n".join(openssl_recipe(1))
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert "Signature Verified Successfully" not in done.stdout


def test_a_timestamp_authority_countersigns_the_signature(
    evidence_report: Issued, tmp_path: Path
) -> None:
    """An RFC 3161 timestamp, from pyHanko's in-process TSA (CI has no network)."""
    import datetime as dt

    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    # pyHanko's test TSA signs with RSA only.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(key, hashes.SHA256())
    )
    stamper = DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        tsa_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
    )
    a = evidence_report.examiner
    out = tmp_path / "stamped.pdf"
    issue_report(
        evidence_report.case,
        out=out,
        signer=a.signer,
        report_signer=a.report_signer,
        now=NOW,
        timestamper=stamper,
        tsa_url="test://dummy",
    )
    verdict = verify_report(out, case_dir=evidence_report.case.root)
    assert verdict.ok, verdict.failure
    assert verdict.signatures[0]["timestamp"] is not None
    issued = [e for e in read_entries(evidence_report.case.root) if e.kind == "report.generated"]
    assert issued[-1].payload["timestamp_authority"] == "test://dummy"


def test_a_report_checked_against_another_case_fails_cleanly(
    evidence_report: Issued, inferred_report: Issued
) -> None:
    verdict = verify_report(evidence_report.pdf, case_dir=inferred_report.case.root)
    assert not verdict.ok
    assert "the report is of case R-001, not R-002" in str(verdict.failure)
    assert verdict.checks[-1].status == "skipped"


def test_a_signing_revision_that_changes_a_page_fails(
    evidence_report: Issued, tmp_path: Path
) -> None:
    """The examiner's own signing update may add attachments and the signature, nothing that
    changes what the pages show (the rebuild check covers only the first revision)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    from forensic.report.pdf import sign_revision as _sign

    a = evidence_report.examiner
    data = evidence_report.pdf.read_bytes()
    issued = next(
        e for e in read_entries(evidence_report.case.root) if e.kind == "report.generated"
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(data[: issued.payload["unsigned"]["size"]]))
    from pyhanko.pdf_utils import embed

    from forensic.report.pdf import attachments

    for name, blob in sorted(attachments(data, where="x").items()):
        stream = embed.EmbeddedFileObject.from_file_data(writer, data=blob)
        embed.embed_file(writer, embed.FileSpec(file_spec_string=name, embedded_data=stream))
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page_ref.get_object()["/Contents"] = writer.add_object(
        generic.StreamObject(stream_data=b"BT 60 600 Td (FORGED) Tj ET")
    )
    writer.update_container(page_ref)
    forged = _sign(
        writer, a.report_signer, field="Examiner-x", reason="r", location="l", timestamper=None
    )
    path = tmp_path / "forged.pdf"
    path.write_bytes(forged)
    verdict = verify_report(path)
    assert not verdict.ok
    assert "changes object" in str(verdict.failure)


# -- the pages (issue 16) --------------------------------------------------------------------


def test_frame_hashes_are_printed_in_full(evidence_report: Issued) -> None:
    from forensic.records import find_run, load_artifact

    case = evidence_report.case
    run = find_run(case.entries(), "R2", case_id=case.case_id)
    frames = load_artifact(case.store, run["frames"], what="R2")
    text = re.sub(r"\s+", " ", _text(evidence_report.pdf))
    assert len(frames) == 3
    for frame in frames:
        assert frame["output"]["frame_sha256"] in text
        assert frame["output"]["pixel_sha256"] in text
    assert "-f framehash -hash sha256" in text


def test_no_page_is_blank_and_every_page_has_its_footer(evidence_report: Issued) -> None:
    pages = len(pypdf.PdfReader(evidence_report.pdf).pages)
    for page in range(1, pages + 1):
        lines = [ln for ln in _text(evidence_report.pdf, page).splitlines() if ln.strip()]
        body = [ln for ln in lines if "forensic report 1 · case R-001" not in ln]
        assert len(body) >= 3, f"page {page} is (nearly) blank: {lines}"
        assert f"page {page} of {pages}" in " ".join(lines)


def test_the_cover_states_the_accreditation_and_the_instructions_name_the_case_folder(
    evidence_report: Issued,
) -> None:
    text = re.sub(r"\s+", " ", _text(evidence_report.pdf))
    assert "Accreditation Not accredited (test laboratory)." in text
    assert "{{" not in text
    assert "forensic verify report.pdf --case PATH/TO/CASE-FOLDER" in text
    assert "--case R-001" not in text
    assert "Media facts of E2" in text
    assert "interlace: field order" in text
    assert "{'" not in text  # no Python dict printed
    assert "all 2 outputs are attached to this PDF" in text


def test_previews_are_jpeg_at_most_200_dpi_and_the_outputs_are_attached(
    evidence_report: Issued,
) -> None:
    listing = subprocess.run(
        [tool("pdfimages"), "-list", str(evidence_report.pdf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[2:]
    encodings = [line.split()[8] for line in listing]
    ppi = [int(line.split()[12]) for line in listing]
    assert "jpeg" in encodings
    assert max(ppi) <= 201, listing  # at most PREVIEW_DPI at the printed size
    runs = [r for r in evidence_report.case.entries() if r.kind == "run"]
    names = set(pypdf.PdfReader(evidence_report.pdf).attachments)
    still = runs[0].payload["output"]["file"]
    video = runs[1].payload["output"]["video"]["file"]
    assert {still.replace("/", "_"), video.replace("/", "_")} <= names


def test_pyhanko_cli_validates_the_report_as_the_report_says(
    evidence_report: Issued, tmp_path: Path
) -> None:
    import sys

    pyhanko = shutil.which("pyhanko") or str(Path(sys.executable).parent / "pyhanko")
    if not Path(pyhanko).exists():
        pytest.skip("pyhanko-cli is not installed (the dev extra installs it)")
    reader = pypdf.PdfReader(evidence_report.pdf)
    (ca_name,) = [n for n in reader.attachments if n.startswith("lab-ca-")]
    ca = tmp_path / ca_name
    ca.write_bytes(reader.attachments[ca_name][0])
    done = subprocess.run(
        [
            pyhanko,
            "sign",
            "validate",
            "--pretty-print",
            "--trust",
            str(ca),
            str(evidence_report.pdf),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trusted" in done.stdout.lower(), done.stdout
    broken = tmp_path / "broken.pdf"
    data = evidence_report.pdf.read_bytes()
    broken.write_bytes(_flip(data, len(data) // 3))
    failed = subprocess.run(
        [pyhanko, "sign", "validate", "--trust", str(ca), str(broken)],
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0


def test_outputs_past_the_lab_limit_are_listed_and_approvals_are_printed(
    tmp_path: Path, media: Path, examiners: tuple[Examiner, Examiner]
) -> None:
    from tests.conftest import filled_templates

    a, b = examiners
    templates = filled_templates(tmp_path / "templates")
    lab = templates / "lab.toml"
    lab.write_text(lab.read_text().replace("outputs_max_mb = 20", "outputs_max_mb = 0"))
    case = init_case(
        tmp_path / "case", case_id="R-003", title="t", policy_path=None, signer=a.signer, now=NOW
    )
    ingest(case, [media / "camera_noisy.png"], signer=a.signer, now=NOW)
    _recipe(case, a.signer, "E1", VIDEO.replace(b"frames = [3, 5]\n", b""))
    bind(case, a.signer, a.report_signer, now=NOW)
    enrol_examiner(
        case, public_pem(b.signer.public_key), name=b.signer.name, signer=a.signer, now=NOW
    )
    bind(case, b.signer, b.report_signer, now=NOW)
    first = tmp_path / "r1.pdf"
    issue_report(
        case,
        out=first,
        signer=a.signer,
        report_signer=a.report_signer,
        now=NOW,
        templates_dir=templates,
    )
    output = next(e for e in case.entries() if e.kind == "run").payload["output"]
    text = re.sub(r"\s+", " ", _text(first))
    assert "0 of the 1 outputs are attached" in text
    assert output["sha256"] in text
    assert "NOT attached" in text
    assert output["file"].replace("/", "_") not in pypdf.PdfReader(first).attachments
    assert verify_report(first, case_dir=case.root, templates_dir=templates).ok
    approved = tmp_path / "r1-approved.pdf"
    approve_report(
        case,
        first,
        out=approved,
        signer=b.signer,
        report_signer=b.report_signer,
        now=NOW,
        templates_dir=templates,
    )
    verdict = verify_report(approved, case_dir=case.root, templates_dir=templates)
    assert [x["examiner"] for x in verdict.approvals] == ["Second Examiner"]
    second = tmp_path / "r2.pdf"
    issue_report(
        case,
        out=second,
        signer=a.signer,
        report_signer=a.report_signer,
        now=NOW,
        templates_dir=templates,
    )
    text = re.sub(r"\s+", " ", _text(second))
    assert "report 1 APPROVED: r1-approved.pdf" in text
    assert "Second Examiner" in text


# -- archival (PDF/A-3b) ---------------------------------------------------------------------


def test_the_signed_report_and_its_first_revision_meet_pdfa_3b_where_checked(
    evidence_report: Issued, inferred_report: Issued
) -> None:
    """ISO 19005-3 level B, the clauses tests/pdfa.py checks (veraPDF is not run here)."""
    for issued in (evidence_report, inferred_report):
        signed = issued.pdf.read_bytes()
        assert pdfa3b_problems(signed) == []
        unsigned = signed[: signed.index(b"%%EOF") + len(b"%%EOF\n")]
        assert pdfa3b_problems(unsigned) == []
    reader = pypdf.PdfReader(evidence_report.pdf)
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp
    assert f"<xmp:CreateDate>{NOW:%Y-%m-%dT%H:%M:%S}+00:00".encode() in xmp  # the report's date
    names = reader.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"]
    relation = {str(names[i]): names[i + 1].get_object()["/AFRelationship"] for i in (0, 2)}
    assert set(relation.values()) <= {"/Source", "/Data"}
    specs = {str(names[i]): names[i + 1].get_object() for i in range(0, len(names), 2)}
    assert specs["journal.jsonl"]["/AFRelationship"] == "/Source"
    assert specs["journal.jsonl"]["/EF"]["/F"].get_object()["/Subtype"] == "/application/x-ndjson"

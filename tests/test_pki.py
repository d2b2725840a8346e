"""The lab PKI for report signatures, and its binding to the examiner's journal key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from forensic.case import Case
from forensic.errors import KeyFileError
from forensic.journal import read_entries
from forensic.keys import Signer
from forensic.pki import (
    CA_KEY,
    SIGNING_KEY,
    URN,
    bind,
    check_binding,
    init_pki,
    load_report_signer,
)
from forensic.verify import verify_case
from tests.conftest import NOW, PASSPHRASE


def test_pki_makes_a_ca_and_an_examiner_certificate(tmp_path: Path, signer: Signer) -> None:
    made = init_pki(tmp_path, signer, passphrase=PASSPHRASE, lab="Test Lab", now=NOW)
    made.certificate.verify_directly_issued_by(made.ca_certificate)
    assert isinstance(made.key, ec.EllipticCurvePrivateKey)
    assert made.key.curve.name == "secp256r1"
    san = made.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert URN + signer.fingerprint in san.value.get_values_for_type(x509.UniformResourceIdentifier)
    ca = made.ca_certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert ca.ca is True
    for name in (CA_KEY, SIGNING_KEY):
        assert b'"format": "forensic-private-key/1"' in (tmp_path / name).read_bytes()
        assert os.stat(tmp_path / name).st_mode & 0o077 == 0
    assert load_report_signer(tmp_path, passphrase=PASSPHRASE).certificate == made.certificate
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_report_signer(tmp_path, passphrase="not the passphrase")
    with pytest.raises(KeyFileError, match="never overwritten"):
        init_pki(tmp_path, signer, passphrase=PASSPHRASE, lab="Test Lab", now=NOW)


def test_binding_entry_is_verified_and_a_mismatched_key_fails(
    case: Case, signer: Signer, tmp_path: Path
) -> None:
    from dataclasses import replace

    made = init_pki(tmp_path, signer, passphrase=PASSPHRASE, lab="Test Lab", now=NOW)
    entry = bind(case, signer, made, now=NOW)
    assert "CN=Test Examiner" in check_binding(entry)["subject"]
    assert verify_case(case.root).ok
    # An examiner who binds a certificate without holding its private key: the journal
    # signature is theirs, but the ECDSA statement cannot match the certificate.
    (tmp_path / "other").mkdir()
    other = init_pki(tmp_path / "other", signer, passphrase=PASSPHRASE, lab="X", now=NOW)
    bind(case, signer, replace(made, key=other.key), now=NOW)
    failure = verify_case(case.root).failure or ""
    assert "PKI binding does not verify" in failure
    assert read_entries(case.root)[-1].kind == "pki.bind"


def test_cli_pki_init_and_bind(run_cli: Any, case: Case, tmp_path: Path, key_dir: Path) -> None:
    import shutil

    keys = tmp_path / "keys"
    shutil.copytree(key_dir, keys)
    code, out, err = run_cli("pki", "init", "--lab", "Ünïcode Lab", "--key-dir", keys)
    assert code == 0, err
    assert "bound to journal key" in out
    code, out, err = run_cli("pki", "bind", case.root, "--key-dir", keys)
    assert code == 0, err
    assert verify_case(case.root).ok
    code, _, err = run_cli("pki", "init", "--lab", "again", "--key-dir", keys)
    assert code == 2
    assert "never overwritten" in err

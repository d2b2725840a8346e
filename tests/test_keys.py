from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from forensic.errors import KeyFileError
from forensic.keys import KEY_FILE, create_key, read_key_info, resolve_key_dir, unlock
from tests.conftest import NOW, PASSPHRASE, Run


def _raw_private(key_dir: Path) -> bytes:
    return unlock(key_dir, PASSPHRASE).private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def test_key_file_is_private_and_encrypted(key_dir: Path) -> None:
    path = key_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    raw = _raw_private(key_dir)
    text = path.read_bytes()
    assert raw not in text
    assert base64.b64encode(raw) not in text
    assert raw.hex().encode() not in text
    doc = json.loads(text)
    assert doc["kdf"]["name"] == "scrypt"
    assert doc["kdf"]["n"] >= 2**17
    assert doc["cipher"]["name"] == "aes-256-gcm"


def test_fingerprint_is_sha256_of_raw_public_key(key_dir: Path) -> None:
    info = read_key_info(key_dir)
    raw = info.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert info.fingerprint == hashlib.sha256(raw).hexdigest()


def test_wrong_passphrase_is_a_clear_error(key_dir: Path) -> None:
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        unlock(key_dir, "not the passphrase")


def test_wrong_passphrase_via_cli(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORENSIC_PASSPHRASE", "not the passphrase")
    code, out, err = run_cli("case", "init", tmp_path / "c", "--case-id", "X1", "--title", "t")
    assert code != 0
    assert "wrong passphrase" in err
    assert "Traceback" not in err + out
    assert not (tmp_path / "c").exists()


def test_key_swap_in_file_is_detected(key_dir: Path, other_key_dir: Path, tmp_path: Path) -> None:
    # Put another examiner's public key (and name) into this key file: the AEAD must refuse.
    mine = json.loads((key_dir / KEY_FILE).read_text())
    theirs = json.loads((other_key_dir / KEY_FILE).read_text())
    mine["public_key"], mine["fingerprint"] = theirs["public_key"], theirs["fingerprint"]
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / KEY_FILE).write_text(json.dumps(mine))
    with pytest.raises(KeyFileError):
        unlock(forged, PASSPHRASE)


def test_never_overwrites_a_key(key_dir: Path) -> None:
    before = (key_dir / KEY_FILE).read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        create_key(key_dir, name="Someone Else", passphrase=PASSPHRASE, now=NOW)
    assert (key_dir / KEY_FILE).read_bytes() == before


def test_short_passphrase_and_bad_name(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="at least 8"):
        create_key(tmp_path / "k", name="A", passphrase="short", now=NOW)
    with pytest.raises(KeyFileError, match="--name"):
        create_key(tmp_path / "k", name="  ", passphrase=PASSPHRASE, now=NOW)
    assert not (tmp_path / "k" / KEY_FILE).exists()


def test_key_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORENSIC_KEY_DIR", str(tmp_path / "env"))
    assert resolve_key_dir(tmp_path / "opt") == tmp_path / "opt"
    assert resolve_key_dir(None) == tmp_path / "env"
    monkeypatch.delenv("FORENSIC_KEY_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert resolve_key_dir(None) == tmp_path / "cfg" / "forensic" / "keys"


def test_cli_keys_init_show_export(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "newkeys"
    monkeypatch.setenv("FORENSIC_KEY_DIR", str(folder))
    code, out, _ = run_cli("keys", "init", "--name", "Jo Bloggs", "--json")
    assert code == 0
    created = json.loads(out)
    code, out, _ = run_cli("keys", "show", "--json")
    assert code == 0
    assert json.loads(out)["fingerprint"] == created["fingerprint"]
    assert PASSPHRASE not in (folder / KEY_FILE).read_text()
    pem = tmp_path / "jo.pem"
    code, _, _ = run_cli("keys", "export-public", "--out", pem)
    assert code == 0
    code, _, err = run_cli("keys", "export-public", "--out", pem)
    assert code != 0
    assert "already exists" in err
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    der = subprocess.run(
        [openssl, "pkey", "-pubin", "-in", str(pem), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    # The last 32 bytes of an Ed25519 SubjectPublicKeyInfo are the raw key.
    assert hashlib.sha256(der[-32:]).hexdigest() == created["fingerprint"]


def test_no_passphrase_without_terminal(
    run_cli: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FORENSIC_PASSPHRASE")
    code, _, err = run_cli("case", "init", tmp_path / "c", "--case-id", "X1", "--title", "t")
    assert code != 0
    assert "FORENSIC_PASSPHRASE" in err

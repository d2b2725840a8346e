"""Report and lab CA keys at rest as strongly as the journal key, and the upgrade of key
folders made by earlier versions (PKCS#8, PBKDF2-SHA256 at 2,048 iterations)."""

from __future__ import annotations

import base64
import json
import shutil
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from forensic.case import Case
from forensic.errors import KeyFileError
from forensic.keys import (
    KEY_FILE,
    PRIVATE_KEY_FORMAT,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    Signer,
    open_sealed_private_key,
    pkcs8_der,
)
from forensic.pki import (
    CA_KEY,
    LEGACY_KEYS,
    SIGNING_KEY,
    bind,
    init_pki,
    load_report_signer,
    upgrade_pki_keys,
)
from forensic.verify import verify_case
from tests.conftest import NOW, PASSPHRASE, Run

WRONG = "not the passphrase"
#: scrypt cost for tests that exercise the upgrade logic, not the KDF (which
#: `test_new_pki_keys_use_the_journal_keys_kdf_with_their_own_salts` and
#: `test_a_legacy_folder_migrates_and_the_migrated_key_signs` check at full strength).
FAST_N = 2**10


@pytest.fixture
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("forensic.keys.SCRYPT_N", FAST_N)


def _pki_folder(tmp_path: Path, key_dir: Path, signer: Signer) -> Path:
    folder = tmp_path / "keys"
    shutil.copytree(key_dir, folder)
    init_pki(folder, signer, passphrase=PASSPHRASE, lab="Test Lab", now=NOW)
    return folder


def _make_legacy(folder: Path) -> dict[str, bytes]:
    """Turn a key folder into what earlier versions wrote: each PKI key as PKCS#8 PEM with
    `BestAvailableEncryption` (PBKDF2-SHA256, 2,048 iterations), and no new-format file.
    Returns each legacy file's unencrypted PKCS#8 DER."""
    ders = {}
    for name, legacy in LEGACY_KEYS.items():
        private = open_sealed_private_key(folder / name, PASSPHRASE)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
        (folder / legacy).write_bytes(pem)
        (folder / legacy).chmod(0o600)
        (folder / name).unlink()
        ders[name] = pkcs8_der(private)
    return ders


def test_new_pki_keys_use_the_journal_keys_kdf_with_their_own_salts(
    tmp_path: Path, key_dir: Path, signer: Signer
) -> None:
    folder = _pki_folder(tmp_path, key_dir, signer)
    salts = {json.loads((folder / KEY_FILE).read_text())["kdf"]["salt"]}
    for name in (CA_KEY, SIGNING_KEY):
        path = folder / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        doc = json.loads(path.read_text())
        assert doc["format"] == PRIVATE_KEY_FORMAT
        kdf = doc["kdf"]
        # The parameters docs/spec.md §1 states.
        assert (kdf["name"], kdf["n"], kdf["r"], kdf["p"]) == ("scrypt", 2**17, 8, 1)
        assert (SCRYPT_N, SCRYPT_R, SCRYPT_P) == (2**17, 8, 1)
        assert len(base64.b64decode(kdf["salt"])) == 16
        assert doc["cipher"]["name"] == "aes-256-gcm"
        assert b"PRIVATE KEY" not in path.read_bytes()
        salts.add(kdf["salt"])
    assert len(salts) == 3, "every key file has its own salt"
    for legacy in LEGACY_KEYS.values():
        assert not (folder / legacy).exists()


def test_a_legacy_folder_migrates_and_the_migrated_key_signs(
    tmp_path: Path, key_dir: Path, signer: Signer, case: Case
) -> None:
    with pytest.MonkeyPatch.context() as fast:
        fast.setattr("forensic.keys.SCRYPT_N", FAST_N)  # only to make the legacy folder
        folder = _pki_folder(tmp_path, key_dir, signer)
        ders = _make_legacy(folder)
    notices: list[str] = []
    loaded = load_report_signer(folder, passphrase=PASSPHRASE, notify=notices.append)
    assert len(notices) == 2
    assert all("scrypt" in n and "PBKDF2" in n for n in notices)
    for name, legacy in LEGACY_KEYS.items():
        assert not (folder / legacy).exists(), "nothing weaker is kept behind"
        kdf = json.loads((folder / name).read_text())["kdf"]
        assert (kdf["name"], kdf["n"], kdf["r"], kdf["p"]) == ("scrypt", 2**17, 8, 1)
        assert pkcs8_der(open_sealed_private_key(folder / name, PASSPHRASE)) == ders[name]
    # The migrated key signs: an ECDSA signature its certificate verifies, and a binding
    # entry that verify accepts.
    message = b"forensic report"
    signature = loaded.key.sign(message, ec.ECDSA(hashes.SHA256()))
    public = loaded.certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    bind(case, signer, loaded, now=NOW)
    assert verify_case(case.root).ok
    # Second load: nothing left to upgrade.
    again: list[str] = []
    load_report_signer(folder, passphrase=PASSPHRASE, notify=again.append)
    assert again == []


def test_wrong_passphrase_on_a_legacy_folder_fails_cleanly_and_changes_nothing(
    tmp_path: Path, key_dir: Path, signer: Signer, fast_kdf: None
) -> None:
    folder = _pki_folder(tmp_path, key_dir, signer)
    _make_legacy(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(KeyFileError, match="wrong passphrase") as info:
        upgrade_pki_keys(folder, passphrase=WRONG)
    assert LEGACY_KEYS[CA_KEY] in info.value.message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_wrong_passphrase_on_a_new_key_names_the_file(
    tmp_path: Path, key_dir: Path, signer: Signer, fast_kdf: None
) -> None:
    folder = _pki_folder(tmp_path, key_dir, signer)
    with pytest.raises(KeyFileError, match="wrong passphrase") as info:
        load_report_signer(folder, passphrase=WRONG)
    assert SIGNING_KEY in info.value.message


def test_an_interrupted_upgrade_is_finished_and_a_mismatch_is_refused(
    tmp_path: Path, key_dir: Path, signer: Signer, fast_kdf: None
) -> None:
    folder = _pki_folder(tmp_path, key_dir, signer)
    sealed = {name: (folder / name).read_bytes() for name in LEGACY_KEYS}
    _make_legacy(folder)
    # Interrupted after the new file was written, before the legacy one was removed.
    for name, data in sealed.items():
        (folder / name).write_bytes(data)
    assert len(upgrade_pki_keys(folder, passphrase=PASSPHRASE)) == 2
    assert not any((folder / legacy).exists() for legacy in LEGACY_KEYS.values())
    # A legacy file holding another key than its replacement: both are kept, an error says so.
    other = tmp_path / "other"
    other.mkdir()
    init_pki(other, signer, passphrase=PASSPHRASE, lab="Other Lab", now=NOW)
    _make_legacy(other)
    stray = other / LEGACY_KEYS[SIGNING_KEY]
    shutil.copy(stray, folder / LEGACY_KEYS[SIGNING_KEY])
    with pytest.raises(KeyFileError, match="hold different keys"):
        upgrade_pki_keys(folder, passphrase=PASSPHRASE)
    assert (folder / LEGACY_KEYS[SIGNING_KEY]).exists()
    assert (folder / SIGNING_KEY).read_bytes() == sealed[SIGNING_KEY]


def test_cli_keys_upgrade(
    run_cli: Run, tmp_path: Path, key_dir: Path, signer: Signer, fast_kdf: None
) -> None:
    folder = _pki_folder(tmp_path, key_dir, signer)
    _make_legacy(folder)
    code, out, err = run_cli("keys", "upgrade", folder, "--json")
    assert code == 0, err
    upgraded = json.loads(out)["upgraded"]
    assert sorted(Path(u["replacement"]).name for u in upgraded) == sorted(LEGACY_KEYS)
    code, out, err = run_cli("keys", "upgrade", folder)
    assert code == 0, err
    assert "Nothing to upgrade" in out
    code, out, err = run_cli("keys", "upgrade", tmp_path / "missing")
    assert code == 2
    assert "no examiner key" in err
    assert "Traceback" not in err


def test_cli_report_commands_upgrade_with_a_notice(
    run_cli: Run, tmp_path: Path, key_dir: Path, signer: Signer, case: Case, fast_kdf: None
) -> None:
    folder = _pki_folder(tmp_path, key_dir, signer)
    _make_legacy(folder)
    code, _, err = run_cli("pki", "bind", case.root, "--key-dir", folder)
    assert code == 0, err
    assert err.count("note: upgraded") == 2
    assert verify_case(case.root).ok

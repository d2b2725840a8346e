"""Examiner signing keys: Ed25519, encrypted at rest with scrypt and AES-256-GCM.

The report-signing and lab CA private keys (`forensic.pki`) use the same at-rest protection:
`seal_private_key` wraps their PKCS#8 DER in a ``forensic-private-key/1`` file with the same
scrypt parameters and their own salt, so a passphrase guess costs the same against any file of
the key folder (docs/spec.md §1). `open_legacy_pkcs8` still reads the PKCS#8 PEM files
(PBKDF2-SHA256, 2,048 iterations) that earlier versions wrote, for their upgrade.

Why not PKCS#12: `cryptography` writes the PKCS#12 MAC with a fixed 2,048 iterations, whatever
the key bag's KDF rounds, so the MAC would let an attacker test passphrases ~300 times faster
than the 600,000-round key bag promises. scrypt (N=2**17, r=8, p=1: 128 MiB per guess, the OWASP
recommendation) has no such shortcut. The file is small JSON, specified in docs/spec.md; the
primitives are `cryptography`'s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from forensic.errors import KeyFileError
from forensic.fsutil import write_atomic, write_refused
from forensic.timeutil import utc_timestamp

KEY_FORMAT = "forensic-key/1"
PRIVATE_KEY_FORMAT = "forensic-private-key/1"
KEY_FILE = "examiner.key"
PUBLIC_FILE = "examiner.pub.pem"
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
MIN_PASSPHRASE = 8


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, lowercase hex."""
    return hashlib.sha256(raw_public(public_key)).hexdigest()


def raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(public_key: Ed25519PublicKey) -> str:
    """SubjectPublicKeyInfo PEM, as `openssl pkey -pubin` reads it."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_pem(text: str, *, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except ValueError as exc:
        raise KeyFileError(f"{where}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{where}: the public key is not Ed25519")
    return key


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Signer:
    """An unlocked examiner key. Holds the private key in memory only."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


@dataclass(frozen=True)
class KeyInfo:
    """What can be read from a key file without the passphrase."""

    path: Path
    name: str
    created: str
    public_key: Ed25519PublicKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


def default_key_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "forensic" / "keys"


def resolve_key_dir(key_dir: Path | None) -> Path:
    """``--key-dir`` first, then ``FORENSIC_KEY_DIR``, then the per-user default."""
    if key_dir is not None:
        return key_dir
    env = os.environ.get("FORENSIC_KEY_DIR")
    return Path(env) if env else default_key_dir()


def _kdf(salt: bytes) -> Scrypt:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)


def _header_aad(doc: dict[str, object]) -> bytes:
    # Everything but the ciphertext is authenticated, so the name or public key in the file
    # cannot be swapped without the passphrase.
    header: dict[str, Any] = {k: v for k, v in doc.items() if k != "ciphertext"}
    return bytes(rfc8785.dumps(header))


def create_key(key_dir: Path, *, name: str, passphrase: str, now: datetime) -> KeyInfo:
    """Create an examiner key in ``key_dir``. Refuses to overwrite an existing one."""
    if not name.strip() or not re.fullmatch(r"[^\x00-\x1f]{1,200}", name):
        raise KeyFileError(
            "--name must be 1 to 200 printable characters", hint="give the examiner's full name"
        )
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeyFileError(
            f"the passphrase is too short: it must have at least {MIN_PASSPHRASE} characters"
        )
    if key_dir.exists() and not key_dir.is_dir():
        raise KeyFileError(
            f"--key-dir {key_dir} is a file, not a folder",
            hint="give a folder for the examiner's keys (it is created if missing)",
        )
    try:
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise write_refused(
            key_dir.parent, exc, what=f"--key-dir {key_dir}", error=KeyFileError
        ) from None
    path = key_dir / KEY_FILE
    if path.exists():
        raise KeyFileError(
            f"a key already exists at {path}",
            hint="keys are never overwritten; use another --key-dir for another examiner",
        )
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    doc: dict[str, object] = {
        "format": KEY_FORMAT,
        "name": name,
        "created": utc_timestamp(now),
        "algorithm": "ed25519",
        "public_key": b64e(raw_public(public)),
        "fingerprint": fingerprint(public),
    }
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    _encrypt(doc, raw_private, passphrase)
    try:
        write_atomic(path, json.dumps(doc, indent=2).encode("utf-8") + b"\n", mode=0o600)
    except OSError as exc:
        raise write_refused(key_dir, exc, what=f"key {path}", error=KeyFileError) from None
    write_atomic(key_dir / PUBLIC_FILE, public_pem(public).encode("ascii"), mode=0o644)
    return KeyInfo(path=path, name=name, created=str(doc["created"]), public_key=public)


def _read_doc(key_dir: Path) -> tuple[Path, dict[str, object]]:
    path = key_dir / KEY_FILE
    if not path.is_file():
        raise KeyFileError(
            f"no examiner key in {key_dir}",
            hint="create one with `forensic keys init --name NAME`, or point --key-dir or "
            "FORENSIC_KEY_DIR at the folder that holds it",
        )
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise KeyFileError(f"{path} is not a {KEY_FORMAT} key file")
    return path, doc


def read_key_info(key_dir: Path) -> KeyInfo:
    path, doc = _read_doc(key_dir)
    try:
        public = Ed25519PublicKey.from_public_bytes(b64d(str(doc["public_key"])))
        info = KeyInfo(
            path=path, name=str(doc["name"]), created=str(doc["created"]), public_key=public
        )
    except (KeyError, ValueError) as exc:
        raise KeyFileError(f"key file {path} is damaged: {exc}") from None
    if info.fingerprint != doc.get("fingerprint"):
        raise KeyFileError(f"key file {path} is damaged: its fingerprint does not match its key")
    return info


def unlock(key_dir: Path, passphrase: str) -> Signer:
    """Decrypt the examiner key. A wrong passphrase raises KeyFileError, never a traceback."""
    path, doc = _read_doc(key_dir)
    info = read_key_info(key_dir)
    raw = _decrypt(doc, passphrase, path)
    try:
        private = Ed25519PrivateKey.from_private_bytes(raw)
    except ValueError as exc:
        raise KeyFileError(f"key file {path} is damaged: {exc}") from None
    if fingerprint(private.public_key()) != info.fingerprint:
        raise KeyFileError(f"key file {path} is damaged: private and public key do not match")
    return Signer(name=info.name, private_key=private)


def _encrypt(doc: dict[str, object], plaintext: bytes, passphrase: str) -> None:
    """Add ``kdf``, ``cipher`` and ``ciphertext`` to ``doc``: AES-256-GCM under
    scrypt(passphrase) with a fresh salt and nonce, the rest of ``doc`` as associated data."""
    salt, nonce = os.urandom(16), os.urandom(12)
    doc["kdf"] = {"name": "scrypt", "salt": b64e(salt), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
    doc["cipher"] = {"name": "aes-256-gcm", "nonce": b64e(nonce)}
    secret = _kdf(salt).derive(passphrase.encode("utf-8"))
    doc["ciphertext"] = b64e(AESGCM(secret).encrypt(nonce, plaintext, _header_aad(doc)))


def _decrypt(doc: dict[str, object], passphrase: str, path: Path) -> bytes:
    """The plaintext `_encrypt` sealed; a wrong passphrase or a damaged file raises
    KeyFileError naming ``path``."""
    try:
        kdf = doc["kdf"]
        cipher = doc["cipher"]
        if not isinstance(kdf, dict) or not isinstance(cipher, dict):
            raise TypeError("kdf and cipher must be objects")
        if kdf.get("name") != "scrypt" or cipher.get("name") != "aes-256-gcm":
            raise KeyFileError(f"key file {path} uses an unsupported KDF or cipher")
        secret = Scrypt(
            salt=b64d(kdf["salt"]), length=32, n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"])
        ).derive(passphrase.encode("utf-8"))
        return AESGCM(secret).decrypt(
            b64d(cipher["nonce"]), b64d(str(doc["ciphertext"])), _header_aad(doc)
        )
    except InvalidTag:
        raise KeyFileError(
            f"wrong passphrase for the key in {path}",
            hint="check FORENSIC_PASSPHRASE or retype it; keys cannot be recovered without it",
        ) from None
    except (KeyError, ValueError, TypeError, MemoryError) as exc:
        raise KeyFileError(f"key file {path} is damaged: {exc}") from None


# -- other private keys (the lab PKI's), at rest like the examiner key ---------------------------


def _spki_sha256(private_key: PrivateKeyTypes) -> str:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def pkcs8_der(private_key: PrivateKeyTypes) -> bytes:
    """The unencrypted PKCS#8 DER of a private key (what a sealed file holds)."""
    return private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def seal_private_key(private_key: PrivateKeyTypes, *, passphrase: str, purpose: str) -> bytes:
    """A ``forensic-private-key/1`` file (docs/spec.md §1): the key's PKCS#8 DER encrypted as
    the examiner key is (scrypt N=2**17, r=8, p=1, its own salt; AES-256-GCM)."""
    doc: dict[str, object] = {
        "format": PRIVATE_KEY_FORMAT,
        "purpose": purpose,
        "public_key_sha256": _spki_sha256(private_key),
    }
    _encrypt(doc, pkcs8_der(private_key), passphrase)
    return json.dumps(doc, indent=2).encode("utf-8") + b"\n"


def read_sealed_header(path: Path) -> dict[str, object]:
    """A ``forensic-private-key/1`` file's JSON (no passphrase needed); KeyFileError if it is
    not one."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != PRIVATE_KEY_FORMAT:
        raise KeyFileError(f"{path} is not a {PRIVATE_KEY_FORMAT} key file")
    return doc


def open_sealed_private_key(path: Path, passphrase: str) -> PrivateKeyTypes:
    """Decrypt a `seal_private_key` file; KeyFileError naming ``path`` on a wrong passphrase
    or a damaged file."""
    doc = read_sealed_header(path)
    der = _decrypt(doc, passphrase, path)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"key file {path} is damaged: {exc}") from None
    if _spki_sha256(key) != doc.get("public_key_sha256"):
        raise KeyFileError(f"key file {path} is damaged: private and public key do not match")
    return key


LEGACY_PEM_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def is_legacy_pkcs8(path: Path) -> bool:
    """Whether ``path`` is an encrypted PKCS#8 PEM file, as earlier versions wrote."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(LEGACY_PEM_HEADER) + 64).lstrip().startswith(LEGACY_PEM_HEADER)
    except OSError:
        return False


def open_legacy_pkcs8(path: Path, passphrase: str) -> PrivateKeyTypes:
    """Read an encrypted PKCS#8 PEM key (PBKDF2-SHA256, 2,048 iterations: kept only to
    upgrade it); KeyFileError naming ``path`` on a wrong passphrase or a damaged file."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    try:
        return serialization.load_pem_private_key(pem, passphrase.encode("utf-8"))
    except (ValueError, TypeError):
        # cryptography raises the same ValueError for a wrong passphrase and a damaged file.
        raise KeyFileError(
            f"wrong passphrase for the key in {path} (or the file is damaged)",
            hint="check FORENSIC_PASSPHRASE or retype it; keys cannot be recovered without it",
        ) from None

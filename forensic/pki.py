"""A local lab PKI for signing PDF reports, bound to the examiner's journal key.

PDF verifiers such as poppler's `pdfsig` do not accept Ed25519 signatures, so reports are
signed with an ECDSA P-256 certificate. `init_pki` makes, in the examiner's key folder, a
local lab CA (self-signed, ``cA``, path length 0) and an examiner certificate it issues
(digital signature and non-repudiation, with the examiner's Ed25519 fingerprint as a URI
``urn:forensic:ed25519:<fingerprint>`` in its subject alternative name). Both private keys are
stored encrypted with the examiner's passphrase exactly as strongly as the journal key
(``forensic-private-key/1``: scrypt N=2**17, r=8, p=1, AES-256-GCM; `forensic.keys`).

Key folders made by earlier versions hold the two keys as PKCS#8 PEM (PBKDF2-SHA256 at 2,048
iterations, about a thousand times cheaper to guess against). `upgrade_pki_keys` rewrites them
in the new format; `load_report_signer` does so on first use. A legacy file is removed only
after its replacement is on disk and decrypts to the same key.

`bind` appends a ``pki.bind`` journal entry to a case: the certificates, and an ECDSA
signature by the certificate's key over the examiner's Ed25519 fingerprint and the
certificate's hash. The entry itself is signed with the Ed25519 key, so it carries both
signatures: each key vouches for the other. `check_binding` verifies one such entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from forensic.case import Case
from forensic.errors import KeyFileError, VerificationError
from forensic.fsutil import fsync_dir, write_atomic, write_refused
from forensic.hashing import sha256_hex
from forensic.journal import Entry, canonical
from forensic.keys import (
    Signer,
    b64d,
    b64e,
    is_legacy_pkcs8,
    open_legacy_pkcs8,
    open_sealed_private_key,
    pkcs8_der,
    seal_private_key,
)

CA_KEY, CA_CERT = "lab-ca.key", "lab-ca.cert.pem"
SIGNING_KEY, SIGNING_CERT = "report-signing.key", "report-signing.cert.pem"
#: The PKCS#8 PEM files of earlier versions (PBKDF2-SHA256, 2,048 iterations), by the file
#: that replaces each.
LEGACY_KEYS = {CA_KEY: "lab-ca.key.pem", SIGNING_KEY: "report-signing.key.pem"}
URN = "urn:forensic:ed25519:"


@dataclass(frozen=True)
class ReportSigner:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    ca_certificate: x509.Certificate


def _usage(**on: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        (
            "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
            "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
        ),
        False,
    )  # fmt: skip
    return x509.KeyUsage(**{**flags, **on})


def _name(common: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def init_pki(
    key_dir: Path, signer: Signer, *, passphrase: str, lab: str, now: dt.datetime
) -> ReportSigner:
    """Create the lab CA and the examiner's report-signing certificate (never overwrites)."""
    for name in (CA_KEY, CA_CERT, SIGNING_KEY, SIGNING_CERT, *LEGACY_KEYS.values()):
        if (key_dir / name).exists():
            raise KeyFileError(
                f"{key_dir / name} already exists; a PKI is never overwritten",
                hint="use the existing certificate, or move the old files away deliberately",
            )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{lab} (forensic local CA)", lab)
    start = now - dt.timedelta(minutes=5)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(signer.name, lab))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(URN + signer.fingerprint)]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    for filename, private, purpose in (
        (CA_KEY, ca_key, "lab-ca"),
        (SIGNING_KEY, key, "report-signing"),
    ):
        sealed = seal_private_key(private, passphrase=passphrase, purpose=purpose)
        try:
            write_atomic(key_dir / filename, sealed, mode=0o600)
        except OSError as exc:
            raise write_refused(
                key_dir, exc, what=f"lab PKI {key_dir / filename}", error=KeyFileError
            ) from None
    for filename, certificate in ((CA_CERT, ca_cert), (SIGNING_CERT, cert)):
        write_atomic(key_dir / filename, certificate.public_bytes(serialization.Encoding.PEM))
    return ReportSigner(key=key, certificate=cert, ca_certificate=ca_cert)


@dataclass(frozen=True)
class KeyUpgrade:
    """One legacy key file replaced by a ``forensic-private-key/1`` file."""

    legacy: Path
    replacement: Path

    @property
    def notice(self) -> str:
        return (
            f"upgraded {self.legacy.name} (PKCS#8, PBKDF2-SHA256 at 2,048 iterations) to "
            f"{self.replacement.name} (scrypt N=2^17, r=8, p=1, as the journal key); the old "
            "file was removed after the new one was checked to hold the same key"
        )


def upgrade_pki_keys(key_dir: Path, *, passphrase: str) -> list[KeyUpgrade]:
    """Rewrite every legacy PKCS#8 key of ``key_dir`` in the journal key's format.

    For each: the legacy key is decrypted, sealed anew (fresh salt) and written atomically
    beside it; the new file is read back from disk and must decrypt to the same key before the
    legacy file is removed. An upgrade interrupted after the write leaves both; the next run
    checks they hold the same key and removes the legacy one. Nothing weaker stays behind, and
    the key is never in one file only while the other is half written.
    """
    done = []
    for name, legacy_name in LEGACY_KEYS.items():
        legacy, target = key_dir / legacy_name, key_dir / name
        if not legacy.exists():
            continue
        if not is_legacy_pkcs8(legacy):
            raise KeyFileError(
                f"{legacy} is not an encrypted PKCS#8 PEM key; it was left as it is",
                hint="move it away if it is not the lab PKI's key",
            )
        old = pkcs8_der(open_legacy_pkcs8(legacy, passphrase))
        if not target.exists():
            purpose = name.removesuffix(".key")
            sealed = seal_private_key(
                serialization.load_der_private_key(old, password=None),
                passphrase=passphrase,
                purpose=purpose,
            )
            write_atomic(target, sealed, mode=0o600)
        if pkcs8_der(open_sealed_private_key(target, passphrase)) != old:
            raise KeyFileError(
                f"{target} and {legacy} hold different keys; neither was changed",
                hint="keep the one whose certificate is report-signing.cert.pem / "
                "lab-ca.cert.pem and move the other away",
            )
        legacy.unlink()
        fsync_dir(key_dir)
        done.append(KeyUpgrade(legacy=legacy, replacement=target))
    return done


def load_report_signer(
    key_dir: Path, *, passphrase: str, notify: Callable[[str], None] | None = None
) -> ReportSigner:
    """The report-signing key and certificates. Legacy PKCS#8 key files are upgraded first
    (`upgrade_pki_keys`), each upgrade told to ``notify``."""
    if any((key_dir / legacy).exists() for legacy in LEGACY_KEYS.values()):
        for upgrade in upgrade_pki_keys(key_dir, passphrase=passphrase):
            if notify is not None:
                notify(upgrade.notice)
    try:
        cert = x509.load_pem_x509_certificate((key_dir / SIGNING_CERT).read_bytes())
        ca = x509.load_pem_x509_certificate((key_dir / CA_CERT).read_bytes())
        present = (key_dir / SIGNING_KEY).exists()
    except FileNotFoundError:
        present = False
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read the certificates in {key_dir}: {exc}") from None
    if not present:
        raise KeyFileError(
            f"no report-signing certificate in {key_dir}",
            hint="create one with `forensic pki init`",
        )
    key = open_sealed_private_key(key_dir / SIGNING_KEY, passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"{key_dir / SIGNING_KEY} is not an ECDSA key")
    if key.public_key() != cert.public_key():
        raise KeyFileError(
            f"{key_dir / SIGNING_KEY} is not the key of {key_dir / SIGNING_CERT}",
            hint="the key folder was mixed up; restore the pair that `forensic pki init` made",
        )
    return ReportSigner(key=key, certificate=cert, ca_certificate=ca)


def _statement(fingerprint: str, cert_pem: str) -> bytes:
    return canonical(
        {
            "statement": "forensic.pki-binding/1",
            "ed25519_fingerprint": fingerprint,
            "certificate_sha256": sha256_hex(cert_pem.encode("ascii")),
        }
    )


def bind(case: Case, signer: Signer, report_signer: ReportSigner, *, now: dt.datetime) -> Entry:
    """Append the ``pki.bind`` entry: Ed25519 signs the entry, ECDSA signs the statement."""
    cert_pem = report_signer.certificate.public_bytes(serialization.Encoding.PEM).decode()
    ca_pem = report_signer.ca_certificate.public_bytes(serialization.Encoding.PEM).decode()
    signature = report_signer.key.sign(
        _statement(signer.fingerprint, cert_pem), ec.ECDSA(hashes.SHA256())
    )
    with case.writer(signer) as writer:
        return writer.append(
            "pki.bind",
            {
                "certificate": cert_pem,
                "ca_certificate": ca_pem,
                "ed25519_fingerprint": signer.fingerprint,
                "ecdsa_signature": b64e(signature),
            },
            now=now,
        )


def check_binding(entry: Entry) -> dict[str, Any]:
    """Verify a ``pki.bind`` entry (its Ed25519 signature is the journal's business)."""
    p = entry.payload
    try:
        cert = x509.load_pem_x509_certificate(str(p["certificate"]).encode())
        ca = x509.load_pem_x509_certificate(str(p["ca_certificate"]).encode())
        cert.verify_directly_issued_by(ca)
        public = cert.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise VerificationError("the bound certificate is not an ECDSA certificate")
        public.verify(
            b64d(str(p["ecdsa_signature"])),
            _statement(str(p["ed25519_fingerprint"]), str(p["certificate"])),
            ec.ECDSA(hashes.SHA256()),
        )
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        named = [u for u in uris.get_values_for_type(x509.UniformResourceIdentifier)]
    except (KeyError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
        raise VerificationError(f"the PKI binding does not verify ({type(exc).__name__})") from None
    if p["ed25519_fingerprint"] != entry.actor or URN + entry.actor not in named:
        raise VerificationError("the certificate is bound to another examiner's journal key")
    return {"subject": cert.subject.rfc4514_string(), "serial": format(cert.serial_number, "x")}

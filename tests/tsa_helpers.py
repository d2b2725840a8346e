"""A time-stamping authority on loopback for tests: a test root CA and a TSA certificate
(RSA, extended key usage timeStamping, made with cryptography), and pyHanko's
DummyTimeStamper answering RFC 3161 requests behind http.server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class TsaPki:
    root: x509.Certificate
    tsa_cert: x509.Certificate
    tsa_key: rsa.RSAPrivateKey

    @property
    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tsa_pki(label: str) -> TsaPki:
    """A root CA and a TSA certificate it issues, valid 2026-2036."""
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} TSA Root"))
        .issuer_name(_name(f"{label} TSA Root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(root_key, hashes.SHA256())
    )
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} TSA"))
        .issuer_name(root.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + timedelta(days=3650))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(root_key, hashes.SHA256())
    )
    return TsaPki(root, tsa_cert, tsa_key)


def _stamper(pki: TsaPki) -> object:
    from pyhanko.sign.timestamps import DummyTimeStamper

    der = serialization.Encoding.DER
    key = asn1_keys.PrivateKeyInfo.load(
        pki.tsa_key.private_bytes(
            der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(pki.tsa_cert.public_bytes(der)),
        tsa_key=key,
        certs_to_embed=[asn1_x509.Certificate.load(pki.root.public_bytes(der))],
    )


@contextmanager
def loopback_tsa(pki: TsaPki, *, status: int = 200) -> Iterator[str]:
    """Serve RFC 3161 on 127.0.0.1 (a free port) while the block runs; yield its URL.
    ``status`` other than 200 makes it answer that HTTP error."""
    stamper = _stamper(pki)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if status != 200:
                self.send_error(status)
                return
            request = tsp.TimeStampReq.load(body)
            answer = stamper.request_tsa_response(request).dump()  # type: ignore[attr-defined]
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def policy_with_tsa(base: str, url: str, root_pem: str, *, required: bool = True) -> str:
    """``base`` (a policy's text) with a [timestamps] table."""
    return (
        base
        + f'\n[timestamps]\nurl = "{url}"\nrequired = {str(required).lower()}\n'
        + f'trust_root = """\n{root_pem}"""\n'
    )

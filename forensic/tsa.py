"""RFC 3161 trusted timestamps on checkpoints (docs/spec.md §4.1).

A checkpoint (spec §4) proves what the journal held, signed by an examiner; it cannot prove
*when*, because the examiner's clock says so. A time-stamp token from an independent
authority (TSA) does: it signs the SHA-256 of the checkpoint line together with the TSA's
own time. The case's policy names the TSA (``[timestamps] url``), pins its root
certificate(s) (``trust_root``, PEM text inside the policy, so the case's hash-pinned copy
carries it) and says whether work stops without a token (``required``).

A token is kept in the case as ``timestamps/<sha256>.tst`` (DER ``TimeStampToken``), beside
the checkpoint line it covers, ``timestamps/<sha256>.checkpoint``, both named by the SHA-256
of that line (`forensic.store.timestamp_names`). Nothing is added to the journal: an entry
would change the checkpoint that was just stamped.

Requests and responses are built and parsed with asn1crypto; the token's CMS signature and
the TSA certificate's path to the policy's root are checked with pyHanko's
``validate_tst_signed_data`` (pyhanko-certvalidator, offline: no fetching of certificates,
CRLs or OCSP). The HTTP exchange is the standard library's: one POST (RFC 3161 §3.4).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.timestamps import TimeStamper

from forensic.case import Case
from forensic.errors import PolicyError, TimestampError
from forensic.fsutil import write_atomic
from forensic.journal import CHECKPOINT_FILE, Checkpoint, parse_checkpoint
from forensic.policy import TimestampSettings
from forensic.store import TIMESTAMPS_DIR, timestamp_names

#: Seconds to wait for the TSA (connect and answer).
REQUEST_TIMEOUT_S = 15.0
#: A TimeStampResp is a few kilobytes; anything much larger is not one.
MAX_RESPONSE_BYTES = 1 << 20
_SHA256 = "sha256"


def checkpoint_digest(line: bytes) -> bytes:
    """The message imprint of a checkpoint: SHA-256 of its line without the final LF."""
    return hashlib.sha256(line.rstrip(b"\n")).digest()


def build_request(digest: bytes, nonce: int) -> tsp.TimeStampReq:
    """A TimeStampReq for a SHA-256 ``digest``, asking for the TSA's certificate."""
    return tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": tsp.MessageImprint(
                {
                    "hash_algorithm": algos.DigestAlgorithm({"algorithm": _SHA256}),
                    "hashed_message": digest,
                }
            ),
            "nonce": nonce,
            "cert_req": True,
        }
    )


def post_request(url: str, body: bytes, *, timeout: float = REQUEST_TIMEOUT_S) -> bytes:
    """POST a DER ``TimeStampReq`` to the TSA at ``url`` (RFC 3161 §3.4) and return the
    answer's bytes; `TimestampError` when it cannot be reached or answers an HTTP error."""
    # The policy admits only http:// and https:// URLs (forensic.policy), never file:.
    request = urllib.request.Request(  # noqa: S310
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/timestamp-query",
            "Accept": "application/timestamp-reply",
        },
    )
    hint = "check the TSA's URL (the policy's [timestamps] url, or --tsa-url) and the network"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data: bytes = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TimestampError(
            f"the time-stamping authority at {url} answered HTTP {exc.code} ({exc.reason})",
            hint=hint,
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TimestampError(
            f"the time-stamping authority at {url} cannot be reached ({reason})", hint=hint
        ) from None
    if len(data) > MAX_RESPONSE_BYTES:
        raise TimestampError(f"the time-stamping authority at {url} sent more than 1 MiB")
    return data


class HttpTimeStamper(TimeStamper):
    """pyHanko's time-stamping client for PDF signature timestamps, over `post_request`: a TSA
    that cannot be reached is a `TimestampError` naming it (pyHanko's own HTTP clients raise
    aiohttp's or requests' errors, which would end the command as an internal error)."""

    def __init__(self, url: str, *, timeout: float = REQUEST_TIMEOUT_S) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.url = url
        self.timeout = timeout

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        data = await asyncio.to_thread(post_request, self.url, req.dump(), timeout=self.timeout)
        try:
            return tsp.TimeStampResp.load(data)
        except ValueError as exc:
            raise TimestampError(
                f"the time-stamping authority at {self.url} sent no valid RFC 3161 response ({exc})"
            ) from None


def request_token(url: str, digest: bytes, *, timeout: float = REQUEST_TIMEOUT_S) -> bytes:
    """Ask the TSA at ``url`` for a token over ``digest``; return the token (DER
    ``ContentInfo``) once its status, imprint and nonce are the ones asked for.
    `TimestampError` when the TSA cannot be reached, refuses, or answers something else."""
    nonce = secrets.randbits(63)
    data = post_request(url, build_request(digest, nonce).dump(), timeout=timeout)
    try:
        response_value = tsp.TimeStampResp.load(data)
        status = response_value["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            text = "; ".join(response_value["status"]["status_string"].native or [])
            raise TimestampError(
                f"the time-stamping authority at {url} refused the request ({status}"
                + (f": {text}" if text else "")
                + ")"
            )
        token = response_value["time_stamp_token"]
        info = _tst_info(token)
        imprint = info["message_imprint"]
        got_nonce = info["nonce"].native
        if (
            imprint["hash_algorithm"]["algorithm"].native != _SHA256
            or imprint["hashed_message"].native != digest
        ):
            raise TimestampError(
                f"the time-stamping authority at {url} stamped another digest than the one sent"
            )
        if got_nonce != nonce:
            raise TimestampError(
                f"the time-stamping authority at {url} answered with another nonce "
                "(a replayed or misrouted answer)"
            )
        return bytes(token.dump())
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(
            f"the time-stamping authority at {url} sent no valid RFC 3161 response ({exc})"
        ) from None


def _tst_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    if token["content_type"].native != "signed_data":
        raise ValueError("the token is not CMS SignedData")
    encap = token["content"]["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise ValueError("the token does not hold a TSTInfo")
    content = encap["content"]
    info = content.parsed if isinstance(content, core.ParsableOctetString) else None
    if not isinstance(info, tsp.TSTInfo):
        raise ValueError("the token does not hold a TSTInfo")
    return info


@dataclass(frozen=True)
class TokenCheck:
    """What `check_token` found about one token."""

    gen_time: datetime | None
    serial: int | None
    tsa: str  # the signer certificate's subject, as pyHanko prints it
    imprint_ok: bool
    signature_ok: bool
    trusted: bool
    #: Why the token cannot be accepted, one sentence; None when it is accepted.
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "gen_time": None if self.gen_time is None else self.gen_time.isoformat(),
            "serial": self.serial,
            "tsa": self.tsa,
            "imprint_ok": self.imprint_ok,
            "signature_ok": self.signature_ok,
            "trusted": self.trusted,
        }


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """pyHanko logs a traceback for a token that does not chain before it reports it; the
    verdict says it in one sentence instead."""
    logger = logging.getLogger(logger_name)
    before = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(before)


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def check_token(token: bytes, digest: bytes, trust_roots: Sequence[x509.Certificate]) -> TokenCheck:
    """Judge ``token`` (DER) as a timestamp of the SHA-256 ``digest``: its message imprint is
    ``digest``, its CMS signature verifies over its TSTInfo, and its signer's certificate (with
    the time-stamping extended key usage) chains to one of ``trust_roots``, judged at the
    token's own time, offline. Never raises for a bad token: `TokenCheck.problem` says why."""
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    try:
        value = cms.ContentInfo.load(token)
        info = _tst_info(value)
        gen_time: datetime = info["gen_time"].native
        serial = int(info["serial_number"].native)
        imprint = info["message_imprint"]
        imprint_ok = (
            imprint["hash_algorithm"]["algorithm"].native == _SHA256
            and imprint["hashed_message"].native == digest
        )
    except (ValueError, TypeError, KeyError) as exc:
        return TokenCheck(
            None, None, "", False, False, False, f"it is not a timestamp token ({exc})"
        )
    if not trust_roots:
        raise PolicyError("no TSA trust root to judge timestamp tokens against")
    context = ValidationContext(
        trust_roots=[_asn1(c) for c in trust_roots],
        allow_fetching=False,
        moment=gen_time,
        revocation_mode="soft-fail",
    )
    try:
        with _quiet("pyhanko"):
            status = asyncio.run(
                validate_tst_signed_data(value["content"], context, lambda _algorithm: digest)
            )
    except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
        # pyHanko's SignatureValidationError is a ValueError (a malformed or unsupported token).
        return TokenCheck(
            gen_time,
            serial,
            "",
            imprint_ok,
            False,
            False,
            f"its signature cannot be checked ({exc})",
        )
    cert = status.get("signing_cert")
    tsa = "" if cert is None else str(cert.subject.human_friendly)
    # 'intact' is false for a wrong imprint too; the imprint is judged (and named) first.
    signature_ok = bool(status.get("intact")) and bool(status.get("valid"))
    trusted = signature_ok and status.get("trust_problem_indic") is None
    problem = None
    if not imprint_ok:
        problem = "its message imprint is not the SHA-256 of this checkpoint"
    elif not signature_ok:
        problem = "its CMS signature does not verify: the token was altered"
    elif not trusted:
        problem = (
            f"its signer ({tsa or 'unknown'}) does not chain to the TSA trust root in the "
            "case's policy ([timestamps] trust_root)"
        )
    return TokenCheck(gen_time, serial, tsa, imprint_ok, signature_ok, trusted, problem)


@dataclass(frozen=True)
class Stamp:
    """A token taken over a checkpoint and stored in the case."""

    checkpoint_file: str
    token_file: str
    checkpoint_sha256: str
    count: int
    check: TokenCheck
    url: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint_file,
            "token": self.token_file,
            "checkpoint_sha256": self.checkpoint_sha256,
            "entries": self.count,
            "url": self.url,
            **self.check.as_dict(),
        }


def settings_of(case: Case) -> TimestampSettings | None:
    """The case policy's ``[timestamps]`` table, or None."""
    return case.policy().timestamps


def stamp_checkpoint(case: Case, settings: TimestampSettings | None = None) -> Stamp:
    """Take a token over the case's current checkpoint from the policy's TSA, check it
    against the policy's trust root, and store both (a token that does not verify is never
    stored). `TimestampError` when the TSA cannot be reached or its token does not verify;
    `PolicyError` when the case's policy names no TSA."""
    settings = settings if settings is not None else settings_of(case)
    if settings is None:
        raise PolicyError(
            f"the policy of case {case.case_id} has no [timestamps] table, so there is no "
            "time-stamping authority to ask",
            hint="a case's policy is fixed when it is opened; open new cases with a policy that "
            "has [timestamps] url and trust_root",
        )
    raw = case.store.read_bytes(CHECKPOINT_FILE)
    checkpoint: Checkpoint = parse_checkpoint(raw, where=CHECKPOINT_FILE)
    line = raw.rstrip(b"\n")
    digest = checkpoint_digest(line)
    token = request_token(settings.url, digest)
    check = check_token(token, digest, settings.trust_roots)
    if check.problem is not None:
        raise TimestampError(
            f"the token from {settings.url} does not verify: {check.problem}; it was not stored",
            hint="the policy's [timestamps] trust_root must be the root of this TSA",
        )
    cp_rel, token_rel = timestamp_names(digest.hex())
    folder = case.root / TIMESTAMPS_DIR
    folder.mkdir(exist_ok=True)
    if not (case.root / cp_rel).exists():
        write_atomic(case.root / cp_rel, line + b"\n", mode=0o444)
    # A second token over the same checkpoint replaces the first only if there was none.
    if not (case.root / token_rel).exists():
        write_atomic(case.root / token_rel, token, mode=0o444)
    return Stamp(
        checkpoint_file=cp_rel,
        token_file=token_rel,
        checkpoint_sha256=digest.hex(),
        count=int(checkpoint.body["count"]),
        check=check,
        url=settings.url,
    )

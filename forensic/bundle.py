"""Evidence bundles: a case and everything needed to check it, as one BagIt bag (RFC 8493)
that `forensic verify BUNDLE` checks offline, with nothing but this tool (docs/spec.md §12).

A bundle is a folder (or, with ``archive``, a POSIX tar of that folder)::

    bagit.txt                 BagIt-Version 1.0, UTF-8
    bag-info.txt              the case, the bundle format, Payload-Oxum, what was left out
    manifest-sha256.txt       SHA-256 of every payload file (data/...)
    tagmanifest-sha256.txt    SHA-256 of the three tag files above
    data/case/                the case folder: case.json, policy.toml, journal.jsonl,
                              journal.checkpoint, evidence/ (unless the policy keeps originals in
                              the evidence store), derived/ (outputs, provenance maps), reports/
                              (the signed reports), keys/, timestamps/ (RFC 3161 tokens)
    data/certificates/        the lab CA and report certificates that pki.bind entries bind,
                              and the TSA roots the policy pins (copies, checked on verify)
    data/templates/           the report templates the reports were built with, when known
                              (verify rebuilds each report from them)
    data/originals-sha256.txt when the originals were left out: their recorded SHA-256

Written here rather than with the ``bagit`` package: the format is four text files, and the
verifier must name the one file that differs in this tool's verdict style, refuse links and
special files as every other read here does (``forensic.fsutil``), and then run the case and
report checks on what it verified; the package's validator does none of that.

A tar and not a zip: tar keeps the read-only modes of evidence and outputs, streams without a
central directory, and Python's ``tarfile`` extracts it with the ``data`` filter (no absolute
paths, links out of the folder or device files). The members are stored uncompressed: images
and videos are compressed already, and ``tar -xf`` gives back the folder byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from forensic import __version__
from forensic.case import MANIFEST, POLICY_COPY, Case, open_case
from forensic.errors import ForensicError, InputError, TimestampError, VerificationError
from forensic.fsutil import fsync_dir, open_regular_file, write_refused
from forensic.hashing import sha256_stream
from forensic.journal import CHECKPOINT_FILE, JOURNAL_FILE, PENDING_FILE, read_entries
from forensic.records import PKI_BIND, exhibits, reports
from forensic.store import (
    DERIVED_DIR,
    EVIDENCE_DIR,
    KEYS_DIR,
    REPORTS_DIR,
    STAGING_PREFIX,
    TIMESTAMPS_DIR,
)
from forensic.timeutil import utc_timestamp
from forensic.verdicts import Check, CheckFailed, CheckResults, run_checks
from forensic.verify import verify_case

if TYPE_CHECKING:
    from forensic.report.templates import Templates

BUNDLE_FORMAT = "forensic-bundle/1"
BAGIT_TXT = "bagit.txt"
BAG_INFO = "bag-info.txt"
MANIFEST_FILE = "manifest-sha256.txt"
TAG_MANIFEST = "tagmanifest-sha256.txt"
TAG_FILES = (BAGIT_TXT, BAG_INFO, MANIFEST_FILE)
PAYLOAD = "data"
CASE_IN_BAG = f"{PAYLOAD}/case"
CERTS_IN_BAG = f"{PAYLOAD}/certificates"
TEMPLATES_IN_BAG = f"{PAYLOAD}/templates"
ORIGINALS_LIST = f"{PAYLOAD}/originals-sha256.txt"
BAGIT_DECLARATION = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
_CASE_ROOT_FILES = (MANIFEST, POLICY_COPY, JOURNAL_FILE, CHECKPOINT_FILE, PENDING_FILE)
_CASE_DIRS = (EVIDENCE_DIR, DERIVED_DIR, REPORTS_DIR, KEYS_DIR, TIMESTAMPS_DIR)
#: Tag files are a few kilobytes; a manifest lists one line per file.
_MAX_TAG_BYTES = 64 << 20

BUNDLE_CHECKS = (
    "the bag's declaration, bag-info and tag manifest hold",
    "every payload file matches manifest-sha256.txt; none is missing or extra",
    "the case inside verifies",
    "the certificates are those the case binds and its policy pins",
    "every signed report in the bundle verifies against the case",
)


def is_bundle(path: Path) -> bool:
    """A bundle folder (any BagIt tag file or a data/ folder, and no case.json) or a tar."""
    if path.is_dir():
        if (path / MANIFEST).exists():
            return False
        return any((path / n).exists() for n in (*TAG_FILES, TAG_MANIFEST, PAYLOAD))
    if path.is_file():
        try:
            with open_regular_file(path) as fh:
                head = fh.read(8)
            return not head.startswith(b"%PDF") and tarfile.is_tarfile(path)
        except OSError:
            return False  # the report or case reader names what cannot be read
    return False


# -- writing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundled:
    """A bundle written."""

    path: Path
    case_id: str
    files: int
    bytes: int
    originals: str  # "include" or "hashes"
    archive: bool
    timestamp: dict[str, Any] | None  # the token taken over the checkpoint, if one was
    notes: list[str]
    sha256: str | None  # of the archive file

    def as_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.path),
            "case_id": self.case_id,
            "files": self.files,
            "bytes": self.bytes,
            "originals": self.originals,
            "archive": self.archive,
            "sha256": self.sha256,
            "timestamp": self.timestamp,
            "notes": self.notes,
        }


def _hash_copy(src: Path, dst: Path) -> tuple[str, int]:
    """Copy ``src`` (a regular file) to ``dst`` with its permission bits; its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open_regular_file(src) as fin, open(dst, "xb") as fout:
        while chunk := fin.read(1 << 20):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        os.fsync(fout.fileno())
        mode = os.fstat(fin.fileno()).st_mode
    os.chmod(dst, stat.S_IMODE(mode))
    return digest.hexdigest(), size


def _case_files(root: Path, *, with_evidence: bool) -> Iterator[str]:
    """The case's files to bundle (relative paths): its root files and the regular files of
    its folders, without temporary files of interrupted commands."""
    for name in _CASE_ROOT_FILES:
        if (root / name).is_file():
            yield name
    for folder in _CASE_DIRS:
        if folder == EVIDENCE_DIR and not with_evidence:
            continue
        path = root / folder
        if not path.is_dir() or path.is_symlink():
            continue
        for name in sorted(os.listdir(path)):
            full = path / name
            if name.startswith((STAGING_PREFIX, ".incoming")) or full.is_symlink():
                continue
            if full.is_file():
                yield f"{folder}/{name}"


def _certificates(case: Case) -> dict[str, bytes]:
    """``{file name: PEM}`` of every certificate the journal binds and the policy pins."""
    out: dict[str, bytes] = {}
    for e in case.entries():
        if e.kind == PKI_BIND.name:
            fp16 = e.actor[:16]
            out[f"report-signing-{fp16}.cert.pem"] = str(e.payload["certificate"]).encode()
            out[f"lab-ca-{fp16}.cert.pem"] = str(e.payload["ca_certificate"]).encode()
    settings = case.policy().timestamps
    for i, root in enumerate(settings.trust_roots if settings else (), start=1):
        out[f"tsa-root-{i}.cert.pem"] = root.public_bytes(serialization.Encoding.PEM)
    return out


def _report_templates(case: Case, templates_dir: Path | None) -> Templates | None:
    """The templates folder to carry: the one given (or configured) when its hash is the one
    every report of the case was built with; else None."""
    from forensic.report.templates import load_templates

    issued = [r for r in reports(case.entries()) if not r.approval]
    if not issued:
        return None
    try:
        templates = load_templates(templates_dir)
    except ForensicError:
        return None
    wanted = {str(r.payload.get("templates", {}).get("sha256")) for r in issued}
    if wanted != {templates.sha256}:
        return None
    return templates


def write_bundle(
    case: Case,
    out: Path,
    *,
    now: datetime,
    archive: bool = False,
    templates_dir: Path | None = None,
    stamp: Callable[[Case], dict[str, Any]] | None = None,
) -> Bundled:
    """Write ``case`` as a bundle at ``out`` (a new folder, or with ``archive``, or a name
    ending in ``.tar``, a new tar file). The case must verify; ``stamp`` (the caller's RFC
    3161 client, for a policy with ``[timestamps]``) takes a token over its checkpoint first,
    so the bundle carries it."""
    archive = archive or out.suffix == ".tar"  # a folder named *.tar would mislead
    if out.exists() or out.is_symlink():
        raise InputError(f"{out} exists; a bundle is written only to a new path")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent} is not a folder")
    notes: list[str] = []
    policy = case.policy()
    verdict = verify_case(case.root)
    if not verdict.ok:
        raise VerificationError(
            f"case {case.case_id} does not verify ({verdict.failure}); no bundle is made of a "
            "case that does not verify",
            hint="run `forensic verify CASE` for the details",
        )
    settings = policy.timestamps
    timestamp = None
    if settings is not None and stamp is not None:
        # The token is checked against the policy's root before it is stored (forensic.tsa).
        try:
            timestamp = stamp(case)
        except TimestampError as exc:
            if settings.required:
                raise TimestampError(
                    f"{exc.message}; the policy requires a trusted timestamp, so no bundle was "
                    "written",
                    hint=exc.hint,
                ) from None
            notes.append(f"no timestamp was taken ({exc.message}); timestamps are optional here")
    originals = policy.bundle_originals
    try:
        work = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}bundle-", dir=out.parent))
    except OSError as exc:
        raise write_refused(out.parent, exc, what=f"bundle {out}") from None
    try:
        bag = work / (out.name if not archive else _archive_stem(out))
        bag.mkdir()
        manifest: dict[str, str] = {}
        total = 0
        for rel in _case_files(case.root, with_evidence=originals == "include"):
            digest, size = _hash_copy(case.root / rel, bag / CASE_IN_BAG / rel)
            manifest[f"{CASE_IN_BAG}/{rel}"] = digest
            total += size
        extra: dict[str, bytes] = {
            f"{CERTS_IN_BAG}/{name}": pem for name, pem in _certificates(case).items()
        }
        if originals == "hashes":
            lines = [f"{x.sha256}  {x.stored}  {x.exhibit_id}\n" for x in exhibits(case.entries())]
            extra[ORIGINALS_LIST] = "".join(lines).encode()
        for rel, data in extra.items():
            (bag / rel).parent.mkdir(parents=True, exist_ok=True)
            (bag / rel).write_bytes(data)
            manifest[rel] = hashlib.sha256(data).hexdigest()
            total += len(data)
        templates = _report_templates(case, templates_dir)
        if templates is not None:
            for name in sorted(templates.files):
                rel = f"{TEMPLATES_IN_BAG}/{name}"
                digest, size = _hash_copy(templates.folder / name, bag / rel)
                manifest[rel] = digest
                total += size
        elif any(not r.approval for r in reports(case.entries())):
            notes.append(
                "the report templates were not included (pass --templates with the lab's "
                "folder): verify checks the reports' signatures but cannot rebuild them"
            )
        _write_tags(bag, case, manifest, total, originals=originals, now=now)
        if not archive:
            os.replace(bag, out)
            fsync_dir(out.parent)
            return Bundled(
                out, case.case_id, len(manifest), total, originals, False, timestamp, notes, None
            )
        tmp_tar = work / "bundle.tar"
        _write_tar(bag, tmp_tar, mtime=int(now.timestamp()))
        with open(tmp_tar, "rb") as fh:
            os.fsync(fh.fileno())
            digest = sha256_stream(fh)[0]
        os.replace(tmp_tar, out)
        fsync_dir(out.parent)
        return Bundled(
            out, case.case_id, len(manifest), total, originals, True, timestamp, notes, digest
        )
    finally:
        _remove_tree(work)


def _archive_stem(out: Path) -> str:
    name = out.name
    return name[: -len(".tar")] if name.endswith(".tar") and len(name) > 4 else f"{name}.bag"


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    for dirpath, _dirs, files in os.walk(path):
        os.chmod(dirpath, 0o700)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o600)
    shutil.rmtree(path)


def _write_tags(
    bag: Path,
    case: Case,
    manifest: dict[str, str],
    total: int,
    *,
    originals: str,
    now: datetime,
) -> None:
    lines = "".join(f"{digest}  {rel}\n" for rel, digest in sorted(manifest.items()))
    info = [
        ("Bag-Software-Agent", f"forensic {__version__}"),
        ("Bagging-Date", now.date().isoformat()),
        ("Bagging-Time", utc_timestamp(now)),
        ("External-Identifier", case.case_id),
        ("External-Description", f"Evidence bundle of case {case.case_id}"),
        ("Forensic-Bundle-Format", BUNDLE_FORMAT),
        ("Forensic-Originals", originals),
        ("Payload-Oxum", f"{total}.{len(manifest)}"),
    ]
    tags = {
        BAGIT_TXT: BAGIT_DECLARATION,
        BAG_INFO: "".join(f"{k}: {_one_line(v)}\n" for k, v in info).encode("utf-8"),
        MANIFEST_FILE: lines.encode("utf-8"),
    }
    for name, data in tags.items():
        (bag / name).write_bytes(data)
    tag_lines = "".join(
        f"{hashlib.sha256(tags[name]).hexdigest()}  {name}\n" for name in sorted(tags)
    )
    (bag / TAG_MANIFEST).write_bytes(tag_lines.encode("utf-8"))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _write_tar(bag: Path, out: Path, *, mtime: int) -> None:
    """A POSIX (pax) tar of ``bag`` under its own name, sorted, with fixed owners and times."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = mtime
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(bag, arcname=bag.name, recursive=False, filter=clean)
        for dirpath, dirnames, filenames in os.walk(bag):
            dirnames.sort()
            here = Path(dirpath)
            for name in [*sorted(dirnames), *sorted(filenames)]:
                path = here / name
                arc = f"{bag.name}/{path.relative_to(bag).as_posix()}"
                tar.add(path, arcname=arc, recursive=False, filter=clean)


# -- verifying -----------------------------------------------------------------------------------


@dataclass
class BundleVerdict(CheckResults):
    """A bundle's verdict: its own checks, the case's verdict and each report's."""

    path: Path
    checks: list[Check] = field(default_factory=list)
    case: dict[str, Any] | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failure(self) -> str | None:
        failed = self.first_failure
        return None if failed is None else failed.detail

    def as_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.path),
            "ok": self.ok,
            "failure": self.failure,
            "checks": [c.as_dict() for c in self.checks],
            "case": self.case,
            "reports": self.reports,
        }


@dataclass
class _BagState:
    root: Path
    info: dict[str, str] = field(default_factory=dict)
    manifest: dict[str, str] = field(default_factory=dict)


def verify_bundle(
    path: Path,
    *,
    trusted: Sequence[Ed25519PublicKey] = (),
    pixels: bool = False,
    replay: bool = False,
) -> BundleVerdict:
    """Check a bundle folder or tar (see the module docstring). Never raises for a bad
    bundle; a tar is unpacked into a temporary folder first). ``trusted`` pins the keys the
    case must have been opened with (``verify --trust``)."""
    verdict = BundleVerdict(path=path)
    if path.is_dir():
        _verify_folder(path, verdict, trusted, pixels=pixels, replay=replay)
        return verdict
    with tempfile.TemporaryDirectory(prefix="forensic-bundle-") as tmp:
        try:
            root = _unpack(path, Path(tmp))
        except ForensicError as exc:
            verdict.checks = run_checks(
                [(BUNDLE_CHECKS[0], _raiser(exc.message))]
                + [(name, _raiser("")) for name in BUNDLE_CHECKS[1:]],
                blocking={1},
            )
            return verdict
        _verify_folder(root, verdict, trusted, pixels=pixels, replay=replay)
    return verdict


def _raiser(message: str) -> Callable[[Check], None]:
    def fail(_check: Check) -> None:
        raise CheckFailed(message)

    return fail


def _keep_read_only(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """Python's ``data`` filter, except that a read-only file stays read-only (the filter
    adds the owner's write bit, and verify would note every evidence file as writable)."""
    safe = tarfile.data_filter(member, dest)
    if safe is not None and safe.isreg():
        safe = safe.replace(mode=member.mode & 0o755, deep=False)
    return safe


def _unpack(archive: Path, dest: Path) -> Path:
    """Extract a bundle tar (``data`` filter: no absolute paths, links outside, devices) and
    return the one folder it holds."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            tops = {m.name.split("/", 1)[0] for m in tar.getmembers()}
            if len(tops) != 1:
                raise InputError(f"{archive}: a bundle archive holds one folder, not {len(tops)}")
            tar.extractall(dest, filter=_keep_read_only)  # noqa: S202 (the data filter, above)
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"{archive}: not a readable tar archive ({exc})") from None
    root = dest / tops.pop()
    if not root.is_dir():
        raise InputError(f"{archive}: its one member is not a folder")
    return root


def _verify_folder(
    root: Path,
    verdict: BundleVerdict,
    trusted: Sequence[Ed25519PublicKey],
    *,
    pixels: bool,
    replay: bool,
) -> None:
    state = _BagState(root)
    verdict.checks = run_checks(
        [
            (BUNDLE_CHECKS[0], lambda c: _check_tags(state, c)),
            (BUNDLE_CHECKS[1], lambda c: _check_payload(state, c)),
            (
                BUNDLE_CHECKS[2],
                lambda c: _check_case(state, c, verdict, trusted, pixels, replay),
            ),
            (BUNDLE_CHECKS[3], lambda c: _check_certificates(state, c)),
            (BUNDLE_CHECKS[4], lambda c: _check_reports(state, c, verdict, trusted)),
        ],
        # A bag whose files are not the ones it lists proves nothing about the case inside.
        blocking={1, 2},
    )


def _read_tag(root: Path, name: str) -> bytes:
    path = root / name
    if path.is_symlink():
        raise CheckFailed(f"{name} is a symbolic link, which a bundle never holds")
    try:
        with open_regular_file(path) as fh:
            data = fh.read(_MAX_TAG_BYTES + 1)
    except FileNotFoundError:
        raise CheckFailed(f"{name} is missing: every forensic bundle has it") from None
    except OSError as exc:
        raise CheckFailed(f"{name} cannot be read ({exc.strerror})") from None
    if len(data) > _MAX_TAG_BYTES:
        raise CheckFailed(f"{name} is larger than any tag file of a bundle")
    return data


def _parse_manifest(data: bytes, name: str) -> dict[str, str]:
    """``{path: sha256}`` from a BagIt manifest; `CheckFailed` naming the line otherwise."""
    out: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckFailed(f"{name} is not UTF-8 text") from None
    if text and not text.endswith("\n"):
        raise CheckFailed(f"{name} does not end with a line feed: it was cut or edited")
    for number, line in enumerate(text.splitlines(), start=1):
        digest, sep, rel = line.partition("  ")
        if (
            not sep
            or len(digest) != 64
            or any(ch not in "0123456789abcdef" for ch in digest)
            or not rel
            or rel in out
        ):
            raise CheckFailed(f"{name} line {number} is not '<sha256>  <path>' (or repeats a path)")
        if rel.startswith("/") or ".." in rel.split("/") or "\\" in rel:
            raise CheckFailed(f"{name} line {number} names a path outside the bag: {rel!r}")
        out[rel] = digest
    return out


def _check_tags(state: _BagState, check: Check) -> None:
    root = state.root
    tags = _parse_manifest(_read_tag(root, TAG_MANIFEST), TAG_MANIFEST)
    for name in TAG_FILES:
        data = _read_tag(root, name)
        recorded = tags.pop(name, None)
        if recorded is None:
            raise CheckFailed(f"{TAG_MANIFEST} does not list {name}")
        if hashlib.sha256(data).hexdigest() != recorded:
            raise CheckFailed(
                f"{name} does not match its SHA-256 in {TAG_MANIFEST}: it was changed"
            )
    if tags:
        raise CheckFailed(
            f"{TAG_MANIFEST} lists {', '.join(sorted(tags))}, which a forensic bundle does not have"
        )
    if _read_tag(root, BAGIT_TXT) != BAGIT_DECLARATION:
        raise CheckFailed(f"{BAGIT_TXT} is not the BagIt 1.0 declaration (UTF-8)")
    for name in sorted(os.listdir(root)):
        if name not in (*TAG_FILES, TAG_MANIFEST, PAYLOAD):
            raise CheckFailed(f"{name} is in the bundle but is not part of a forensic bag")
    info: dict[str, str] = {}
    for line in _read_tag(root, BAG_INFO).decode("utf-8").splitlines():
        key, sep, value = line.partition(": ")
        if not sep:
            raise CheckFailed(f"{BAG_INFO}: the line {line[:40]!r} is not 'Label: value'")
        info[key] = value
    if info.get("Forensic-Bundle-Format") != BUNDLE_FORMAT:
        raise CheckFailed(f"{BAG_INFO} does not declare Forensic-Bundle-Format: {BUNDLE_FORMAT}")
    state.info = info
    state.manifest = _parse_manifest(_read_tag(root, MANIFEST_FILE), MANIFEST_FILE)
    check.detail = (
        f"BagIt 1.0, case {info.get('External-Identifier')}, bagged {info.get('Bagging-Time')}, "
        f"originals: {info.get('Forensic-Originals')}"
    )


def _check_payload(state: _BagState, check: Check) -> None:
    root = state.root
    listed = dict(state.manifest)
    total = 0
    count = 0
    payload = root / PAYLOAD
    if not payload.is_dir() or payload.is_symlink():
        raise CheckFailed(f"{PAYLOAD}/ is missing: the bundle has no payload")
    for dirpath, dirnames, filenames in os.walk(payload):
        here = Path(dirpath)
        for name in sorted(dirnames):
            if (here / name).is_symlink():
                rel = (here / name).relative_to(root).as_posix()
                raise CheckFailed(f"{rel} is a symbolic link, which a bundle never holds")
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise CheckFailed(f"{rel} is a symbolic link, which a bundle never holds")
            recorded = listed.pop(rel, None)
            if recorded is None:
                raise CheckFailed(f"{rel} is in the bundle but not in {MANIFEST_FILE}")
            try:
                with open_regular_file(path) as fh:
                    digest = sha256_stream(fh)[0]
                    total += os.fstat(fh.fileno()).st_size
            except OSError as exc:
                raise CheckFailed(f"{rel} cannot be read ({exc.strerror})") from None
            if digest != recorded:
                raise CheckFailed(f"{rel} does not match its SHA-256 in {MANIFEST_FILE}")
            count += 1
    if listed:
        missing = sorted(listed)
        raise CheckFailed(
            f"{missing[0]} is missing: {MANIFEST_FILE} lists it"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    oxum = state.info.get("Payload-Oxum")
    if oxum != f"{total}.{count}":
        raise CheckFailed(
            f"{BAG_INFO}: Payload-Oxum is {oxum}, but the payload holds {count} file(s) of "
            f"{total} bytes"
        )
    check.detail = f"{count} file(s), {total:,} bytes"


def _check_case(
    state: _BagState,
    check: Check,
    verdict: BundleVerdict,
    trusted: Sequence[Ed25519PublicKey],
    pixels: bool,
    replay: bool,
) -> None:
    withheld = state.info.get("Forensic-Originals") == "hashes"
    case_dir = state.root / CASE_IN_BAG
    result = verify_case(
        case_dir,
        trusted=trusted,
        pixels=pixels and not withheld,
        replay=replay and not withheld,
        evidence_withheld=withheld,
    )
    verdict.case = result.as_dict()
    for c in result.checks:
        check.notes += [f"case check {c.number}: {n}" for n in c.notes]
    if not result.ok:
        failed = result.first_failure
        assert failed is not None
        raise CheckFailed(f"case check {failed.number} ({failed.name}): {failed.detail}")
    if withheld:
        _check_originals_list(state, case_dir)
    check.detail = f"{len(result.checks)} case checks passed" + (
        "; originals kept in the evidence store (their SHA-256 are in the journal)"
        if withheld
        else ""
    )
    if withheld and (pixels or replay):
        check.notes.append("--pixels and --replay need the originals, which are not bundled")


def _check_originals_list(state: _BagState, case_dir: Path) -> None:
    items = exhibits(read_entries(case_dir))
    expected = "".join(f"{x.sha256}  {x.stored}  {x.exhibit_id}\n" for x in items).encode()
    try:
        listed = (state.root / ORIGINALS_LIST).read_bytes()
    except OSError:
        raise CheckFailed(f"{ORIGINALS_LIST} is missing") from None
    if listed != expected:
        raise CheckFailed(f"{ORIGINALS_LIST} is not the list of hashes the journal records")


def _check_certificates(state: _BagState, check: Check) -> None:
    folder = state.root / CERTS_IN_BAG
    case = open_case(state.root / CASE_IN_BAG)
    expected = _certificates(case)
    present = sorted(os.listdir(folder)) if folder.is_dir() else []
    for name in present:
        rel = f"{CERTS_IN_BAG}/{name}"
        want = expected.pop(name, None)
        if want is None:
            raise CheckFailed(f"{rel} is not a certificate the case binds or its policy pins")
        data = (folder / name).read_bytes()
        try:
            same = x509.load_pem_x509_certificate(data) == x509.load_pem_x509_certificate(want)
        except ValueError:
            same = False
        if not same:
            raise CheckFailed(f"{rel} is not the certificate the case records under that name")
    if expected:
        raise CheckFailed(f"{CERTS_IN_BAG}/{sorted(expected)[0]} is missing")
    check.detail = f"{len(present)} certificate(s)"


def _check_reports(
    state: _BagState, check: Check, verdict: BundleVerdict, trusted: Sequence[Ed25519PublicKey]
) -> None:
    from forensic.report import verify_report

    case_dir = state.root / CASE_IN_BAG
    templates = state.root / TEMPLATES_IN_BAG
    records = reports(read_entries(case_dir))
    # The latest copy of each report: an approval's copy holds the signature too.
    latest: dict[int, str] = {}
    for r in records:
        latest[r.number] = r.stored
    for number, stored in sorted(latest.items()):
        result = verify_report(
            case_dir / stored,
            case_dir=case_dir,
            templates_dir=templates if templates.is_dir() else None,
            trusted=trusted,
        )
        verdict.reports.append(result.as_dict())
        for c in result.checks:
            check.notes += [f"report {number} check {c.number}: {n}" for n in c.notes]
        if not result.ok:
            failed = result.first_failure
            assert failed is not None
            raise CheckFailed(f"report {number} ({stored}): {failed.name}: {failed.detail}")
    if not templates.is_dir() and latest:
        check.notes.append("no report templates in the bundle: the reports were not rebuilt")
    check.detail = f"{len(latest)} report(s) verified"

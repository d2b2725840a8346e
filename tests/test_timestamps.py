"""RFC 3161 timestamps on checkpoints (docs/spec.md §4.1), against a TSA on loopback that the
tests start (tests/tsa_helpers.py): a token over a checkpoint verifies; a token for another
checkpoint, an altered token and a token from a TSA outside the policy's trust root fail
with the token named; a required TSA that cannot be reached stops the command."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from forensic.case import Case, init_case
from forensic.errors import PolicyError, TimestampError
from forensic.ingest import ingest
from forensic.keys import Signer
from forensic.policy import default_policy_path, parse_policy
from forensic.store import TIMESTAMPS_DIR
from forensic.tsa import (
    HttpTimeStamper,
    check_token,
    checkpoint_digest,
    request_token,
    stamp_checkpoint,
)
from forensic.verify import verify_case
from tests.conftest import NOW, Run
from tests.tsa_helpers import TsaPki, loopback_tsa, make_tsa_pki, policy_with_tsa


@pytest.fixture(scope="module")
def lab_tsa() -> TsaPki:
    return make_tsa_pki("Lab")


@pytest.fixture(scope="module")
def rogue_tsa() -> TsaPki:
    return make_tsa_pki("Rogue")


@pytest.fixture(scope="module")
def tsa_url(lab_tsa: TsaPki) -> Iterator[str]:
    with loopback_tsa(lab_tsa) as url:
        yield url


def _case(root: Path, signer: Signer, url: str, pki: TsaPki, *, required: bool = True) -> Case:
    base = default_policy_path().read_text("utf-8")
    policy = root / "policy.toml"
    policy.write_text(policy_with_tsa(base, url, pki.root_pem, required=required), "utf-8")
    return init_case(
        root / "case", case_id="TS-1", title="T", policy_path=policy, signer=signer, now=NOW
    )


def _check4(case: Case) -> tuple[bool, str, list[str]]:
    verdict = verify_case(case.root)
    check = verdict.checks[3]
    return verdict.ok, check.detail, check.notes


def test_a_token_over_the_checkpoint_verifies(
    tmp_path: Path, signer: Signer, tsa_url: str, lab_tsa: TsaPki
) -> None:
    case = _case(tmp_path, signer, tsa_url, lab_tsa)
    line = (case.root / "journal.checkpoint").read_bytes()
    stamp = stamp_checkpoint(case)
    assert stamp.checkpoint_sha256 == checkpoint_digest(line).hex()
    assert (case.root / stamp.checkpoint_file).read_bytes() == line
    assert stamp.check.trusted
    assert stamp.check.tsa == "Common Name: Lab TSA"
    verdict = verify_case(case.root)
    assert verdict.ok, verdict.failure
    assert "1 timestamp token(s) verified, the latest over 1 entries" in verdict.checks[3].detail
    assert verdict.timestamps[0]["token"] == stamp.token_file
    assert not verdict.checks[7].notes  # timestamps/ is the tool's own folder


def test_a_token_for_another_checkpoint_fails(
    tmp_path: Path, signer: Signer, tsa_url: str, lab_tsa: TsaPki, media: Path
) -> None:
    case = _case(tmp_path, signer, tsa_url, lab_tsa)
    first = stamp_checkpoint(case)
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    second = stamp_checkpoint(case)
    ok, detail, notes = _check4(case)
    assert ok
    assert "2 timestamp token(s) verified, the latest over 2 entries" in detail
    assert not notes
    # The second checkpoint's token put in place of the first's.
    token = case.root / first.token_file
    token.chmod(0o644)
    shutil.copyfile(case.root / second.token_file, token)
    ok, detail, _ = _check4(case)
    assert not ok
    assert detail == (
        f"{first.token_file}: its message imprint is not the SHA-256 of this checkpoint"
    )


def test_an_altered_token_or_checkpoint_copy_fails(
    tmp_path: Path, signer: Signer, tsa_url: str, lab_tsa: TsaPki
) -> None:
    case = _case(tmp_path, signer, tsa_url, lab_tsa)
    stamp = stamp_checkpoint(case)
    token = case.root / stamp.token_file
    data = token.read_bytes()
    token.chmod(0o644)
    # The last bytes are the TSA's RSA signature.
    token.write_bytes(data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])
    ok, detail, _ = _check4(case)
    assert not ok
    assert detail.startswith(f"{stamp.token_file}: its CMS signature does not verify")
    token.write_bytes(data)
    copy = case.root / stamp.checkpoint_file
    copy.chmod(0o644)
    copy.write_bytes(copy.read_bytes().replace(b'"', b"'", 1))
    ok, detail, _ = _check4(case)
    assert not ok
    assert detail == (
        f"{stamp.checkpoint_file} is not the checkpoint its name says: its SHA-256 differs"
    )


def test_a_token_from_a_tsa_outside_the_trust_root_is_reported(
    tmp_path: Path, signer: Signer, tsa_url: str, lab_tsa: TsaPki, rogue_tsa: TsaPki
) -> None:
    case = _case(tmp_path, signer, tsa_url, lab_tsa)
    stamp = stamp_checkpoint(case)
    digest = bytes.fromhex(stamp.checkpoint_sha256)
    with loopback_tsa(rogue_tsa) as rogue_url:
        rogue = request_token(rogue_url, digest)
    # The rogue token is a sound token over this very checkpoint...
    assert check_token(rogue, digest, [rogue_tsa.root]).problem is None
    token = case.root / stamp.token_file
    token.chmod(0o644)
    token.write_bytes(rogue)
    ok, detail, _ = _check4(case)
    assert not ok
    assert detail == (
        f"{stamp.token_file}: its signer (Common Name: Rogue TSA) does not chain to the TSA "
        "trust root in the case's policy ([timestamps] trust_root)"
    )


def test_the_journal_must_extend_a_timestamped_checkpoint(
    tmp_path: Path, signer: Signer, tsa_url: str, lab_tsa: TsaPki, media: Path
) -> None:
    case = _case(tmp_path, signer, tsa_url, lab_tsa)
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    stamp = stamp_checkpoint(case)
    # Planted into a case opened identically (the same case.open entry) but without the
    # ingest: as if the journal were rolled back to before it.
    (tmp_path / "other").mkdir()
    other = _case(tmp_path / "other", signer, tsa_url, lab_tsa)
    (other.root / TIMESTAMPS_DIR).mkdir()
    for rel in (stamp.checkpoint_file, stamp.token_file):
        shutil.copyfile(case.root / rel, other.root / rel)
    ok, detail, _ = _check4(other)
    assert not ok
    assert detail == (
        f"the journal does not extend the timestamped checkpoint {stamp.checkpoint_file} "
        "(2 entries): entries it covers were removed or changed"
    )


def test_a_required_tsa_that_cannot_be_reached_stops_the_command(
    tmp_path: Path, signer: Signer, lab_tsa: TsaPki, run_cli: Run
) -> None:
    with loopback_tsa(lab_tsa) as url:
        pass  # the port is closed again
    case = _case(tmp_path, signer, url, lab_tsa)
    with pytest.raises(TimestampError, match=r"cannot be reached"):
        stamp_checkpoint(case)
    assert not (case.root / TIMESTAMPS_DIR).exists()
    # The PDF signature's client too: an error naming the TSA, not aiohttp's (exit 70).
    with pytest.raises(TimestampError, match=r"cannot be reached"):
        asyncio.run(HttpTimeStamper(url).async_timestamp(bytes(32), "sha256"))
    code, out, _ = run_cli("timestamp", case.root, "--json")
    assert code == 2
    error = json.loads(out)["error"]
    assert f"the time-stamping authority at {url} cannot be reached" in error["message"]
    code, out, _ = run_cli("bundle", case.root, tmp_path / "bundle", "--json")
    assert code == 2
    assert "the policy requires a trusted timestamp" in out
    assert not (tmp_path / "bundle").exists()
    # A note in verify: required, but nothing stamped yet.
    ok, _, notes = _check4(case)
    assert ok
    assert any("requires trusted timestamps" in n for n in notes)


def test_a_tsa_that_answers_an_error_is_named(
    tmp_path: Path, signer: Signer, lab_tsa: TsaPki
) -> None:
    with loopback_tsa(lab_tsa, status=503) as url:
        case = _case(tmp_path, signer, url, lab_tsa)
        with pytest.raises(TimestampError, match=r"answered HTTP 503"):
            stamp_checkpoint(case)


def test_cli_timestamp_json(
    tmp_path: Path, signer: Signer, tsa_url: str, lab_tsa: TsaPki, run_cli: Run
) -> None:
    case = _case(tmp_path, signer, tsa_url, lab_tsa)
    code, out, err = run_cli("timestamp", case.root, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["case_id"] == "TS-1"
    assert result["trusted"] is True
    assert (case.root / result["token"]).is_file()
    code, out, _ = run_cli("verify", case.root, "--json")
    assert code == 0
    assert json.loads(out)["timestamps"][0]["token"] == result["token"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('url = "ftp://x"\ntrust_root = "x"', "timestamps.url is 'ftp://x'"),
        ('url = "http://127.0.0.1/"\ntrust_root = "no pem"', "timestamps.trust_root holds no"),
        ('url = "http://127.0.0.1/"', "missing timestamps.trust_root"),
        ('url = "http://x/"\ntrust_root = "x"\nrequire = true', "unknown key timestamps.require"),
    ],
)
def test_bad_timestamp_tables_are_refused_naming_the_key(table: str, message: str) -> None:
    base = default_policy_path().read_text("utf-8")
    with pytest.raises(PolicyError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_policy(f"{base}\n[timestamps]\n{table}\n".encode(), where="p.toml")


def test_a_report_signature_timestamp_is_judged_against_the_policy_root(
    tmp_path: Path,
    signer: Signer,
    key_dir: Path,
    tsa_url: str,
    lab_tsa: TsaPki,
    rogue_tsa: TsaPki,
    run_cli: Run,
) -> None:
    """`forensic report` countersigns with the policy's TSA; verify judges that TSA against
    the policy's trust root (it only noted "not checked" before)."""
    from forensic.pki import bind, init_pki
    from forensic.report import issue_report, verify_report
    from tests.conftest import PASSPHRASE

    keys = tmp_path / "keys"
    shutil.copytree(key_dir, keys)
    report_signer = init_pki(keys, signer, passphrase=PASSPHRASE, lab="Lab", now=NOW)
    case = _case(tmp_path, signer, tsa_url, lab_tsa)
    bind(case, signer, report_signer, now=NOW)
    code, _, err = run_cli("report", case.root, "--out", tmp_path / "r.pdf", "--key-dir", keys)
    assert code == 0, err
    verdict = verify_report(tmp_path / "r.pdf", case_dir=case.root)
    assert verdict.ok, verdict.failure
    assert verdict.signatures[0]["timestamp"] is not None
    assert not verdict.checks[2].notes
    with loopback_tsa(rogue_tsa) as rogue_url:
        from pyhanko.sign.timestamps import HTTPTimeStamper

        issue_report(
            case,
            out=tmp_path / "rogue.pdf",
            signer=signer,
            report_signer=report_signer,
            now=NOW,
            timestamper=HTTPTimeStamper(rogue_url),
            tsa_url=rogue_url,
        )
    verdict = verify_report(tmp_path / "rogue.pdf", case_dir=case.root)
    assert not verdict.ok
    assert verdict.failure is not None
    assert "its timestamp's TSA does not chain to the TSA trust root" in verdict.failure

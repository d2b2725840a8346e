from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from forensic import cli
from forensic.keys import Signer


def test_help_and_version(run_cli) -> None:
    code, out, err = run_cli("--help")
    assert code == 0, err
    assert code == 0
    assert "ingest" in out
    assert "verify" in out
    code, out, _ = run_cli("--version")
    assert code == 0
    assert out.startswith("forensic ")


def test_usage_error_names_the_option(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("case", "init", tmp_path / "c", "--title", "t")
    assert code == 2
    assert "--case-id" in err


def test_bad_case_id_names_the_parameter(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("case", "init", tmp_path / "c", "--case-id", "../etc", "--title", "t")
    assert code == 2
    assert "--case-id" in err
    assert not (tmp_path / "c").exists()


def test_existing_case_is_never_overwritten(run_cli, case) -> None:
    before = (case.root / "journal.jsonl").read_bytes()
    code, _, err = run_cli("case", "init", case.root, "--case-id", "X", "--title", "t")
    assert code == 2
    assert "already exists" in err
    assert (case.root / "journal.jsonl").read_bytes() == before


def test_bad_policy_names_the_key(run_cli, tmp_path: Path) -> None:
    from forensic.policy import default_policy_path

    policy = tmp_path / "p.toml"
    policy.write_text(
        default_policy_path().read_text().replace("[replay]", "[replay]\nsurprise = 1", 1)
    )
    code, _, err = run_cli(
        "case", "init", tmp_path / "c", "--case-id", "X", "--title", "t", "--policy", policy
    )
    assert code == 2
    assert "replay.surprise" in err
    assert not (tmp_path / "c").exists()


def test_not_a_case(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("verify", tmp_path)
    assert code == 1
    assert "no case.json" in err
    code, _, err = run_cli("case", "show", tmp_path / "nowhere")
    assert code == 2
    assert "no case at" in err


def test_unexpected_error_is_reported_without_traceback(
    run_cli, case, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensic.verify

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(forensic.verify, "verify_case", broken)
    code, out, err = run_cli("verify", case.root)
    assert code == 70
    assert "internal error" in err
    assert "--debug" in err
    assert "Traceback" not in out + err
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "verify", str(case.root)])


def test_case_show(run_cli, case, media: Path) -> None:
    assert run_cli("ingest", case.root, media / "cctv.mp4")[0] == 0
    code, out, _ = run_cli("case", "show", case.root)
    assert code == 0
    assert "E1" in out
    assert "32 frames" in out


def test_private_key_never_in_case(run_cli, case, media: Path, signer: Signer) -> None:
    assert run_cli("ingest", case.root, media / "camera_noisy.png")[0] == 0
    raw = signer.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    forms = [raw, raw.hex().encode(), base64.b64encode(raw), base64.b64encode(raw)[:40]]
    for path in case.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(f in data for f in forms), path


def test_core_never_imports_torch() -> None:
    """The evidence lane, journal and verifier must not pull in torch (the generative lane's)."""
    code = (
        "import sys, forensic.cli, forensic.verify, forensic.ingest, forensic.media, forensic.journal;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0

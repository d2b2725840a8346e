"""C2PA Content Credentials on exports (issue 20, part 1), checked with c2pa-python's own Reader.

What an outside verifier sees: the export validates as Trusted under the lab's root (and only
under it), its actions and IPTC digital source types are those the journal records, one
changed byte of the image is reported, inferred pixels are declared with their region and
never otherwise, and the manifest names the journal checkpoint it was signed against.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization

from forensic.case import Case, init_case
from forensic.classical.registry import registry
from forensic.errors import InputError
from forensic.export import C2PA_ACTIONS, JOURNAL_ASSERTION, export_c2pa
from forensic.hashing import image_hash, merkle_root
from forensic.ingest import ingest
from forensic.interop import c2pa as c2pa_io
from forensic.journal import read_entries
from forensic.keys import Signer
from forensic.media import decode_image
from forensic.pipeline.run import run_recipe
from forensic.pki import ReportSigner, init_pki
from forensic.recipe import parse_recipe
from forensic.records import read_runs
from tests.conftest import NOW, PASSPHRASE

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
CLASSICAL = b"""
[[steps]]
op = "levels"
gamma = 1.2
[[steps]]
op = "crop"
x = 4
y = 6
width = 80
height = 60
[[steps]]
op = "unsharp_mask"
radius = 1.5
[[steps]]
op = "detect_defects"
"""
INPAINT = b"""
[[steps]]
op = "generative.inpaint_telea"
x = 10
y = 20
width = 16
height = 12
[[steps]]
op = "redact_fill"
x = 60
y = 40
width = 20
height = 10
"""
SR = b"""
[[steps]]
op = "generative.super_resolution"
scale = 2
"""


def _scene(height: int = 72, width: int = 96) -> Any:
    """A smooth colour scene with edges (nothing the code was tuned on)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 128 + 80 * np.sin(x / 7.0) * np.cos(y / 11.0)
    g = np.where((x - 40) ** 2 + (y - 30) ** 2 < 300, 210.0, 60 + y)
    b = 30 + 2 * x
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).round().astype(np.uint8)


def _png(path: Path, image: Any) -> Path:
    import cv2

    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, signer: Signer) -> ReportSigner:
    return init_pki(
        tmp_path_factory.mktemp("pki"), signer, passphrase=PASSPHRASE, lab="Test Lab", now=NOW
    )


def _anchor(report_signer: ReportSigner) -> str:
    return report_signer.ca_certificate.public_bytes(serialization.Encoding.PEM).decode()


def _case(root: Path, signer: Signer, recipe: bytes, *, size: tuple[int, int] = (72, 96)) -> Case:
    case = init_case(
        root / "case",
        case_id="C2PA-1",
        title="c2pa",
        policy_path=None,
        signer=signer,
        now=NOW,
        profile="investigative",
    )
    exhibit = _png(root / "scene.png", _scene(*size))
    ingest(case, [exhibit], signer=signer, now=NOW)
    run_recipe(case, "E1", parse_recipe(recipe, where="test.toml"), signer=signer, now=NOW)
    return case


def _export(
    case: Case, signer: Signer, lab: ReportSigner, out: Path, *, sidecar: bool = False, **kw: Any
) -> dict[str, Any]:
    return export_c2pa(
        case,
        "R1",
        out=out,
        sidecar=sidecar,
        redaction_reason=kw.pop("redaction_reason", None),
        signer=signer,
        report_signer=lab,
        now=NOW + timedelta(minutes=1),
    )


@pytest.fixture(scope="module")
def classical(
    tmp_path_factory: pytest.TempPathFactory, signer: Signer, lab: ReportSigner
) -> tuple[Case, dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("classical")
    case = _case(root, signer, CLASSICAL)
    payload = _export(case, signer, lab, root / "out")
    return case, payload, root / "out" / payload["file"]["name"]


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    (assertion,) = [a for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2"]
    actions: list[dict[str, Any]] = assertion["data"]["actions"]
    return actions


def _assertion(manifest: dict[str, Any], label: str) -> dict[str, Any]:
    (assertion,) = [a for a in manifest["assertions"] if a["label"] == label]
    data: dict[str, Any] = assertion["data"]
    return data


def _flip_pixel_byte(png: bytes) -> bytes:
    """The PNG with one byte of its image data changed (IDAT chunk CRC recomputed, so that
    only the C2PA hash can notice)."""
    at = png.index(b"IDAT")
    length = int.from_bytes(png[at - 4 : at], "big")
    data = bytearray(png[at + 4 : at + 4 + length])
    data[len(data) // 2] ^= 0x01
    crc = zlib.crc32(b"IDAT" + bytes(data)).to_bytes(4, "big")
    return png[: at + 4] + bytes(data) + crc + png[at + 8 + length :]


# -- the mapping ---------------------------------------------------------------------------------


def test_every_operation_of_both_lanes_has_a_c2pa_action() -> None:
    import forensic.generative as generative

    names = set(registry(include_temporal=True)) | set(generative.registry())
    assert sorted(names - set(C2PA_ACTIONS)) == []  # a new operation must be mapped
    assert sorted(set(C2PA_ACTIONS) - names) == []  # and nothing stale stays
    standard = {
        "c2pa.color_adjustments", "c2pa.filtered", "c2pa.cropped", "c2pa.resized",
        "c2pa.orientation", "c2pa.edited",
    }  # fmt: skip
    assert set(C2PA_ACTIONS.values()) == standard | {"forensic.analysed"}


# -- a classical run ------------------------------------------------------------------------------


def test_a_classical_export_is_trusted_under_the_lab_root_and_says_what_was_done(
    classical: tuple[Case, dict[str, Any], Path], lab: ReportSigner
) -> None:
    case, payload, path = classical
    reading = c2pa_io.read(path.read_bytes(), "image/png", trust_anchors_pem=_anchor(lab))
    assert (reading.state, reading.failures) == ("Trusted", ())
    actions = _actions(reading.manifest)
    (run,) = read_runs(read_entries(case.root))
    assert [a["action"] for a in actions] == [
        "c2pa.opened",
        "c2pa.color_adjustments",
        "c2pa.cropped",
        "c2pa.filtered",
        "forensic.analysed",
    ]
    for action, step in zip(actions[1:], run.steps, strict=True):
        params = action["parameters"]
        assert (params["forensic.op"], params["forensic.step"]) == (step.op, step.number)
        assert json.loads(params["forensic.params"]) == step.params
        assert params["forensic.entry_sha256"] == step.entry_hash
    assert [a.get("digitalSourceType") for a in actions[1:]] == [
        IPTC + "algorithmicallyEnhanced"
    ] * 3 + [None]  # the analysis step changes no pixel
    text = json.dumps(reading.manifest)
    assert "trainedAlgorithmicMedia" not in text
    assert "algorithmicMedia" not in text.replace("algorithmicallyEnhanced", "")
    whole = _assertion(reading.manifest, "c2pa.metadata")["Iptc4xmpExt:DigitalSourceType"]
    assert whole == IPTC + "algorithmicallyEnhanced"
    (parent,) = reading.manifest["ingredients"]
    exhibit_sha = read_entries(case.root)[1].payload["sha256"]
    assert parent["relationship"] == "parentOf"
    assert parent["instance_id"] == f"urn:forensic:sha256:{exhibit_sha}"
    # Thumbnails are off: no picture of the evidence travels in the manifest.
    assert "thumbnail" not in reading.manifest
    assert "thumbnail" not in parent
    assert payload["c2pa"]["actions"] == [a["action"] for a in actions]


def test_the_export_has_the_runs_pixels_and_the_journal_records_it(
    classical: tuple[Case, dict[str, Any], Path],
) -> None:
    case, payload, path = classical
    entries = read_entries(case.root)
    (run,) = read_runs(entries)
    pixels, _ = decode_image(path.read_bytes(), where="export")
    assert image_hash(pixels) == run.output["pixel_sha256"]
    export = entries[-1]
    assert export.kind == "export"
    assert export.payload == payload
    assert payload["file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_journal_assertion_names_a_checkpoint_the_journal_extends(
    classical: tuple[Case, dict[str, Any], Path], lab: ReportSigner
) -> None:
    case, _, path = classical
    reading = c2pa_io.read(path.read_bytes(), "image/png", trust_anchors_pem=_anchor(lab))
    bound = _assertion(reading.manifest, JOURNAL_ASSERTION)
    entries = read_entries(case.root)
    count = bound["checkpoint"]["count"]
    assert bound["case_id"] == "C2PA-1"
    assert (
        merkle_root([bytes.fromhex(e.hash) for e in entries[:count]])
        == (bound["checkpoint"]["root"])
    )
    assert entries[count - 1].hash == bound["checkpoint"]["head"]
    (run,) = read_runs(entries)
    assert bound["runs"] == [
        {"run": "R1", "entry_seq": entries.index(_entry(entries, run.entry_hash)),
         "entry_sha256": run.entry_hash}
    ]  # fmt: skip
    assert bound["output"]["pixel_sha256"] == run.output["pixel_sha256"]
    # The export entry, appended after signing, records this very manifest.
    assert entries[count].kind == "export"
    assert entries[count].payload["c2pa"]["checkpoint"] == bound["checkpoint"]


def _entry(entries: list[Any], digest: str) -> Any:
    return next(e for e in entries if e.hash == digest)


def test_one_changed_byte_of_the_image_is_reported(
    classical: tuple[Case, dict[str, Any], Path], lab: ReportSigner
) -> None:
    _, _, path = classical
    changed = _flip_pixel_byte(path.read_bytes())
    reading = c2pa_io.read(changed, "image/png", trust_anchors_pem=_anchor(lab))
    assert reading.state == "Invalid"
    assert "assertion.dataHash.mismatch" in reading.failures


def test_trust_comes_only_from_the_lab_root(
    classical: tuple[Case, dict[str, Any], Path], tmp_path: Path, signer: Signer
) -> None:
    _, _, path = classical
    other = init_pki(tmp_path, signer, passphrase=PASSPHRASE, lab="Other Lab", now=NOW)
    for anchors in (None, _anchor(other)):
        reading = c2pa_io.read(path.read_bytes(), "image/png", trust_anchors_pem=anchors)
        assert reading.state == "Valid"  # intact, but not signed under a trusted root
        assert "signingCredential.untrusted" in reading.failures


def test_a_reader_given_only_the_lab_root_trusts_it_without_forensic(
    classical: tuple[Case, dict[str, Any], Path], lab: ReportSigner
) -> None:
    """c2pa-python called directly, as a recipient would: the CA certificate is all it needs."""
    import c2pa  # type: ignore[import-untyped]

    _, payload, path = classical
    settings = {
        "trust": {"trust_anchors": _anchor(lab)},
        "verify": {"remote_manifest_fetch": False},
    }
    with c2pa.Reader(path, context=c2pa.Context.from_dict(settings)) as reader:
        assert reader.get_validation_state() == "Trusted"
        manifest = reader.get_active_manifest()
    assert manifest["label"] == payload["c2pa"]["label"]
    assert manifest["signature_info"]["common_name"] == "Test Examiner"


# -- inferred and redacted pixels ----------------------------------------------------------------


def test_inferred_pixels_are_declared_with_their_region_and_redaction_with_its_reason(
    tmp_path: Path, signer: Signer, lab: ReportSigner
) -> None:
    case = _case(tmp_path, signer, INPAINT)
    with pytest.raises(InputError, match="--redaction-reason"):
        _export(case, signer, lab, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    payload = _export(case, signer, lab, tmp_path / "out", redaction_reason="c2pa.PII.present")
    path = tmp_path / "out" / payload["file"]["name"]
    reading = c2pa_io.read(path.read_bytes(), "image/png", trust_anchors_pem=_anchor(lab))
    assert reading.state == "Trusted"
    _, fill, redact = _actions(reading.manifest)
    # Telea inpainting invents pixels by a formula, with no training data (IPTC).
    assert (fill["action"], fill["digitalSourceType"]) == ("c2pa.edited", IPTC + "algorithmicMedia")
    (region,) = fill["changes"]
    shape = region["region"][0]["shape"]
    assert (shape["origin"], shape["width"], shape["height"]) == (
        {"x": 10, "y": 20},
        16,
        12,
    )
    assert (redact["action"], redact["reason"]) == ("c2pa.edited", "c2pa.PII.present")
    (region,) = redact["changes"]
    shape = region["region"][0]["shape"]
    assert (shape["origin"], shape["width"], shape["height"]) == ({"x": 60, "y": 40}, 20, 10)
    whole = _assertion(reading.manifest, "c2pa.metadata")["Iptc4xmpExt:DigitalSourceType"]
    assert whole == IPTC + "compositeSynthetic"
    assert "trainedAlgorithmicMedia" not in json.dumps(reading.manifest)


@pytest.mark.slow  # torch and the model's uncertainty runs: about 20 s on a shared core
def test_a_trained_model_is_declared_and_the_whole_asset_is_a_composite(
    tmp_path: Path, signer: Signer, lab: ReportSigner
) -> None:
    case = _case(tmp_path, signer, SR, size=(24, 32))
    payload = _export(case, signer, lab, tmp_path / "out")
    path = tmp_path / "out" / payload["file"]["name"]
    reading = c2pa_io.read(path.read_bytes(), "image/png", trust_anchors_pem=_anchor(lab))
    assert reading.state == "Trusted"
    _, sr = _actions(reading.manifest)
    assert (sr["action"], sr["digitalSourceType"]) == (
        "c2pa.resized",
        IPTC + "trainedAlgorithmicMedia",
    )
    assert sr["parameters"]["forensic.model"]["weights_sha256"]
    (region,) = sr["changes"]  # every pixel of the x2 output is inferred
    shape = region["region"][0]["shape"]
    assert (shape["origin"], shape["width"], shape["height"]) == ({"x": 0, "y": 0}, 64, 48)
    whole = _assertion(reading.manifest, "c2pa.metadata")["Iptc4xmpExt:DigitalSourceType"]
    assert whole == IPTC + "compositeWithTrainedAlgorithmicMedia"
    assert payload["c2pa"]["asset_digital_source_type"] == whole
    assert payload["tainted"]


def test_a_16_bit_output_is_signed_as_tiff_with_its_pixels(
    tmp_path: Path, signer: Signer, lab: ReportSigner
) -> None:
    import cv2

    case = init_case(
        tmp_path / "case", case_id="C2PA-16", title="16-bit", policy_path=None, signer=signer,
        now=NOW,
    )  # fmt: skip
    deep = (_scene(40, 48).astype(np.uint16) * 257) ^ 0x0055  # low bits that 8-bit would lose
    exhibit = tmp_path / "deep.png"
    assert cv2.imwrite(str(exhibit), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    ingest(case, [exhibit], signer=signer, now=NOW)
    run_recipe(case, "E1", parse_recipe(b'[[steps]]\nop = "invert"\n', where="t"), signer=signer,
               now=NOW)  # fmt: skip
    payload = _export(case, signer, lab, tmp_path / "out")
    path = tmp_path / "out" / "R1.tif"
    assert (payload["file"]["name"], payload["export_format"]) == ("R1.tif", "c2pa-tif")
    pixels, _ = decode_image(path.read_bytes(), where="export")
    assert pixels.dtype == np.uint16
    assert np.array_equal(pixels, 65535 - deep)
    reading = c2pa_io.read(path, "image/tiff", trust_anchors_pem=_anchor(lab))
    assert (reading.state, reading.failures) == ("Trusted", ())


# -- sidecar, refusals -------------------------------------------------------------------------


def test_a_sidecar_leaves_the_image_as_stored_and_still_catches_one_byte(
    tmp_path: Path, signer: Signer, lab: ReportSigner
) -> None:
    case = _case(tmp_path, signer, CLASSICAL)
    payload = _export(case, signer, lab, tmp_path / "out", sidecar=True)
    image = (tmp_path / "out" / payload["file"]["name"]).read_bytes()
    manifest = (tmp_path / "out" / payload["c2pa"]["sidecar"]).read_bytes()
    (run,) = read_runs(read_entries(case.root))
    assert payload["file"]["sha256"] == run.output["sha256"]  # the stored output's bytes
    assert b"caBX" not in image  # nothing embedded
    reading = c2pa_io.read(image, "image/png", trust_anchors_pem=_anchor(lab), sidecar=manifest)
    assert (reading.state, reading.failures) == ("Trusted", ())
    changed = c2pa_io.read(
        _flip_pixel_byte(image), "image/png", trust_anchors_pem=_anchor(lab), sidecar=manifest
    )
    assert "assertion.dataHash.mismatch" in changed.failures


def test_refusals_name_the_problem(
    classical: tuple[Case, dict[str, Any], Path], signer: Signer, lab: ReportSigner
) -> None:
    case, _, path = classical
    with pytest.raises(InputError, match="already exists"):
        _export(case, signer, lab, path.parent)
    with pytest.raises(InputError, match="inside the case folder"):
        _export(case, signer, lab, case.root / "derived" / "x")
    with pytest.raises(InputError, match="is not one of"):
        _export(case, signer, lab, path.parent.parent / "y", redaction_reason="because")


# -- video ----------------------------------------------------------------------------------------

VIDEO = b"""
[[steps]]
op = "levels"
gamma = 1.2
frames = [0, 5]
[[steps]]
op = "generative.inpaint_telea"
x = 8
y = 6
width = 10
height = 8
frames = [2, 3]
"""


def test_a_video_run_is_signed_in_an_mp4_with_its_frames_unchanged(
    tmp_path: Path, signer: Signer, lab: ReportSigner
) -> None:
    from forensic.media import analyse_video
    from forensic.records import load_artifact
    from forensic.videoio import FFV1Writer

    clip = tmp_path / "clip.mkv"
    with FFV1Writer(clip, rate=25) as writer:
        for k in range(6):
            writer.write(np.roll(_scene(48, 64), 3 * k, axis=1))
    case = init_case(
        tmp_path / "case",
        case_id="C2PA-V",
        title="video",
        policy_path=None,
        signer=signer,
        now=NOW,
        profile="investigative",
    )
    ingest(case, [clip], signer=signer, now=NOW)
    run_recipe(case, "E1", parse_recipe(VIDEO, where="v.toml"), signer=signer, now=NOW)
    payload = _export(case, signer, lab, tmp_path / "out")
    path = tmp_path / "out" / "R1.mp4"
    assert payload["file"]["name"] == "R1.mp4"
    (run,) = read_runs(read_entries(case.root))
    frames = load_artifact(case.store, run["frames"], what="frames")
    written = analyse_video(path, where="export")
    assert [f["sha256"] for f in written.frames] == [r["output"]["frame_sha256"] for r in frames]
    reading = c2pa_io.read(path, "video/mp4", trust_anchors_pem=_anchor(lab))
    assert (reading.state, reading.failures) == ("Trusted", ())
    _, levels, fill = _actions(reading.manifest)
    assert levels["digitalSourceType"] == IPTC + "algorithmicallyEnhanced"
    assert fill["digitalSourceType"] == IPTC + "algorithmicMedia"
    assert levels["parameters"]["forensic.frames"] == {"start": 0, "end": 5}
    assert fill["parameters"]["forensic.frames"] == {"start": 2, "end": 3}
    assert json.loads(fill["parameters"]["forensic.params"])["width"] == 10
    (region,) = fill["changes"]
    when, where = region["region"]
    assert when == {"type": "frame", "frame": {"start": 2, "end": 3}}
    assert (where["shape"]["origin"], where["shape"]["width"], where["shape"]["height"]) == (
        {"x": 8, "y": 6},
        10,
        8,
    )
    changed = bytearray(path.read_bytes())
    media = changed.index(b"mdat")  # the frames' packets
    size = int.from_bytes(changed[media - 4 : media], "big")
    changed[media + 4 + size // 2] ^= 0x01
    reading = c2pa_io.read(bytes(changed), "video/mp4", trust_anchors_pem=_anchor(lab))
    assert "assertion.bmffHash.mismatch" in reading.failures


# -- the command line ---------------------------------------------------------------------------


def test_the_cli_exports_with_credentials_and_refuses_burn_in(
    run_cli: Any, tmp_path: Path, key_dir: Path, signer: Signer
) -> None:
    import shutil

    keys = tmp_path / "keys"
    shutil.copytree(key_dir, keys)
    init_pki(keys, signer, passphrase=PASSPHRASE, lab="Test Lab", now=NOW)
    case = _case(tmp_path, signer, CLASSICAL)
    code, out, err = run_cli(
        "export", case.root, "R1", "--c2pa", "--burn-in", "--out", tmp_path / "x", "--key-dir", keys
    )
    assert code == 2
    assert "--burn-in" in err
    code, out, err = run_cli(
        "export", case.root, "R1", "--c2pa-sidecar", "--out", tmp_path / "out", "--key-dir", keys
    )
    assert code == 0, err
    assert "C2PA Content Credentials (sidecar R1.c2pa)" in out
    assert "c2pa.opened, c2pa.color_adjustments, c2pa.cropped" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["R1.c2pa", "R1.png"]

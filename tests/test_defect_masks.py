"""Defect masks as files in derived/ (1-bit PNG for a still, FFV1 for video), hashed, named in
the record and checked by verify; legacy entries with inline masks still read and verify."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from forensic.case import Case, init_case
from forensic.errors import CaseError
from forensic.ingest import ingest
from forensic.journal import read_entries
from forensic.keys import Signer
from forensic.ops import defects
from forensic.pipeline import still
from forensic.pipeline.masks import load_mask
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe
from forensic.records import RunRecord, read_runs
from forensic.verify import verify_case
from tests import damage
from tests.conftest import NOW
from tests.test_photo_film import toned_print

DETECT = b"""
[[steps]]
op = "detect_defects"
kinds = "dust,scratches,tears"
add = "rect(10, 10, 5, 4)"
"""


@pytest.fixture
def print_case(case: Case, signer: Signer, tmp_path: Path) -> tuple[Case, Any]:
    image, _ = damage.add_dust(toned_print("camera"), 25, 5)
    image, _ = damage.add_scratches(image, 2, 6)
    path = tmp_path / "print.png"
    path.write_bytes(cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes())
    ingest(case, [path], signer=signer, now=NOW)
    return case, image


def _run(case: Case, signer: Signer, text: bytes, source: str = "E1") -> RunRecord:
    run_recipe(case, source, parse_recipe(text, where="t.toml"), signer=signer, now=NOW)
    return read_runs(read_entries(case.root))[-1]


def _flip_byte(path: Path, at: int) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_still_masks_are_1bit_png_files_named_and_hashed(
    print_case: tuple[Case, Any], signer: Signer
) -> None:
    case, image = print_case
    run = _run(case, signer, DETECT)
    details = run.steps[0]["details"]
    _, expected = defects.analyse(
        image,
        {
            "kinds": "dust,scratches,tears",
            "sensitivity": 1.0,
            "max_spot_area": 150,
            "min_length": 40,
            "min_stain_area": 400,
            "add": "rect(10, 10, 5, 4)",
            "remove": None,
        },
        "t",
    )
    assert set(details["masks"]) == {"dust", "scratches", "tears"}
    for name, record in [*details["masks"].items(), ("mask", details["mask"])]:
        assert "encoded" not in record
        png = record["png"]
        data = (case.root / png["file"]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert data[24] == 1, "bit depth 1"
        truth = expected["mask"] if name == "mask" else expected["masks"][name]
        assert record["sha256"] == truth["sha256"]
        mask = load_mask(case.store, record, name=name, what=name)
        assert np.array_equal(mask, defects.decode_mask("t", name, truth["encoded"]))
    assert details["mask"]["pixels"] > 20
    files = [what for what, _ in run.files()]
    assert "step 1 dust mask" in files
    assert "step 1 mask mask" in files
    verdict = verify_case(case.root)
    assert verdict.ok, verdict.failure
    # One changed byte in a mask file: verify names the file; reading it is refused.
    target = case.root / details["masks"]["dust"]["png"]["file"]
    _flip_byte(target, 40)
    verdict = verify_case(case.root)
    assert not verdict.ok
    assert "dust mask" in str(verdict.failure)
    with pytest.raises(CaseError, match="no longer matches its recorded SHA-256"):
        load_mask(case.store, details["masks"]["dust"], name="dust", what="dust")


def test_legacy_entries_with_inline_masks_still_read_and_verify(
    print_case: tuple[Case, Any], signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    case, _ = print_case
    with monkeypatch.context() as patch:  # what runs recorded before the masks were files
        patch.setattr(still, "store_still_masks", lambda details, add: details)
        legacy = _run(case, signer, DETECT)
    current = _run(case, signer, DETECT.replace(b"10, 10, 5, 4", b"11, 10, 5, 4"))
    inline = legacy.steps[0]["details"]["mask"]
    assert "encoded" in inline
    assert "png" not in inline
    assert not any("mask" in what for what, _ in legacy.files())
    old = load_mask(case.store, inline, name="mask", what="legacy")
    new = load_mask(case.store, current.steps[0]["details"]["mask"], name="mask", what="new")
    assert old[10:14, 10:15].all()
    assert new[10:14, 11:16].all()
    verdict = verify_case(case.root)
    assert verdict.ok, verdict.failure


def test_video_masks_are_ffv1_videos_checked_by_verify_pixels(
    case: Case, signer: Signer, media: Path
) -> None:
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    run = _run(
        case,
        signer,
        b'[[steps]]\nop = "crop"\nx = 100\ny = 80\nwidth = 96\nheight = 64\nframes = [0, 2]\n'
        # In the exhibit's pixels: (4, 4) of the crop.
        b'[[steps]]\nop = "detect_defects"\nkinds = "dust"\nadd = "rect(104, 84, 6, 5)"\n',
    )
    step = run.steps[1]
    videos = step["masks"]
    assert set(videos) == {"dust", "mask"}
    assert all(v["codec"] == "ffv1" and v["frames"] == 3 for v in videos.values())
    records = step.applied(case.store)
    for k, record in enumerate(records):
        combined = record["details"]["mask"]
        assert combined["stored"] == k
        assert "encoded" not in combined
        mask = load_mask(case.store, combined, name="mask", videos=videos, what="frame")
        assert mask[4:9, 4:10].all()
    assert "step 2 mask mask video" in [what for what, _ in run.files()]
    verdict = verify_case(case.root, pixels=True)
    assert verdict.ok, verdict.failure


@pytest.mark.slow
def test_the_report_pictures_the_masks_instead_of_printing_them(
    tmp_path: Path, media: Path
) -> None:
    import subprocess

    from forensic.keys import create_key, unlock
    from forensic.pki import bind, init_pki
    from forensic.report import issue_report
    from tests.conftest import PASSPHRASE
    from tests.test_report import tool

    pdftotext = tool("pdftotext")
    folder = tmp_path / "keys"
    create_key(folder, name="Report Examiner", passphrase=PASSPHRASE, now=NOW)
    examiner = unlock(folder, PASSPHRASE)
    report_signer = init_pki(folder, examiner, passphrase=PASSPHRASE, lab="Test Lab", now=NOW)
    case = init_case(
        tmp_path / "case", case_id="DM-1", title="masks", policy_path=None, signer=examiner, now=NOW
    )
    image, _ = damage.add_dust(toned_print("camera"), 25, 5)
    path = tmp_path / "print.png"
    path.write_bytes(cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes())
    ingest(case, [path, media / "cctv.mp4"], signer=examiner, now=NOW)
    run = _run(case, examiner, DETECT)
    video = _run(
        case,
        examiner,
        b'[[steps]]\nop = "detect_defects"\nkinds = "dust"\nadd = "rect(4, 4, 6, 5)"\n'
        b"frames = [0, 1]\n",
        source="E2",
    )
    bind(case, examiner, report_signer, now=NOW)
    out = tmp_path / "report.pdf"
    issue_report(case, out=out, signer=examiner, report_signer=report_signer, now=NOW)
    text = subprocess.run(
        [pdftotext, "-layout", str(out), "-"], capture_output=True, check=True, text=True
    ).stdout
    details = run.steps[0]["details"]
    flat = " ".join(text.split())
    assert "Defect masks of step 1" in flat
    for name in ("dust", "scratches", "tears"):
        record = details["masks"][name]
        assert f"{name} (detected): {record['pixels']:,} px" in flat
    assert f"edits): {details['mask']['pixels']:,} px" in flat
    assert details["mask"]["png"]["file"] not in flat  # pictured, not listed as text
    # The video run's masks come from its mask videos (first frame).
    assert "Defect masks of step 1, frame 0" in flat
    first = video.steps[0].applied(case.store)[0]["details"]["mask"]
    assert f"edits): {first['pixels']:,} px" in flat
    import pypdf

    reader = pypdf.PdfReader(out)
    page = next(p for p in reader.pages if "Defect masks of step 1" in (p.extract_text() or ""))
    assert len(page.images) >= 4  # one picture per kind and the combined mask


def test_the_workbench_serves_each_mask_for_its_overlay(
    print_case: tuple[Case, Any], signer: Signer, media: Path
) -> None:
    from PIL import Image as PILImage

    from tests.test_workbench import _client, _session

    case, _ = print_case
    run = _run(case, signer, DETECT)
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    _run(
        case,
        signer,
        b'[[steps]]\nop = "crop"\nx = 100\ny = 80\nwidth = 96\nheight = 64\nframes = [0, 1]\n'
        b'[[steps]]\nop = "detect_defects"\nkinds = "dust"\nadd = "rect(104, 84, 6, 5)"\n',
        source="E2",
    )
    with _client(case, None, read_only=True) as raw_client:
        client = _session(raw_client)
        runs = client.get("/api/case").json()["runs"]
        assert runs[0]["steps"][0]["masks"] == [
            "R1.1.mask_dust",
            "R1.1.mask_scratches",
            "R1.1.mask_tears",
            "R1.1.mask",
        ]
        assert runs[1]["steps"][1]["masks"] == ["R2.2.mask_dust", "R2.2.mask"]
        response = client.get("/api/image/R1.1.mask")
        assert response.status_code == 200
        shown = np.asarray(PILImage.open(io.BytesIO(response.content)))
        expected = load_mask(case.store, run.steps[0]["details"]["mask"], name="mask", what="m")
        assert np.array_equal(shown == 255, expected)
        frame = client.get("/api/image/R2.2.mask?index=1")
        assert frame.status_code == 200
        video_mask = np.asarray(PILImage.open(io.BytesIO(frame.content)))
        assert (video_mask[4:9, 4:10] == 255).all()
        missing = client.get("/api/image/R1.1.mask_stains")
        assert missing.status_code >= 400
        assert "no 'stains' defect mask" in missing.text


def test_the_workbench_maps_a_run_frame_to_the_steps_own_mask_frame(
    case: Case, signer: Signer, media: Path
) -> None:
    """A step given a frame range covers part of the run: its records are indexed from its own
    first frame, the viewer's index is the run's output frame. Output frame k is shown with
    the step's record of the same source frame, and a frame the step never saw has no mask."""
    from PIL import Image as PILImage

    from tests.test_workbench import _client, _session

    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    run = _run(
        case,
        signer,
        b'[[steps]]\nop = "levels"\ngamma = 1.2\nframes = [0, 2]\n'
        b'[[steps]]\nop = "detect_defects"\nkinds = "dust"\nframes = [1, 2]\n'
        b'add = "rect(4, 4, 6, 5)"\n',
    )
    records = run.steps[1].applied(case.store)
    assert [r["frame"] for r in records] == [1, 2]
    # The two frames' masks differ (the detected dust moves with the clip), so showing the
    # step's record k instead of the one for output frame k would fail below.
    assert records[0]["details"]["mask"]["sha256"] != records[1]["details"]["mask"]["sha256"]
    with _client(case, None, read_only=True) as raw_client:
        client = _session(raw_client)
        for k in (1, 2):
            response = client.get(f"/api/image/R1.2.mask?index={k}")
            assert response.status_code == 200, response.text
            shown = np.asarray(PILImage.open(io.BytesIO(response.content))) == 255
            expected = load_mask(
                case.store,
                records[k - 1]["details"]["mask"],
                name="mask",
                videos=run.steps[1].get("masks"),
                what="m",
            )
            assert np.array_equal(shown, expected)
            info = json.loads(response.headers["x-forensic-info"])
            assert (info["index"], info["step_record"], info["source_frame"]) == (k, k - 1, k)
        missing = client.get("/api/image/R1.2.mask?index=0")
        assert missing.status_code >= 400
        assert "no mask for output frame 0 (source frame 0)" in missing.text
        assert "source frames 1-2 only" in missing.text


def test_mask_edits_are_in_source_pixels_after_a_crop(
    print_case: tuple[Case, Any], signer: Signer
) -> None:
    """coords = "source" (the default): the examiner's add / remove regions, drawn on the
    exhibit, are mapped through an earlier crop like every other position; the values given
    and those used are both recorded. coords = "input" takes them as given."""
    case, image = print_case
    crop = b'[[steps]]\nop = "crop"\nx = 20\ny = 16\nwidth = 100\nheight = 80\n'
    edits = b'add = "rect(40, 30, 6, 5); polygon(60, 40, 70, 40, 70, 50)"\nremove = "rect(41, 31, 2, 2)"\n'
    detect = b'[[steps]]\nop = "detect_defects"\nkinds = "dust"\n' + edits
    run = _run(case, signer, crop + detect)
    step = run.steps[1]
    assert step["given"]["add"] == "rect(40, 30, 6, 5); polygon(60, 40, 70, 40, 70, 50)"
    assert step["params"]["add"] == "rect(20, 14, 6, 5); polygon(40, 24, 50, 24, 50, 34)"
    assert step["params"]["remove"] == "rect(21, 15, 2, 2)"
    p = {
        "kinds": "dust",
        "sensitivity": 1.0,
        "max_spot_area": 150,
        "min_length": 40,
        "min_stain_area": 400,
    }
    cropped = image[16:96, 20:120]
    _, expected = defects.analyse(
        cropped, {**p, "add": step["params"]["add"], "remove": step["params"]["remove"]}, "t"
    )
    recorded = load_mask(case.store, step["details"]["mask"], name="mask", what="mask")
    assert np.array_equal(recorded, defects.decode_mask("t", "mask", expected["mask"]["encoded"]))
    assert recorded[14:19, 20:26].sum() == 30 - 4  # the added rect less the removed 2 x 2
    assert recorded[24:35, 50].all()  # the polygon's right edge, column 70 in the exhibit
    as_given = _run(case, signer, b'[recipe]\ncoords = "input"\n' + crop + detect)
    assert as_given.steps[1]["params"]["add"] == step["given"]["add"]
    assert verify_case(case.root).ok


def test_an_edit_that_covers_no_pixel_is_refused(
    print_case: tuple[Case, Any], signer: Signer
) -> None:
    """A region off the frame (or off the part a crop kept) would add or remove nothing and
    pass as done: refused before anything is recorded, naming the step, the parameter and the
    region as given."""
    from forensic.errors import InputError

    case, image = print_case
    w = image.shape[1]
    off = f'[[steps]]\nop = "detect_defects"\nkinds = "dust"\nadd = "rect(10, 10, 4, 4); rect({w}, 0, 5, 5)"\n'
    first = rf"step 1 \(detect_defects\): add region 2, rect\({w}, 0, 5, 5\), covers no pixel"
    with pytest.raises(InputError, match=first + " of the source frame"):
        _run(case, signer, off.encode())
    crop = b'[[steps]]\nop = "crop"\nx = 20\ny = 16\nwidth = 100\nheight = 80\n'
    kept_off = b'[[steps]]\nop = "detect_defects"\nkinds = "dust"\nremove = "rect(4, 4, 6, 5)"\n'
    second = r"step 2 \(detect_defects\): remove region 1, rect\(4, 4, 6, 5\), covers no pixel"
    with pytest.raises(InputError, match=second + " of its input"):
        _run(case, signer, crop + kept_off)
    assert read_runs(read_entries(case.root)) == []

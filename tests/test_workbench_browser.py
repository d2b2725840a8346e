"""The workbench end to end in a real headless browser: Debian's chromium driven by Playwright
(no browser download; `make system-deps` installs chromium).

One examiner's session on a demo case (a generated H.264 clip, ingested with the API): open
the case and see it verify, step to a frame, zoom in on the pixel grid, draw four corners,
turn them into a perspective step, preview it (marked "not recorded"), run it, see the new run
listed and the verification go green again, open the comparison and toggle the provenance
overlay, read the custody record. Screenshots are written to build/workbench-screens/; with
FORENSIC_UPDATE_SCREENSHOTS=1 the README's picture (docs/images/workbench.png) is refreshed
from this test.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from forensic import api
from forensic.keys import Signer
from forensic.workbench.server import Workbench, create_app

ROOT = Path(__file__).resolve().parent.parent
SCREENS = ROOT / "build" / "workbench-screens"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
TOKEN = "browser-test-token-" + "z" * 24
#: The plate-like quadrilateral picked in the test (source pixels: TL, TR, BR, BL).
CORNERS = [(60, 70), (250, 80), (245, 180), (65, 170)]

pytestmark = pytest.mark.slow


def _chromium() -> str:
    path = shutil.which("chromium")
    required = os.environ.get("FORENSIC_REQUIRE_FFMPEG") == "1" or bool(os.environ.get("CI"))
    if path is None:
        if required:
            pytest.fail("chromium is required here (CI) but not installed: make system-deps")
        pytest.skip("Debian's chromium is not installed (make system-deps installs it)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, signer: Signer) -> Iterator[str]:
    import uvicorn

    from fixtures.generate import make_clip

    make_clip(tmp_path)
    case = api.create_case(
        tmp_path / "case",
        case_id="DEMO-1",
        title="Demo: parked vehicle",
        policy_path=None,
        signer=signer,
        now=NOW,
    )
    api.ingest(case, [tmp_path / "cctv.mp4"], signer=signer, now=NOW)
    port = _free_port()
    bench = Workbench(case_dir=case.root, token=TOKEN, signer=signer, now=lambda: NOW)
    app = create_app(bench, hosts=[f"127.0.0.1:{port}"])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


#: The screenshot the README shows (refreshed with FORENSIC_UPDATE_SCREENSHOTS=1).
README_SHOT = ("3-corners-to-perspective-step", ROOT / "docs" / "images" / "workbench.png")


def _shot(page: Any, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"))
    if name == README_SHOT[0] and os.environ.get("FORENSIC_UPDATE_SCREENSHOTS") == "1":
        README_SHOT[1].parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SCREENS / f"{name}.png", README_SHOT[1])


def _canvas_point(page: Any, x: float, y: float, width: int, height: int) -> tuple[float, float]:
    """Page coordinates of source pixel centre (x, y) with the viewer fitted to its canvas."""
    box = page.locator("#view-canvas").bounding_box()
    scale = min(box["width"] / width, box["height"] / height)
    ox = (box["width"] - width * scale) / 2
    oy = (box["height"] - height * scale) / 2
    return box["x"] + ox + (x + 0.5) * scale, box["y"] + oy + (y + 0.5) * scale


def test_examiner_session_in_a_real_browser(served: str) -> None:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda msg: errors.append(msg.text) if msg.type == "error" else None,
            )
            expect = sync_api.expect

            # The address printed in the terminal: the token becomes a cookie.
            page.goto(f"{served}/?token={TOKEN}")
            assert "token" not in page.url
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            expect(page.locator("#case-title")).to_contain_text("DEMO-1")
            expect(page.locator("#verify-badge")).to_have_class("badge verify-ok", timeout=60_000)
            expect(page.locator("#checks li").first).to_contain_text("1. ")
            expect(page.locator("#exhibits .card")).to_have_count(1)
            _shot(page, "1-overview")

            # Evidence viewer: step to frame 7, then zoom in on the pixel grid.
            page.click("#tabs button[data-tab=examine]")
            expect(page.locator("#frame-info")).to_contain_text("E1 frame 0 / 31")
            for _ in range(3):
                page.click("#frame-next")
            expect(page.locator("#frame-info")).to_contain_text("E1 frame 3 / 31")
            page.fill("#time-input", "0.2")
            page.click("#time-go")
            expect(page.locator("#frame-info")).to_contain_text("E1 frame 5 / 31")
            page.fill("#frame-input", "7")
            page.press("#frame-input", "Enter")
            expect(page.locator("#frame-info")).to_contain_text("E1 frame 7 / 31")
            expect(page.locator("#frame-info")).to_contain_text("hash = record")
            expect(page.locator("#frame-info")).to_contain_text("00:00:00.280")
            page.click("button[data-zoom='16']")
            page.mouse.move(*_canvas_point(page, 160, 120, 320, 240))
            page.locator("#view-canvas").hover()
            expect(page.locator("#cursor-info")).to_contain_text("zoom 16.00")
            _shot(page, "2-pixel-grid-16x")
            page.click("button[data-zoom='fit']")

            # A rectangle, in whole source pixels, into a crop step (then removed again).
            page.click("button[data-tool='rect']")
            page.mouse.move(*_canvas_point(page, 100, 50, 320, 240))
            page.mouse.down()
            page.mouse.move(*_canvas_point(page, 139, 79, 320, 240), steps=4)
            page.mouse.up()
            expect(page.locator("#picks")).to_contain_text("rectangle x 100, y 50, 40 \u00d7 30 px")
            page.click("#pick-crop")
            crop = page.locator("#steps li").first
            assert [crop.locator(f"input[name={k}]").input_value() for k in "xy"] == ["100", "50"]
            assert crop.locator("input[name=width]").input_value() == "40"
            crop.locator("button[title=Remove]").click()
            expect(page.locator("#steps li")).to_have_count(0)
            page.click("#picks-clear")

            # Four corners, in source-frame pixels, into a perspective step.
            page.click("button[data-tool='quad']")
            for x, y in CORNERS:
                page.mouse.click(*_canvas_point(page, x, y, 320, 240))
            expect(page.locator("#picks")).to_contain_text("corners (4/4)")
            expect(page.locator("#picks")).to_contain_text("TL (60, 70)")
            page.click("#pick-perspective")
            step = page.locator("#steps li").first
            expect(step).to_contain_text("perspective")
            assert step.locator("input[name=corners]").input_value() == (
                "60, 70, 250, 80, 245, 180, 65, 170"
            )
            step.locator("input[name=frames]").fill("5, 9")
            step.locator("input[name=frames]").dispatch_event("change")
            _shot(page, "3-corners-to-perspective-step")

            # Preview: computed on the current frame, labelled, nothing recorded.
            page.click("#recipe-preview")
            expect(page.locator("#preview-banner")).to_be_visible()
            expect(page.locator("#preview-banner")).to_have_text("PREVIEW: NOT RECORDED")
            expect(page.locator("#preview-info")).to_contain_text("preview: not recorded")
            _shot(page, "4-preview")

            # Run: signed, listed, and the case verifies again.
            page.click("#recipe-run")
            expect(page.locator("#run-progress .label")).to_contain_text(
                "run R1 recorded and signed", timeout=60_000
            )
            expect(page.locator("#verify-badge")).to_have_class("badge verify-ok", timeout=60_000)
            page.click("#tabs button[data-tab=overview]")
            expect(page.locator("#runs tbody tr").first).to_contain_text("R1")
            expect(page.locator("#runs tbody tr").first).to_contain_text("perspective")
            _shot(page, "5-run-listed-verified")

            # Compare: exhibit frame against the run's output, with the provenance overlay.
            page.locator("#runs tbody tr").first.locator("button").click()
            expect(page.locator("#cmp-info")).to_contain_text("B R1")
            expect(page.locator("#cmp-info")).to_contain_text("source frame 5")
            page.select_option("#cmp-mode", "side")
            page.check("#cmp-provenance")
            expect(page.locator("#legend")).to_contain_text("resampled")
            _shot(page, "6-compare-provenance")

            # The custody record.
            page.click("#tabs button[data-tab=record]")
            rows = page.locator("#journal tbody tr")
            expect(rows.first).to_contain_text("case.open")
            rows.last.click()
            expect(page.locator("#entry-detail")).to_contain_text('"kind": "run"')
            _shot(page, "7-record")
            assert errors == []
        finally:
            browser.close()


def test_inferred_pixels_are_labelled_in_the_comparison(
    tmp_path: Path, signer: Signer, media_still: Path
) -> None:
    """A generative step (investigative profile): the comparison outlines and labels the
    inferred pixels, with or without the overlay, and offers the co-signature."""
    import uvicorn

    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    case = api.create_case(
        tmp_path / "leads",
        case_id="LEADS-1",
        title="Investigative leads",
        policy_path=None,
        signer=signer,
        now=NOW,
        profile="investigative",
    )
    api.ingest(case, [media_still], signer=signer, now=NOW)
    recipe = api.parse_recipe(
        b'[[steps]]\nop = "generative.inpaint_telea"\nx = 120\ny = 90\nwidth = 60\nheight = 40\n',
        where="test",
    )
    api.run_recipe(case, "E1", recipe, signer=signer, now=NOW)
    port = _free_port()
    bench = Workbench(case_dir=case.root, token=TOKEN, signer=signer, now=lambda: NOW)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(bench, hosts=[f"127.0.0.1:{port}"]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            expect = sync_api.expect
            page.goto(f"http://127.0.0.1:{port}/?token={TOKEN}")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            expect(page.locator("#runs tbody tr").first).to_contain_text("tainted")
            page.locator("#runs tbody tr").first.locator("button").click()
            expect(page.locator("#cmp-info")).to_contain_text("2400 INFERRED pixels")
            expect(page.locator("#cosign-list")).to_contain_text("R1.1")
            page.select_option("#cmp-mode", "side")
            _shot(page, "8-inferred-label")
            page.check("#cmp-provenance")
            _shot(page, "9-inferred-overlay")
            # The viewer labels them too.
            page.click("#tabs button[data-tab=examine]")
            page.select_option("#view-source", "R1")
            expect(page.locator("#frame-info")).to_contain_text("TAINTED")
            _shot(page, "10-inferred-in-viewer")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_defect_mask_is_drawn_over_b_in_the_comparison(
    tmp_path: Path, signer: Signer, media_still: Path
) -> None:
    """detect_defects on a still: the compare view offers its masks and draws the chosen one
    (read from its stored file) over B, with no script error."""
    import uvicorn

    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    case = api.create_case(
        tmp_path / "masks",
        case_id="MASK-1",
        title="Masks",
        policy_path=None,
        signer=signer,
        now=NOW,
    )
    api.ingest(case, [media_still], signer=signer, now=NOW)
    recipe = api.parse_recipe(
        b'[[steps]]\nop = "detect_defects"\nkinds = "dust"\nadd = "rect(40, 30, 20, 10)"\n',
        where="test",
    )
    api.run_recipe(case, "E1", recipe, signer=signer, now=NOW)
    port = _free_port()
    bench = Workbench(case_dir=case.root, token=TOKEN, signer=signer, now=lambda: NOW)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(bench, hosts=[f"127.0.0.1:{port}"]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            expect = sync_api.expect
            page.goto(f"http://127.0.0.1:{port}/?token={TOKEN}")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            page.locator("#runs tbody tr").first.locator("button").click()
            expect(page.locator("#cmp-info")).to_contain_text("B R1")
            expect(page.locator("#cmp-mask option")).to_have_count(3)  # none, dust, combined
            page.select_option("#cmp-mask", "R1.1.mask")
            expect(page.locator("#cmp-info")).to_contain_text("defect mask R1.1.mask: ")
            text = page.locator("#cmp-info").inner_text()
            pixels = int(text.split("defect mask R1.1.mask: ")[1].split(" px")[0])
            assert pixels >= 200  # the added 20 x 10 rectangle at least
            page.select_option("#cmp-mode", "side")
            _shot(page, "11-defect-mask-overlay")
            assert errors == []
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_video_mask_follows_the_runs_output_frame_in_the_comparison(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    """A video run whose defect step covers source frames 1-2 only: on output frame 0 the
    compare view says there is no mask there; on output frame 1 it draws the step's mask of
    that frame, with no script error."""
    import uvicorn

    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    case = api.create_case(
        tmp_path / "vmasks",
        case_id="MASK-2",
        title="Video masks",
        policy_path=None,
        signer=signer,
        now=NOW,
    )
    api.ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    recipe = api.parse_recipe(
        b'[[steps]]\nop = "levels"\ngamma = 1.2\nframes = [0, 2]\n'
        b'[[steps]]\nop = "detect_defects"\nkinds = "dust"\nframes = [1, 2]\n'
        b'add = "rect(40, 30, 20, 10)"\n',
        where="test",
    )
    api.run_recipe(case, "E1", recipe, signer=signer, now=NOW)
    port = _free_port()
    bench = Workbench(case_dir=case.root, token=TOKEN, signer=signer, now=lambda: NOW)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(bench, hosts=[f"127.0.0.1:{port}"]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            expect = sync_api.expect
            page.goto(f"http://127.0.0.1:{port}/?token={TOKEN}")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            page.locator("#runs tbody tr").first.locator("button").click()
            expect(page.locator("#cmp-info")).to_contain_text("B R1")
            page.select_option("#cmp-mask", "R1.2.mask")
            expect(page.locator("#cmp-info")).to_contain_text(
                "defect mask R1.2.mask: R1.2.mask: no mask for output frame 0 (source frame 0)"
            )
            page.fill("#cmp-b-index", "1")
            page.dispatch_event("#cmp-b-index", "change")
            expect(page.locator("#cmp-info")).to_contain_text("defect mask R1.2.mask: ")
            expect(page.locator("#cmp-info")).to_contain_text(" px (red)")
            text = page.locator("#cmp-info").inner_text()
            pixels = int(text.split("defect mask R1.2.mask: ")[1].split(" px")[0])
            assert pixels >= 200  # the added 20 x 10 rectangle at least
            assert errors == []
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def media_still(tmp_path: Path) -> Path:
    """A 320 x 240 natural image (the clip's first frame's scene)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    path = tmp_path / "still.png"
    Image.fromarray(np.ascontiguousarray(data.astronaut()[::2, ::2][:240, :320])).save(path)
    return path

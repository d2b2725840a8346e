"""The workbench's device choice for generative steps: what `/api/devices` offers (through
`forensic.api.generative_devices`), a run's ``device`` recorded or refused like
``enhance --device``, and the selector in a real browser."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from forensic import api
from forensic.case import Case
from forensic.keys import Signer
from forensic.workbench.server import Workbench, create_app
from tests.test_workbench import NOW, _client, _post, _recipe, _session, _snapshot, _wait

NO_CUDA = "no CUDA GPU here (torch.cuda.is_available() is False)"
SR = {"op": "generative.super_resolution", "params": {"scale": 2, "uncertainty_runs": 2}}


def _case(tmp_path: Path, signer: Signer, profile: str) -> Case:
    still = tmp_path / "still.png"
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(still)
    case = api.create_case(
        tmp_path / profile, case_id="D-1", title="devices", policy_path=None,
        signer=signer, now=NOW, profile=profile,
    )  # fmt: skip
    api.ingest(case, [still], signer=signer, now=NOW)
    return case


def _by_name(devices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in devices}


def test_devices_say_what_the_policy_and_this_machine_allow(tmp_path: Path, signer: Signer) -> None:
    evidence = _case(tmp_path, signer, "evidence")  # no `devices` key: the CPU only
    with _client(evidence, signer) as c:
        _session(c)
        listed = c.get("/api/devices")
        assert listed.status_code == 200
        devices = _by_name(listed.json()["devices"])
    assert list(devices) == ["auto", "cpu", "cuda"]
    assert devices["cpu"]["available"] is True
    assert devices["auto"] == {**devices["auto"], "available": True, "uses": "cpu"}
    assert devices["cuda"]["available"] is False
    assert devices["cuda"]["reason"] == (
        "the case's policy allows generative steps on: cpu"
    )  # refused by the policy whether or not this machine has a GPU
    assert _by_name(api.generative_devices(evidence)) == devices  # the same, through the API

    leads = _case(tmp_path, signer, "investigative")  # devices = ["cpu", "cuda"]
    cuda = _by_name(api.generative_devices(leads))["cuda"]
    if torch.cuda.is_available():
        assert cuda["available"] is True
        assert cuda["reason"] is None
    else:
        assert cuda["available"] is False
        assert cuda["reason"] == NO_CUDA


def test_a_run_on_a_refused_device_records_nothing_and_a_chosen_one_is_recorded(
    tmp_path: Path, signer: Signer
) -> None:
    case = _case(tmp_path, signer, "investigative")
    with _client(case, signer) as c:
        _session(c)
        before = _snapshot(case)
        bad = _post(c, "/api/run", {"recipe": _recipe(SR), "source": "E1", "device": "gpu"})
        assert bad.status_code == 400
        assert "--device is 'gpu'; allowed: auto, cpu, cuda" in bad.json()["problems"][0]
        if not torch.cuda.is_available():
            refused = _post(
                c, "/api/run", {"recipe": _recipe(SR), "source": "E1", "device": "cuda"}
            )
            assert refused.status_code == 400
            assert "no CUDA GPU is available here" in refused.json()["problems"][0]
        assert _snapshot(case) == before
        body = {"recipe": _recipe(SR), "source": "E1", "device": "cpu"}
        job = _post(c, "/api/run", body).json()["job"]
        assert _wait(c, job)["state"] == "done"
        pmap = np.asarray(Image.open(io.BytesIO(c.get("/api/image/R1.map").content)))
        assert pmap.shape == (48, 64)
    (run,) = api.runs(case)
    info = run.steps[0]["model"]["device_info"]
    assert info["kind"] == "cpu"
    assert info["requested"] == "cpu"


@pytest.mark.slow
def test_the_device_selector_disables_what_cannot_be_used_and_says_why(
    tmp_path: Path, signer: Signer
) -> None:
    import uvicorn

    from tests.test_workbench_browser import TOKEN, _chromium, _free_port

    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    case = _case(tmp_path, signer, "evidence")
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
            cuda = page.locator("#run-device option[value=cuda]")
            expect(cuda).to_be_disabled()
            expect(cuda).to_have_text("cuda (unavailable)")
            expect(cuda).to_have_attribute(
                "title", "the case's policy allows generative steps on: cpu"
            )
            expect(page.locator("#run-device option[value=cpu]")).to_be_enabled()
            expect(page.locator("#run-device")).to_have_value("auto")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)

"""The workbench's routes (Starlette's TestClient): every route, and every refusal: no or a
wrong token, a foreign Host, a missing CSRF header or a foreign Origin, traversal attempts,
and writes on a read-only workbench. Nothing here needs a browser (see
tests/test_workbench_browser.py)."""

from __future__ import annotations

import io
import json
import random
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from forensic import api
from forensic.case import Case
from forensic.errors import CaseError
from forensic.keys import Signer
from forensic.workbench import server as server_mod
from forensic.workbench.recipes import to_toml
from forensic.workbench.server import Workbench, create_app

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
TOKEN = "test-token-" + "x" * 32
HOST = "testserver"
ORIGIN = f"http://{HOST}"
CORNERS = [40.0, 60.0, 250.0, 70.0, 245.0, 170.0, 45.0, 160.0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures.generate import make_clip

    out = tmp_path_factory.mktemp("clip")
    make_clip(out)  # H.264 with B-frames, GOP 12, 32 frames
    return out / "cctv.mp4"


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory, signer: Signer, clip: Path) -> Path:
    """A case with the clip (E1) and a small still (E2), made once; tests get copies."""
    folder = tmp_path_factory.mktemp("demo")
    still = folder / "still.png"
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(still)
    case = api.create_case(
        folder / "case",
        case_id="T-001",
        title="Test case",
        policy_path=None,
        signer=signer,
        now=NOW,
    )
    api.ingest(case, [clip, still], signer=signer, now=NOW)
    return case.root


@pytest.fixture
def demo(demo_template: Path, tmp_path: Path) -> Case:
    shutil.copytree(demo_template, tmp_path / "case")
    return api.open_case(tmp_path / "case")


def _client(case: Case, signer: Signer | None, *, read_only: bool = False) -> TestClient:
    bench = Workbench(
        case_dir=case.root,
        token=TOKEN,
        read_only=read_only,
        signer=signer,
        report_note="no report-signing key in this test",
        now=lambda: NOW,
    )
    return TestClient(create_app(bench, hosts=[HOST]), base_url=ORIGIN)


def _session(client: TestClient) -> TestClient:
    response = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert "httponly" in response.headers["set-cookie"].lower()
    assert "samesite=strict" in response.headers["set-cookie"].lower()
    return client


@pytest.fixture
def client(demo: Case, signer: Signer) -> Iterator[TestClient]:
    with _client(demo, signer) as c:
        yield _session(c)


def _post(client: TestClient, path: str, body: object = None, **kw: object) -> object:
    return client.post(
        path,
        json=body if body is not None else {},
        headers={"x-forensic-token": TOKEN, "origin": ORIGIN},
        **kw,
    )


def _snapshot(case: Case) -> dict[str, bytes]:
    return {
        str(p.relative_to(case.root)): p.read_bytes()
        for p in sorted(case.root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _wait(client: TestClient, job: str) -> dict[str, object]:
    for _ in range(600):
        state = client.get(f"/api/jobs/{job}").json()
        if state["state"] != "running":
            return state
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def _recipe(*steps: dict[str, object]) -> dict[str, object]:
    return {"name": "test", "steps": list(steps)}


PERSPECTIVE = {"op": "perspective", "params": {"corners": CORNERS}, "frames": [3, 5]}


# -- the token, the host, CSRF ------------------------------------------------------------------


def test_every_route_needs_the_session_cookie(demo: Case, signer: Signer) -> None:
    with _client(demo, signer) as c:
        for path in ("/", "/api/case", "/api/image/E1", "/api/journal", "/static/app.js"):
            response = c.get(path)
            assert response.status_code == 403, path
            assert "no valid session" in response.json()["error"]
        assert c.post("/api/verify", json={}).status_code == 403


def test_a_wrong_token_is_refused_and_sets_no_cookie(demo: Case, signer: Signer) -> None:
    with _client(demo, signer) as c:
        response = c.get("/?token=" + "y" * 43, follow_redirects=False)
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
        c.cookies.set("forensic_workbench", "y" * 43)
        assert c.get("/api/case").status_code == 403


def test_the_token_becomes_a_cookie_and_the_page_carries_the_csrf_token(
    client: TestClient,
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert f'content="{TOKEN}"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"


def test_a_foreign_host_is_refused(client: TestClient) -> None:
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host.
    response = client.get("/api/case", headers={"host": "evil.example:8765"})
    assert response.status_code == 403
    assert "evil.example" in response.json()["error"]


def test_state_changing_requests_need_the_csrf_header_and_our_origin(client: TestClient) -> None:
    no_header = client.post("/api/verify", json={}, headers={"origin": ORIGIN})
    assert no_header.status_code == 403
    assert "CSRF" in no_header.json()["error"]
    wrong = client.post(
        "/api/verify", json={}, headers={"origin": ORIGIN, "x-forensic-token": "nope"}
    )
    assert wrong.status_code == 403
    foreign = client.post(
        "/api/verify", json={}, headers={"origin": "http://evil.example", "x-forensic-token": TOKEN}
    )
    assert foreign.status_code == 403
    assert "cross-origin" in foreign.json()["error"]
    no_origin = client.post("/api/verify", json={}, headers={"x-forensic-token": TOKEN})
    assert no_origin.status_code == 403
    assert _post(client, "/api/verify").status_code == 200


# -- no path outside the case -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e%2f%2e%2e%2fapi.py",
        "/static/..%5cserver.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/api/image/..%2f..%2fcase.json",
        "/api/image/%2fetc%2fpasswd",
        "/api/image/E1%2f..%2f..%2fjournal.jsonl",
        "/api/image/E1.map",
        "/api/image/R1.1.%2e%2e",
        "/api/thumb/..%2Fcase.json",
        "/api/report/..%2fjournal.pdf",
        "/api/report/%2e%2e.pdf",
        "/api/jobs/..%2f..%2fcase.json",
    ],
)
def test_traversal_attempts_read_nothing_outside_the_case(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 404), (path, response.status_code)
    assert b"case_id" not in response.content
    assert b"root:" not in response.content
    assert b"import" not in response.content


def test_a_symlink_in_the_static_folder_is_not_followed_out(
    demo: Case, signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<meta content='{{TOKEN}}'>", "utf-8")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the case", "utf-8")
    (static / "leak.txt").symlink_to(secret)
    (static / "case.json").symlink_to(demo.root / "case.json")
    monkeypatch.setattr(server_mod, "STATIC", static)
    with _client(demo, signer) as c:
        _session(c)
        for path in ("/static/leak.txt", "/static/case.json"):
            response = c.get(path)
            assert response.status_code == 404, path
            assert b"outside the case" not in response.content


# -- read-only ----------------------------------------------------------------------------------


def test_a_read_only_workbench_refuses_writes_but_looks_and_verifies(
    demo: Case, signer: Signer
) -> None:
    before = _snapshot(demo)
    with _client(demo, None, read_only=True) as c:
        _session(c)
        for path, body in (
            ("/api/run", {"source": "E1", "recipe": _recipe(PERSPECTIVE)}),
            ("/api/cosign", {"step": "R1.1"}),
            ("/api/report/issue", {}),
        ):
            response = _post(c, path, body)
            assert response.status_code == 403, path
            assert "read-only" in response.json()["error"]
        assert c.get("/api/case").json()["read_only"] is True
        assert c.get("/api/image/E1?index=3").status_code == 200
        job = _post(c, "/api/verify").json()["job"]
        assert _wait(c, job)["state"] == "done"
    assert _snapshot(demo) == before


# -- the routes ---------------------------------------------------------------------------------


def test_overview_lists_exhibits_runs_and_the_signer(client: TestClient, signer: Signer) -> None:
    data = client.get("/api/case").json()
    assert data["case_id"] == "T-001"
    assert [e["id"] for e in data["exhibits"]] == ["E1", "E2"]
    video = data["exhibits"][0]
    assert video["media"] == "video"
    assert video["frames"] == 32
    assert len(video["sha256"]) == 64
    assert data["runs"] == []
    assert data["signer"]["fingerprint"] == signer.fingerprint
    assert data["read_only"] is False
    assert data["preview_label"] == "preview: not recorded"
    assert "passphrase" not in json.dumps(data).lower()


def test_video_frames_are_frame_exact_in_any_order(client: TestClient, demo: Case) -> None:
    exhibit = api.exhibits(demo)[0]
    order = list(range(32))
    random.Random(4).shuffle(order)
    accesses = set()
    for index in [*order, 5, 6, 7, 6]:  # also stepping forward and back
        response = client.get(f"/api/image/E1?index={index}")
        assert response.status_code == 200
        info = json.loads(response.headers["x-forensic-info"])
        record = exhibit.frames[index]
        assert info["index"] == index
        assert info["sha256"] == record["sha256"]  # the decoded frame is the one ingested
        assert info["pts"] == record["pts"]
        assert info["picture_type"] == record["type"]
        accesses.add(info["access"])
    assert {"seek", "cache"} <= accesses


def test_a_frame_image_holds_the_decoded_pixels(client: TestClient, demo: Case) -> None:
    from forensic.media import decode_frames

    exhibit = api.exhibits(demo)[0]
    expected = decode_frames(demo.store.local_path(exhibit.stored), {20}, where="test")[20][0]
    png = client.get("/api/image/e1?index=20").content
    shown = np.asarray(Image.open(io.BytesIO(png)))
    assert np.array_equal(shown, expected)
    raw = client.get("/api/image/E1?index=20&raw=1")
    assert raw.headers["content-type"] == "application/x-forensic-pixels"
    layout = json.loads(raw.headers["x-forensic-info"])["raw"]
    assert layout == {"width": 320, "height": 240, "channels": 3}
    pixels = np.frombuffer(raw.content, np.uint8).reshape(240, 320, 3)
    assert np.array_equal(pixels, expected)


def test_jump_to_a_time_finds_the_frame_on_the_pts_timeline(client: TestClient) -> None:
    # 25 fps: 0.28 s is frame 7's start; 0.299 s is still frame 7.
    for seconds, frame in (("0.28", 7), ("0.299", 7), ("0", 0), ("1.27", 31)):
        info = json.loads(client.get(f"/api/image/E1?time={seconds}").headers["x-forensic-info"])
        assert info["index"] == frame, seconds
    outside = client.get("/api/image/E1?time=9")
    assert outside.status_code == 400
    assert "outside the clip" in outside.json()["error"]
    assert client.get("/api/image/E2?time=1").status_code == 400
    assert client.get("/api/image/E1?time=soon").status_code == 400


def test_image_route_refusals(client: TestClient) -> None:
    assert client.get("/api/image/E1?index=32").status_code == 400
    assert "no frame 32" in client.get("/api/image/E1?index=32").json()["error"]
    assert client.get("/api/image/E1?index=-1").status_code == 400
    assert client.get("/api/image/E9").status_code == 400
    assert "no exhibit" in client.get("/api/image/E9").json()["error"]
    assert client.get("/api/image/R1").status_code == 400


def test_still_and_thumbnail(client: TestClient) -> None:
    response = client.get("/api/image/E2")
    info = json.loads(response.headers["x-forensic-info"])
    assert (info["width"], info["height"], info["media"]) == (64, 48, "image")
    thumb = Image.open(io.BytesIO(client.get("/api/thumb/E1").content))
    assert max(thumb.size) <= server_mod.THUMB_PX


def test_operations_carry_the_registry_schema(client: TestClient) -> None:
    ops = {o["name"]: o for o in client.get("/api/operations").json()["operations"]}
    assert ops.keys() == api.operations().keys()
    corners = next(p for p in ops["perspective"]["parameters"] if p["name"] == "corners")
    assert corners["length"] == 8
    assert corners["unit"] == "px"
    assert corners["required"]
    assert ops["perspective"]["references"][0]["doi"]


def test_recipe_check_gives_the_cli_messages(client: TestClient, demo: Case) -> None:
    bad = _recipe({"op": "perspective", "params": {"corners": CORNERS}, "frames": [3, 99]})
    result = _post(client, "/api/recipe/check", {"recipe": bad, "source": "E1"}).json()
    parsed = api.parse_recipe(to_toml(bad).encode(), where="the workbench recipe")
    expected = [str(p) for p in api.plan_run(demo, "E1", parsed).problems]
    assert result["problems"] == expected
    assert any("outside the video's 32 frames" in p for p in result["problems"])
    unknown = _post(
        client, "/api/recipe/check", {"recipe": _recipe({"op": "no_such_op"}), "source": "E1"}
    ).json()
    assert "no_such_op" in unknown["problems"][0]
    good = _post(client, "/api/recipe/check", {"recipe": _recipe(PERSPECTIVE), "source": "E1"})
    assert good.json()["problems"] == []
    assert 'op = "perspective"' in good.json()["toml"]


def test_recipe_toml_round_trip(client: TestClient) -> None:
    toml = _post(client, "/api/recipe/check", {"recipe": _recipe(PERSPECTIVE)}).json()["toml"]
    loaded = _post(client, "/api/recipe/parse", {"toml": toml}).json()
    step = loaded["recipe"]["steps"][0]
    assert step["op"] == "perspective"
    assert step["params"]["corners"] == CORNERS
    assert step["frames"] == [3, 5]
    broken = _post(client, "/api/recipe/parse", {"toml": "[[steps]\nop="})
    assert broken.status_code == 400


def test_preview_is_computed_but_never_recorded(client: TestClient, demo: Case) -> None:
    before = _snapshot(demo)
    response = _post(
        client, "/api/preview", {"recipe": _recipe(PERSPECTIVE), "source": "E1", "index": 4}
    )
    assert response.status_code == 200
    info = json.loads(response.headers["x-forensic-info"])
    assert info["label"] == "preview: not recorded"
    assert info["recorded"] is False
    assert info["steps"][0]["applied"] is True
    shown = np.asarray(Image.open(io.BytesIO(response.content)))
    assert shown.shape[:2] == (info["height"], info["width"])
    assert info["provenance"]["resampled"] == info["width"] * info["height"]
    assert _snapshot(demo) == before  # nothing stored, nothing journaled
    temporal = _post(
        client,
        "/api/preview",
        {"recipe": _recipe({"op": "average_frames", "frames": [0, 3]}), "source": "E1"},
    )
    assert temporal.status_code == 400
    assert "cannot be previewed on one frame" in temporal.json()["error"]


def test_preview_equals_the_run_output(client: TestClient, demo: Case) -> None:
    preview = _post(
        client, "/api/preview", {"recipe": _recipe(PERSPECTIVE), "source": "E1", "index": 4}
    )
    job = _post(client, "/api/run", {"recipe": _recipe(PERSPECTIVE), "source": "E1"}).json()
    assert _wait(client, job["job"])["state"] == "done"
    output = client.get("/api/image/R1?index=1")  # the run's frames 3, 4, 5: frame 4 is second
    assert json.loads(output.headers["x-forensic-info"])["source_frame"] == 4
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(output.content))),
        np.asarray(Image.open(io.BytesIO(preview.content))),
    )


def test_run_lands_a_signed_run_that_verifies(client: TestClient, demo: Case) -> None:
    started = _post(client, "/api/run", {"recipe": _recipe(PERSPECTIVE), "source": "E1"})
    job = started.json()["job"]
    state = _wait(client, job)
    assert state["state"] == "done", state
    assert state["done"] == state["total"] == 3
    assert state["result"]["run"] == "R1"
    runs = client.get("/api/case").json()["runs"]
    assert [r["id"] for r in runs] == ["R1"]
    assert runs[0]["steps"][0]["op"] == "perspective"
    assert api.find_run(demo, "R1").steps[0].params["corners"] == CORNERS
    pmap = client.get("/api/image/R1.map?index=0")
    assert pmap.status_code == 200
    assert set(np.unique(np.asarray(Image.open(io.BytesIO(pmap.content))))) == {2}  # resampled
    verify = _wait(client, _post(client, "/api/verify").json()["job"])
    assert verify["state"] == "done"
    assert verify["result"]["ok"] is True
    assert [c["number"] for c in verify["checks"]] == list(range(1, len(verify["checks"]) + 1))
    journal = client.get("/api/journal").json()["entries"]
    assert [e["kind"] for e in journal][-2:] == ["run.step", "run"]


def test_a_run_with_problems_is_refused_with_every_problem(client: TestClient, demo: Case) -> None:
    before = _snapshot(demo)
    bad = _recipe({"op": "perspective", "params": {"corners": CORNERS}, "frames": [30, 40]})
    response = _post(client, "/api/run", {"recipe": bad, "source": "E1"})
    assert response.status_code == 400
    assert "outside the video" in response.json()["problems"][0]
    assert _snapshot(demo) == before


def test_a_run_can_be_cancelled_and_records_nothing(client: TestClient, demo: Case) -> None:
    from forensic.workbench.server import Job

    before = _snapshot(demo)
    slow = _recipe({"op": "denoise_nl_means", "frames": [0, 31]})
    job = _post(client, "/api/run", {"recipe": slow, "source": "E1"}).json()["job"]
    _post(client, f"/api/jobs/{job}/cancel")
    state = _wait(client, job)
    assert state["state"] == "cancelled", state
    assert "nothing was recorded" in str(state["error"])
    assert _snapshot(demo) == before
    assert Job("x").as_dict("j")["state"] == "running"


def test_cosign_and_reports_explain_what_they_cannot_do(client: TestClient) -> None:
    _wait(
        client,
        _post(client, "/api/run", {"recipe": _recipe(PERSPECTIVE), "source": "E1"}).json()["job"],
    )
    classical = _post(client, "/api/cosign", {"step": "R1.1"})
    assert classical.status_code == 400
    assert "only generative steps are co-signed" in classical.json()["error"]
    assert _post(client, "/api/cosign", {"step": "../R1"}).status_code == 400
    issue = _post(client, "/api/report/issue")
    assert issue.status_code == 400
    assert "no report-signing key" in issue.json()["error"]
    assert client.get("/api/report/1.pdf").status_code == 400
    not_pdf = client.post(
        "/api/report/verify",
        content=b"not a pdf",
        headers={"x-forensic-token": TOKEN, "origin": ORIGIN},
    )
    verdict = not_pdf.json()
    assert verdict["ok"] is False
    assert verdict["checks"][0]["status"] == "FAILED"


def test_jobs_unknown_and_journal(client: TestClient) -> None:
    assert client.get("/api/jobs/nope").status_code == 404
    entries = client.get("/api/journal").json()["entries"]
    assert [e["kind"] for e in entries][:1] == ["case.open"]
    assert all(len(e["hash"]) == 64 for e in entries)


@pytest.mark.slow  # issues a signed PDF report (about 10 s)
def test_issue_view_and_verify_a_report(demo: Case, signer: Signer, tmp_path: Path) -> None:
    from forensic.keys import create_key

    # A second examiner with a lab PKI of their own (the session key stays without one).
    keys = tmp_path / "keys"
    create_key(keys, name="Report Examiner", passphrase="report-passphrase", now=NOW)
    _, report_signer = api.pki_init(keys, lab="Test Lab", passphrase="report-passphrase", now=NOW)
    bench_signer = api.unlock_signer(keys, "report-passphrase")
    api.add_examiner(demo, api.public_key_pem(keys), name="Report Examiner", signer=signer, now=NOW)
    api.pki_bind(demo, bench_signer, report_signer, now=NOW)
    bench = Workbench(
        case_dir=demo.root,
        token=TOKEN,
        signer=bench_signer,
        report_signer=report_signer,
        now=lambda: NOW,
    )
    with TestClient(create_app(bench, hosts=[HOST]), base_url=ORIGIN) as c:
        _session(c)
        assert c.get("/api/case").json()["reports_enabled"] is True
        issued = _post(c, "/api/report/issue")
        assert issued.status_code == 200, issued.text
        number = issued.json()["number"]
        pdf = c.get(f"/api/report/{number}.pdf")
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        verdict = c.post(
            f"/api/report/verify?number={number}",
            content=b"",
            headers={"x-forensic-token": TOKEN, "origin": ORIGIN},
        ).json()
        assert verdict["ok"] is True, verdict
        tampered = bytearray(pdf.content)
        tampered[len(tampered) // 2] ^= 0x01
        upload = c.post(
            "/api/report/verify",
            content=bytes(tampered),
            headers={"x-forensic-token": TOKEN, "origin": ORIGIN},
        ).json()
        assert upload["ok"] is False


# -- starting it --------------------------------------------------------------------------------


def test_serve_binds_to_localhost_asks_the_passphrase_once_and_prints_a_token_url(
    demo: Case, key_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from forensic.workbench import serve
    from tests.conftest import PASSPHRASE

    started: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: started.append(self.config))
    asked: list[int] = []
    said: list[str] = []

    def ask() -> str:
        asked.append(1)
        return PASSPHRASE

    serve(
        demo.root,
        port=8799,
        open_browser=False,
        key_dir=key_dir,
        passphrase=ask,
        announce=said.append,
    )
    assert asked == [1]  # once, in the terminal; never a route
    (config,) = started
    assert (config.host, config.port) == ("127.0.0.1", 8799)
    assert said[0].startswith("Workbench for case T-001: http://127.0.0.1:8799/?token=")
    token = said[0].rsplit("token=", 1)[1]
    assert len(token) >= 43  # 256 random bits
    assert PASSPHRASE not in "".join(said)


def test_serve_refuses_a_port_in_use(demo: Case) -> None:
    import socket

    from forensic.errors import InputError
    from forensic.workbench import serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve(demo.root, port=port, read_only=True, open_browser=False)


def test_read_only_serve_needs_no_passphrase(demo: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from forensic.workbench import serve

    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    said: list[str] = []

    def refuse() -> str:
        raise AssertionError("a read-only workbench must not ask for the passphrase")

    serve(demo.root, open_browser=False, read_only=True, passphrase=refuse, announce=said.append)
    assert "(read-only)" in said[0]


def test_cli_workbench_command(run_cli: Any, tmp_path: Path) -> None:
    code, out, _ = run_cli("workbench", "--help")
    assert code == 0
    for option in ("--port", "--read-only", "--no-browser"):
        assert option in out
    code, _, err = run_cli("workbench", tmp_path / "no-such-case", "--no-browser")
    assert code != 0
    assert "error:" in err
    assert "Traceback" not in err


def test_still_run_output_map_and_kept_intermediates(client: TestClient) -> None:
    steps = [
        {"op": "invert"},
        {"op": "crop", "params": {"x": 8, "y": 4, "width": 32, "height": 24}},
    ]
    started = _post(
        client,
        "/api/run",
        {"recipe": _recipe(*steps), "source": "E2", "keep_intermediates": True},
    )
    assert _wait(client, started.json()["job"])["state"] == "done"
    run = client.get("/api/case").json()["runs"][0]
    assert [s["kept"] for s in run["steps"]] == [True, True]
    still = np.asarray(Image.open(io.BytesIO(client.get("/api/image/E2").content)))
    first = client.get("/api/image/R1.1")
    assert json.loads(first.headers["x-forensic-info"])["kind"] == "intermediate"
    inverted = np.asarray(Image.open(io.BytesIO(first.content)))
    assert np.array_equal(inverted, 255 - still)
    output = np.asarray(Image.open(io.BytesIO(client.get("/api/image/R1").content)))
    assert np.array_equal(output, 255 - still[4:28, 8:40])
    pmap = np.asarray(Image.open(io.BytesIO(client.get("/api/image/r1.map").content)))
    assert pmap.shape == (24, 32)
    assert set(np.unique(pmap)) == {1}  # transformed (inverted), then cropped
    missing = client.get("/api/image/R1.3")
    assert missing.status_code == 400
    assert "no such intermediate" in missing.json()["error"]


def test_generative_step_maps_inferred_pixels_and_cosignature(
    tmp_path: Path, signer: Signer, other_signer: Signer, other_key_dir: Path
) -> None:
    still = tmp_path / "still.png"
    rng = np.random.default_rng(11)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(still)
    case = api.create_case(
        tmp_path / "leads",
        case_id="INV-1",
        title="leads",
        policy_path=None,
        signer=signer,
        now=NOW,
        profile="investigative",
    )
    api.ingest(case, [still], signer=signer, now=NOW)
    api.add_examiner(case, api.public_key_pem(other_key_dir), name="Other", signer=signer, now=NOW)
    inpaint = {
        "op": "generative.inpaint_telea",
        "params": {"x": 8, "y": 8, "width": 16, "height": 16},
    }
    with _client(case, signer) as c:
        _session(c)
        job = _post(c, "/api/run", {"recipe": _recipe(inpaint), "source": "E1"}).json()["job"]
        assert _wait(c, job)["state"] == "done"
        data = c.get("/api/case").json()
        (run,) = data["runs"]
        assert run["tainted"] is True
        assert run["provenance"]["inferred"] == 16 * 16
        assert data["awaiting_cosignature"] == [
            {"run": "R1", "step": 1, "op": "generative.inpaint_telea"}
        ]
        maps = run["steps"][0]["maps"]
        assert maps
        for name in maps:
            assert c.get(f"/api/image/R1.1.{name}").status_code == 200, name
        pmap = np.asarray(Image.open(io.BytesIO(c.get("/api/image/R1.map").content)))
        assert int((pmap == 3).sum()) == 16 * 16
        output = json.loads(c.get("/api/image/R1").headers["x-forensic-info"])
        assert output["inferred_box"] == [8, 8, 23, 23]
        assert (pmap[8:24, 8:24] == 3).all()
        own = _post(c, "/api/cosign", {"step": "R1.1"})
        assert own.status_code == 400
        assert "signed by this examiner" in own.json()["error"]
    with _client(case, other_signer) as c:
        _session(c)
        done = _post(c, "/api/cosign", {"step": "r1.1"})
        assert done.status_code == 200, done.text
        assert c.get("/api/case").json()["awaiting_cosignature"] == []


def test_frame_reader_prefetches_the_next_frame_and_never_shows_a_wrong_one(
    demo: Case,
) -> None:
    from forensic.pipeline.viewer import FrameReader

    exhibit = api.exhibits(demo)[0]
    path = demo.store.local_path(exhibit.stored)
    reader = FrameReader(path, where="E1", recorded=exhibit.frames)
    reader.prefetching = False  # prefetch by hand, to see it
    assert reader.frame(5).access == "start"
    reader.prefetch(6)
    assert reader.frame(6).access == "cache"
    reader.prefetch(20)  # not next to the decoder: nothing happens
    assert reader.frame(20).access == "seek"
    # A reader whose record says the frames are in another order (as if a seek had landed
    # wrong) never shows a frame that is not the recorded one.
    shuffled = [dict(f) for f in exhibit.frames]
    shuffled[13]["sha256"], shuffled[14]["sha256"] = shuffled[14]["sha256"], shuffled[13]["sha256"]
    liar = FrameReader(path, where="E1", recorded=shuffled)
    with pytest.raises(CaseError, match="frame 13 no longer decodes to its hash"):
        liar.frame(13)
    reader.close()
    liar.close()


def test_each_port_has_its_own_session_cookie(demo: Case, signer: Signer) -> None:
    one = Workbench(case_dir=demo.root, token=TOKEN, signer=signer, cookie="wb_8765")
    other = Workbench(case_dir=demo.root, token="t" * 43, signer=signer, cookie="wb_8766")
    with TestClient(create_app(one, hosts=[HOST]), base_url=ORIGIN) as c:
        response = c.get(f"/?token={TOKEN}", follow_redirects=False)
        assert response.headers["set-cookie"].startswith("wb_8765=")
        assert c.get("/api/case").status_code == 200
        cookies = dict(c.cookies)
    with TestClient(create_app(other, hosts=[HOST]), base_url=ORIGIN) as c:
        for name, value in cookies.items():
            c.cookies.set(name, value)
        assert c.get("/api/case").status_code == 403  # the other port's session is not this one

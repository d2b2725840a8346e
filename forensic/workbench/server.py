"""The workbench's routes: a Starlette application over `forensic.api`.

Every route names things by their case identifiers (``E1``, ``R2``, ``R2.map``, ``R2.3``,
report numbers), checked against a pattern and resolved through the journal; no route takes a
file name or a path, so nothing outside the case can be read (static files are the package's
own, served by Starlette's `StaticFiles`, which refuses ``..`` and links leading out).

Writes (run, co-sign, issue a report) are signed with the key unlocked in the terminal at
start; the passphrase never reaches the browser. Previews are computed in memory and never
recorded. See `forensic.workbench.security` for the token, CSRF and read-only rules.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from forensic import api
from forensic.errors import ForensicError, InputError
from forensic.workbench import recipes
from forensic.workbench.security import COOKIE, Guard

STATIC = Path(__file__).parent / "static"
EXHIBIT_REF = re.compile(r"^[Ee][1-9][0-9]{0,5}$")
IMAGE_REF = re.compile(
    r"^([Ee][1-9][0-9]{0,5}|[Rr][1-9][0-9]{0,5}(\.map|\.[1-9][0-9]{0,3}(\.[a-z_]{1,32})?)?)$"
)
SOURCE_REF = re.compile(r"^([Ee]|[Rr])[1-9][0-9]{0,5}$")
STEP_REF = re.compile(r"^[Rr][1-9][0-9]{0,5}\.[1-9][0-9]{0,3}$")
#: Routes that write to the case: refused by a read-only workbench.
WRITE_PATHS = ("/api/run", "/api/cosign", "/api/report/issue")
PREVIEW_LABEL = "preview: not recorded"
RAW_TYPE = "application/x-forensic-pixels"
THUMB_PX = 160
MAX_BODY = 64 * 1024 * 1024  # a report PDF to verify is the largest thing posted


@dataclass
class Job:
    """A run or a verification working in the background, as the page polls it."""

    kind: str
    state: str = "running"  # running, done, failed, cancelled
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    checks: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    cancel: bool = False

    def as_dict(self, job_id: str) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        eta = None
        if self.state == "running" and self.done and self.total:
            eta = round(elapsed / self.done * (self.total - self.done), 1)
        return {
            "job": job_id,
            "kind": self.kind,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "elapsed_s": round(elapsed, 1),
            "eta_s": eta,
            "checks": self.checks,
            "result": self.result,
            "error": self.error,
        }


@dataclass
class Workbench:
    """One case served to one examiner."""

    case_dir: Path
    token: str
    read_only: bool = False
    signer: Any = None  # the journal signer, unlocked in the terminal (None: read-only)
    report_signer: Any = None  # the report-signing key, when the lab PKI is set up
    report_note: str = ""  # why reports cannot be issued, when they cannot
    cookie: str = COOKIE  # the session cookie's name (one per port)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    jobs: dict[str, Job] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _viewer: Any = None
    _case: Any = None

    @property
    def case(self) -> Any:
        if self._case is None:
            self._case = api.open_case(self.case_dir)
        return self._case

    @property
    def viewer(self) -> Any:
        with self.lock:  # routes run on worker threads: one viewer (and its caches) for all
            if self._viewer is None:
                self._viewer = api.case_viewer(self.case)
            return self._viewer

    def close(self) -> None:
        if self._viewer is not None:
            self._viewer.close()

    def start(self, kind: str, work: Callable[[Job], dict[str, Any]]) -> str:
        job_id = uuid.uuid4().hex[:12]
        job = Job(kind)
        with self.lock:
            if any(j.state == "running" and j.kind == kind for j in self.jobs.values()):
                raise InputError(f"a {kind} is already running; wait for it to finish")
            self.jobs[job_id] = job

        def target() -> None:
            try:
                job.result = work(job)
                job.state = "done"
            except ForensicError as exc:
                job.error = str(exc)
                job.state = "cancelled" if getattr(exc, "exit_code", 0) == 130 else "failed"
            except Exception as exc:  # shown on the page, never a silent thread death
                job.error = f"internal error: {type(exc).__name__}: {exc}"
                job.state = "failed"

        threading.Thread(target=target, name=f"workbench-{kind}", daemon=True).start()
        return job_id


# -- helpers -------------------------------------------------------------------------------------


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _display(image: Any) -> Any:
    """8-bit pixels for the screen (values under the cursor are the stored 8-bit ones; a
    16-bit or float image is shown scaled, and its dtype is reported)."""
    pixels = np.asarray(image)
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return (pixels >> 8).astype(np.uint8)
    if pixels.dtype == bool:
        return pixels.astype(np.uint8) * 255
    return (np.clip(pixels.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


#: The provenance class of pixels a generative step invented (forensic.provenance.INFERRED).
INFERRED = 3


def inferred_box(pmap: Any) -> list[int] | None:
    """The bounding box [x0, y0, x1, y1] of the inferred pixels of a provenance map, so that
    the page labels them wherever the image is shown; None when there are none."""
    if pmap is None:
        return None
    rows, cols = np.nonzero(np.asarray(pmap) == INFERRED)
    if rows.size == 0:
        return None
    return [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())]


def png_bytes(image: Any, *, fast: bool = True) -> bytes:
    pixels = _display(image)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    out = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels)).save(
        out, format="PNG", compress_level=1 if fast else 6
    )
    return out.getvalue()


def _png(image: Any, info: dict[str, Any]) -> Response:
    return Response(
        png_bytes(image),
        media_type="image/png",
        headers={"x-forensic-info": json.dumps(info, default=str)},
    )


def _raw(image: Any, info: dict[str, Any]) -> Response:
    """The displayed pixels as bytes, row by row (``channels`` 1 or 3 per pixel, 8 bits):
    what the page draws and reads values from. No encoding: a 1080p PNG costs the server
    far longer than stepping a frame may take, and the connection is local."""
    pixels = _display(image)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    channels = 1 if pixels.ndim == 2 else int(pixels.shape[2])
    header = {
        **info,
        "raw": {"width": pixels.shape[1], "height": pixels.shape[0], "channels": channels},
    }
    return Response(
        np.ascontiguousarray(pixels).tobytes(),
        media_type=RAW_TYPE,
        headers={"x-forensic-info": json.dumps(header, default=str)},
    )


def _picture(image: Any, info: dict[str, Any], raw: bool) -> Response:
    return _raw(image, info) if raw else _png(image, info)


def _json_body(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY:
        raise InputError("the request is too large")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InputError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body


def _index(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise InputError(f"frame {value!r} is not a number") from None
    if index < 0:
        raise InputError(f"frame {index} is negative")
    return index


def _source(value: Any) -> str:
    if not isinstance(value, str) or not SOURCE_REF.match(value):
        raise InputError(f"{value!r} is not an exhibit (E1) or a run (R2)")
    return value.upper()


def _recipe_from(body: dict[str, Any]) -> tuple[str, Any]:
    """(TOML text, parsed recipe) from the editor's recipe or from TOML text."""
    if isinstance(body.get("toml"), str):
        text = body["toml"]
    else:
        recipe = body.get("recipe")
        if not isinstance(recipe, dict):
            raise InputError("no recipe given")
        text = recipes.to_toml(recipe)
    return text, api.parse_recipe(text.encode("utf-8"), where="the workbench recipe")


def _mask_refs(run: Any, step: Any) -> list[str]:
    """The viewer refs of a defect step's masks (``R2.3.mask_dust``, ..., ``R2.3.mask``): a
    video step names its mask videos; a still step's details name its masks."""
    if run.is_video:
        names = list(step.get("masks") or {})
    else:
        records: list[dict[str, Any]] = step.applied()
        details: dict[str, Any] = (records[0].get("details") if records else None) or {}
        kinds = details.get("masks")
        names = [
            k
            for k, v in (kinds.items() if isinstance(kinds, dict) else [])
            if isinstance(v, dict) and "sha256" in v
        ]
        if isinstance(details.get("mask"), dict) and "sha256" in details["mask"]:
            names.append("mask")
    ordered = [n for n in names if n != "mask"] + [n for n in names if n == "mask"]
    prefix = f"{run.run_id}.{step.number}"
    return [f"{prefix}.mask" if n == "mask" else f"{prefix}.mask_{n}" for n in ordered]


def _norm(ref: str) -> str:
    return ref[0].upper() + ref[1:]


def _problem(exc: ForensicError) -> str:
    return str(exc)


# -- the application ----------------------------------------------------------------------------


def create_app(bench: Workbench, *, hosts: list[str]) -> Starlette:
    """The workbench application for ``bench``; ``hosts`` are the Host header values it
    answers (its own address)."""

    def guarded(handler: Callable[[Request, bytes], Response]) -> Callable[[Request], Any]:
        """The route on a worker thread (decoding and computing block), with the case's
        errors as messages (400) and bugs as a one-line internal error (500)."""

        async def endpoint(request: Request) -> Response:
            raw = await request.body() if request.method == "POST" else b""
            try:
                return await run_in_threadpool(handler, request, raw)
            except ForensicError as exc:
                return _error(400, _problem(exc))
            except Exception as exc:
                return _error(500, f"internal error: {type(exc).__name__}: {exc}")

        return endpoint

    def index(request: Request, raw: bytes) -> Response:
        html = (STATIC / "index.html").read_text("utf-8")
        html = html.replace("{{TOKEN}}", bench.token)
        return HTMLResponse(html)

    def overview(request: Request, raw: bytes) -> Response:
        case = bench.case
        data = api.case_overview(case)
        entries = case.entries()
        opened = entries[0].payload if entries else {}
        exhibits = []
        for ex in data.exhibits:
            facts = dict(ex.facts)
            exhibits.append(
                {
                    "id": ex.exhibit_id,
                    "name": ex.name,
                    "media": ex.media,
                    "sha256": ex.sha256,
                    "pixel_sha256": ex.payload.get("pixel_hash", {}).get("sha256"),
                    "frames": len(ex.frames) if ex.is_video else None,
                    "facts": {
                        k: facts[k]
                        for k in (
                            "width",
                            "height",
                            "codec",
                            "frame_rate",
                            "duration_s",
                            "frame_count",
                            "pix_fmt",
                            "interlaced_frames",
                            "time_base",
                            "format",
                        )
                        if k in facts
                    },
                    "warnings": list(ex.payload.get("warnings") or []),
                }
            )
        superseded = {r.get("supersedes") for r in data.runs if r.get("supersedes")}
        runs = [
            {
                "id": run.run_id,
                "name": run.name,
                "exhibit": run.exhibit_id,
                "source_run": run.source_run,
                "media": run.media,
                "lanes": run.lanes,
                "tainted": run.tainted,
                "frames": run.frame_count,
                "warnings": run.warnings,
                "superseded": run.run_id in superseded,
                "steps": [
                    {
                        "step": s.number,
                        "op": s.op,
                        "lane": s.lane,
                        "params": s.params,
                        "warnings": s.warnings,
                        "kept": bool(
                            not run.is_video
                            and any("file" in (r.get("output") or {}) for r in s.applied())
                        ),
                        # A still generative step's maps (inferred content, uncertainty...).
                        "maps": sorted(
                            name
                            for r in ([] if run.is_video else s.applied())
                            for name in (r.get("maps") or {}).get("files", {})
                        ),
                        # A defect step's masks, as viewer refs (R2.3.mask_dust, R2.3.mask).
                        "masks": _mask_refs(run, s),
                        # A generative video step's temporal consistency (flicker factor).
                        "temporal_consistency": s.get("temporal_consistency"),
                    }
                    for s in run.steps
                ],
                "provenance": dict(run.provenance.get("counts") or {}),
            }
            for run in data.runs
        ]
        return JSONResponse(
            {
                "case_id": case.case_id,
                "title": opened.get("title", ""),
                "entries": data.entries,
                "policy": data.policy,
                "examiners": data.examiners,
                "exhibits": exhibits,
                "runs": runs,
                "reports": [r.as_dict() for r in data.reports],
                "awaiting_cosignature": data.awaiting_cosignature,
                "read_only": bench.read_only,
                "signer": None
                if bench.signer is None
                else {"name": bench.signer.name, "fingerprint": bench.signer.fingerprint},
                "reports_enabled": bench.report_signer is not None and not bench.read_only,
                "report_note": bench.report_note,
                "preview_label": PREVIEW_LABEL,
            }
        )

    def image(request: Request, raw: bytes) -> Response:
        ref = request.path_params["ref"]
        if not IMAGE_REF.match(ref):
            return _error(404, f"{ref!r} is not an image of this case (E1, R2, R2.map, R2.3)")
        index = _index(request.query_params.get("index"))
        started = time.perf_counter()
        at = request.query_params.get("time")
        if at is not None and EXHIBIT_REF.match(ref):
            try:
                seconds = float(at)
            except ValueError:
                raise InputError(f"time {at!r} is not a number of seconds") from None
            index = bench.viewer.frame_at(_norm(ref), seconds)
        shown = bench.viewer.image(_norm(ref), index)
        info = {
            **shown.info,
            "inferred_box": inferred_box(shown.provenance_map),
            "decode_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        return _picture(shown.image, info, request.query_params.get("raw") == "1")

    def thumb(request: Request, raw: bytes) -> Response:
        ref = request.path_params["ref"]
        if not IMAGE_REF.match(ref):
            return _error(404, f"{ref!r} is not an image of this case")
        shown = bench.viewer.image(_norm(ref), None)
        pixels = np.asarray(shown.image)
        step = max(1, int(np.ceil(max(pixels.shape[:2]) / THUMB_PX)))
        return _png(pixels[::step, ::step], shown.info)

    def operations(request: Request, raw: bytes) -> Response:
        ops = [op.as_dict() for op in api.operations().values()]
        return JSONResponse({"operations": sorted(ops, key=lambda o: (o["category"], o["name"]))})

    def devices(request: Request, raw: bytes) -> Response:
        # The run's device choices (auto, cpu, cuda) and why one is not available here.
        return JSONResponse({"devices": api.generative_devices(bench.case)})

    def recipe_check(request: Request, raw: bytes) -> Response:
        body = _json_body(raw)
        try:
            text, parsed = _recipe_from(body)
        except ForensicError as exc:
            return JSONResponse({"toml": None, "problems": [_problem(exc)]})
        problems: list[str] = []
        if body.get("source"):
            plan = api.plan_run(bench.case, _source(body["source"]), parsed)
            problems = [_problem(p) for p in plan.problems]
        return JSONResponse(
            {"toml": text, "problems": problems, "recipe": recipes.from_parsed(parsed)}
        )

    def recipe_parse(request: Request, raw: bytes) -> Response:
        body = _json_body(raw)
        text = body.get("toml")
        if not isinstance(text, str):
            raise InputError("no TOML text given")
        parsed = api.parse_recipe(text.encode("utf-8"), where="the loaded recipe")
        return JSONResponse({"recipe": recipes.from_parsed(parsed), "toml": text})

    def preview(request: Request, raw: bytes) -> Response:
        body = _json_body(raw)
        source = _source(body.get("source"))
        index = _index(body.get("index"))
        _, parsed = _recipe_from(body)
        frame = None
        if source.startswith("E"):
            shown = bench.viewer.image(source, index)
            frame = shown.image
            index = shown.info.get("index")
        started = time.perf_counter()
        result = api.preview_recipe(bench.case, source, parsed, index=index, image=frame)
        info = {
            "label": PREVIEW_LABEL,
            "recorded": False,
            "source": source,
            "index": index,
            "steps": result.steps,
            "warnings": result.warnings,
            "compute_ms": round(result.duration_ms, 1),
            "total_ms": round((time.perf_counter() - started) * 1000, 1),
            "width": int(result.image.shape[1]),
            "height": int(result.image.shape[0]),
            "inferred_box": inferred_box(result.provenance_map),
            "provenance": {
                name: int((result.provenance_map == code).sum())
                for code, name in enumerate(
                    ("original", "transformed", "resampled", "inferred", "redacted")
                )
            },
        }
        return _picture(result.image, info, bool(body.get("raw")))

    def run(request: Request, raw: bytes) -> Response:
        if bench.signer is None:
            raise InputError("no examiner key was unlocked at start: this workbench cannot sign")
        body = _json_body(raw)
        source = _source(body.get("source"))
        text, parsed = _recipe_from(body)
        name = body.get("name") or None
        # Where generative steps run ("auto", "cpu" or "cuda"), as `enhance --device`.
        device = str(body.get("device") or "auto")
        plan = api.plan_run(bench.case, source, parsed, device=device)
        if plan.problems:
            return JSONResponse({"problems": [_problem(p) for p in plan.problems]}, 400)

        def work(job: Job) -> dict[str, Any]:
            def progress(done: int, total: int) -> None:
                job.done, job.total = done, total

            summary = api.run_recipe(
                bench.case,
                source,
                parsed,
                signer=bench.signer,
                now=bench.now(),
                name=name,
                keep_intermediates=bool(body.get("keep_intermediates")),
                again=bool(body.get("again")),
                progress=progress,
                cancel=lambda: job.cancel,
                device=device,
            )
            return dict(summary.as_dict())

        return JSONResponse({"job": bench.start("run", work), "toml": text})

    def verify(request: Request, raw: bytes) -> Response:
        body = _json_body(raw)
        pixels, replay = bool(body.get("pixels")), bool(body.get("replay"))

        def work(job: Job) -> dict[str, Any]:
            def progress(check: Any) -> None:
                job.checks.append(check.as_dict())
                job.done = len(job.checks)

            verdict = api.verify_case(
                bench.case_dir, pixels=pixels, replay=replay, progress=progress
            )
            job.checks = [c.as_dict() for c in verdict.checks]
            return dict(verdict.as_dict())

        return JSONResponse({"job": bench.start("verify", work)})

    def job_status(request: Request, raw: bytes) -> Response:
        job = bench.jobs.get(request.path_params["job"])
        if job is None:
            return _error(404, "no such job")
        return JSONResponse(job.as_dict(request.path_params["job"]))

    def job_cancel(request: Request, raw: bytes) -> Response:
        job = bench.jobs.get(request.path_params["job"])
        if job is None:
            return _error(404, "no such job")
        job.cancel = True
        return JSONResponse(job.as_dict(request.path_params["job"]))

    def journal(request: Request, raw: bytes) -> Response:
        rows = [
            {
                "seq": e.seq,
                "kind": e.kind,
                "time": e.time,
                "actor": e.actor,
                "hash": e.hash,
                "payload": e.payload,
            }
            for e in bench.case.entries()
        ]
        return JSONResponse({"entries": rows})

    def cosign(request: Request, raw: bytes) -> Response:
        if bench.signer is None:
            raise InputError("no examiner key was unlocked at start: this workbench cannot sign")
        body = _json_body(raw)
        step = body.get("step")
        if not isinstance(step, str) or not STEP_REF.match(step):
            raise InputError(f"{step!r} is not a step (RUN.STEP, e.g. R1.2)")
        entry = api.cosign(bench.case, step.upper(), signer=bench.signer, now=bench.now())
        return JSONResponse(
            {"step": step.upper(), "entry": entry.hash, "statement": api.COSIGN_STATEMENT}
        )

    def report_issue(request: Request, raw: bytes) -> Response:
        if bench.signer is None or bench.report_signer is None:
            raise InputError(
                "reports cannot be issued from this workbench: "
                + (bench.report_note or "no report-signing key was unlocked at start")
            )
        with tempfile.TemporaryDirectory(prefix="forensic-workbench-") as scratch:
            # The report is kept in the case; the copy written "out" is not needed here.
            issued = api.issue_report(
                bench.case,
                out=Path(scratch) / "report.pdf",
                signer=bench.signer,
                report_signer=bench.report_signer,
                now=bench.now(),
            )
        return JSONResponse(
            {"number": issued.number, "sha256": issued.sha256, "pages": issued.pages}
        )

    def _report(number: str) -> Any:
        for record in api.case_overview(bench.case).reports:
            if str(record.number) == number and not record.approval:
                return record
        raise InputError(f"case {bench.case.case_id} has no report {number}")

    def report_pdf(request: Request, raw: bytes) -> Response:
        number = request.path_params["number"]
        if not number.isdigit():
            return _error(404, "not a report number")
        record = _report(number)
        data = bench.case.store.read_checked(record.file, f"report {number}")
        return Response(
            data,
            media_type="application/pdf",
            headers={"content-disposition": f'inline; filename="report-{number}.pdf"'},
        )

    def report_verify(request: Request, raw: bytes) -> Response:
        if len(raw) > MAX_BODY:
            raise InputError("the report is too large")
        number = request.query_params.get("number")
        with tempfile.TemporaryDirectory(prefix="forensic-workbench-") as scratch:
            path = Path(scratch) / "report.pdf"
            if number is not None:
                if not number.isdigit():
                    raise InputError("not a report number")
                raw = bench.case.store.read_checked(_report(number).file, f"report {number}")
            if not raw:
                raise InputError("no report file was sent")
            path.write_bytes(raw)
            verdict = api.verify_report(path, case_dir=bench.case_dir)
            result = verdict.as_dict()
        result["report"] = f"report {number}" if number else "the uploaded file"
        return JSONResponse(result)

    routes = [
        Route("/", guarded(index)),
        Route("/api/case", guarded(overview)),
        Route("/api/image/{ref}", guarded(image)),
        Route("/api/thumb/{ref}", guarded(thumb)),
        Route("/api/operations", guarded(operations)),
        Route("/api/devices", guarded(devices)),
        Route("/api/recipe/check", guarded(recipe_check), methods=["POST"]),
        Route("/api/recipe/parse", guarded(recipe_parse), methods=["POST"]),
        Route("/api/preview", guarded(preview), methods=["POST"]),
        Route("/api/run", guarded(run), methods=["POST"]),
        Route("/api/verify", guarded(verify), methods=["POST"]),
        Route("/api/jobs/{job}", guarded(job_status)),
        Route("/api/jobs/{job}/cancel", guarded(job_cancel), methods=["POST"]),
        Route("/api/journal", guarded(journal)),
        Route("/api/cosign", guarded(cosign), methods=["POST"]),
        Route("/api/report/issue", guarded(report_issue), methods=["POST"]),
        Route("/api/report/{number}.pdf", guarded(report_pdf)),
        Route("/api/report/verify", guarded(report_verify), methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(
        Guard,
        token=bench.token,
        hosts=hosts,
        read_only=bench.read_only,
        write_paths=WRITE_PATHS,
        cookie=bench.cookie,
    )
    return app

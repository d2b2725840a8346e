"""`forensic batch`: jobs over a local Dask cluster of 2 worker processes give the same record
and the same bytes as one process running the same commands; resuming, failures, a killed
worker, manifest errors, safe split points."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from forensic import api
from forensic.batch import connect, load_manifest, run_batch
from forensic.case import Case, init_case
from forensic.errors import InputError
from forensic.journal import read_entries
from forensic.keys import Signer
from forensic.videoio import FFV1Writer
from tests.conftest import NOW, PASSPHRASE

STILL_RECIPE = """
[recipe]
name = "lift"
[[steps]]
op = "levels"
gamma = 1.2
[[steps]]
op = "unsharp_mask"
"""
CLIP_RECIPE = """
[recipe]
name = "clip-sharpen"
[[steps]]
op = "levels"
gamma = 0.9
[[steps]]
op = "unsharp_mask"
"""
# A reduce step in the middle of the clip: parts are never cut inside its range.
CLIP_AVERAGE = """
[recipe]
name = "clip-average"
[[steps]]
op = "average_frames"
method = "mean"
frames = [5, 11]
[[steps]]
op = "unsharp_mask"
"""


def _still(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:48, 0:64]
    base = np.stack([x * 3, y * 4, (x + y) * 2], axis=-1).astype(np.float64)
    image = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _clip(path: Path, seed: int, frames: int = 20) -> None:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:32, 0:48]
    with FFV1Writer(path, rate=25) as writer:
        for t in range(frames):
            base = np.stack([x * 4 + t, y * 6, (x + y + t) * 2], axis=-1).astype(np.float64)
            writer.write(np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A local cluster of 2 worker processes, shared by this module's tests."""
    with connect(workers=2) as c:
        yield c


def _new_case(path: Path, signer: Signer) -> Case:
    return init_case(
        path, case_id=path.name, title="Batch", policy_path=None, signer=signer, now=NOW
    )


def _layout(root: Path, signer: Signer) -> Path:
    """Media, recipes, two cases and a manifest of 7 jobs (3 stills, 4 clip runs)."""
    media = root / "media"
    media.mkdir()
    for n in range(3):
        _still(media / f"still{n}.png", n)
    _clip(media / "cam1.mkv", 10)
    _clip(media / "cam2.mkv", 11)
    (root / "lift.toml").write_text(STILL_RECIPE)
    (root / "clip.toml").write_text(CLIP_RECIPE)
    (root / "average.toml").write_text(CLIP_AVERAGE)
    _new_case(root / "A", signer)
    _new_case(root / "B", signer)
    (root / "jobs.csv").write_text(
        "case,exhibit,recipe,frames,name\n"
        "A,media/still0.png,lift.toml,,\n"
        "A,media/cam1.mkv,clip.toml,all,\n"
        "B,media/still1.png,lift.toml,,\n"
        "A,media/still2.png,lift.toml,,first look\n"
        "B,media/cam2.mkv,average.toml,2:17,\n"
        "# a comment line, skipped\n"
        "B,media/cam2.mkv,clip.toml,0:15,\n"
        "A,E2,average.toml,all,\n"
    )
    return root / "jobs.csv"


def _clock() -> Any:
    return NOW


def _single_process(root: Path, ref: Path, signer: Signer) -> None:
    """The same jobs by one process, command by command: the exhibits of each case in manifest
    order, then the runs in manifest order (the order the batch documents)."""
    jobs = load_manifest(root / "jobs.csv")
    cases = {d: _new_case(ref / d.name, signer) for d in dict.fromkeys(j.case_dir for j in jobs)}
    refs = {}
    for job in jobs:
        if job.exhibit_file is not None:
            (done,) = api.ingest(cases[job.case_dir], [job.exhibit_file], signer=signer, now=NOW)
            refs[job.number] = done.exhibit
    for job in jobs:
        api.run_recipe(
            cases[job.case_dir],
            refs.get(job.number) or str(job.source_ref),
            job.recipe,
            signer=signer,
            now=NOW,
            name=job.name,
        )


#: Fields that hold measured durations: they differ between any two runs.
TIMINGS = {"duration_ms", "wall_time_ms"}


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _record(case_dir: Path) -> list[tuple[str, Any]]:
    """Every entry's kind and payload, durations aside; a run's ``steps`` (the hashes of its
    ``run.step`` entries, which hold durations) aside too: those entries are compared here."""
    out = []
    for e in read_entries(case_dir):
        payload = _without_timings(e.payload)
        if e.kind == "run":
            assert len(payload.pop("steps")) == len(e.payload["steps"])
        out.append((e.kind, payload))
    return out


def _derived(case_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((case_dir / "derived").iterdir())}


def test_a_batch_on_two_workers_records_what_one_process_records(
    tmp_path: Path, signer: Signer, client: Any
) -> None:
    manifest = _layout(tmp_path, signer)
    jobs = load_manifest(manifest)
    assert len(jobs) == 7
    result = run_batch(jobs, signer=signer, clock=_clock, client=client, part_frames=6)
    assert result.workers == 2
    assert [o.status for o in result.outcomes] == ["recorded"] * 7, result.as_dict()
    # The clips were spread over parts (never inside the average's range, 5..11).
    assert [o.parts for o in result.outcomes] == [1, 4, 1, 1, 2, 3, 3]
    assert [o.run for o in result.outcomes] == ["R1", "R2", "R1", "R3", "R2", "R3", "R4"]
    _single_process(tmp_path, tmp_path / "ref", signer)
    for name in ("A", "B"):
        batch, one = tmp_path / name, tmp_path / "ref" / name
        assert _record(batch) == _record(one)
        # Every stored file, byte for byte: outputs, FFV1 videos, per-frame records, maps.
        assert _derived(batch) == _derived(one)
        verdict = api.verify_case(batch, replay=True, pixels=True)
        assert verdict.ok, verdict.as_dict()


@pytest.mark.slow
def test_a_restarted_batch_records_nothing_twice(
    tmp_path: Path, signer: Signer, client: Any
) -> None:
    manifest = _layout(tmp_path, signer)
    jobs = load_manifest(manifest)

    def interrupt(progress: Any) -> None:
        if progress.outcome is not None and progress.outcome.job.number == 3:
            raise KeyboardInterrupt  # Ctrl+C once job 3 is recorded

    with pytest.raises(KeyboardInterrupt):
        run_batch(jobs, signer=signer, clock=_clock, client=client, progress=interrupt)
    for name in ("A", "B"):
        for folder in ("evidence", "derived"):
            left = [n for n in os.listdir(tmp_path / name / folder) if n.startswith(".")]
            assert left == [], f"{name}/{folder}: {left}"
    journal = (tmp_path / "A" / "journal.jsonl").read_bytes()
    again = run_batch(jobs, signer=signer, clock=_clock, client=client)
    statuses = [o.status for o in again.outcomes]
    assert statuses[:3] == ["skipped"] * 3
    assert statuses[3:] == ["recorded"] * 4
    assert again.outcomes[0].reason == "already recorded as R1"
    assert (tmp_path / "A" / "journal.jsonl").read_bytes().startswith(journal)
    third = run_batch(jobs, signer=signer, clock=_clock, client=client)
    assert [o.status for o in third.outcomes] == ["skipped"] * 7
    for name, runs, exhibits in (("A", 4, 3), ("B", 3, 2)):
        kinds = [e.kind for e in read_entries(tmp_path / name)]
        assert (kinds.count("run"), kinds.count("evidence.ingest")) == (runs, exhibits)


@pytest.mark.slow
def test_a_failing_job_records_nothing_and_the_rest_goes_on(
    tmp_path: Path, signer: Signer, client: Any
) -> None:
    manifest = _layout(tmp_path, signer)
    jobs = load_manifest(manifest)
    run_batch(jobs[:2], signer=signer, clock=_clock, client=client)
    # Alter the stored clip E2 of case A: job 7 runs on it, and must fail with the reason.
    stored = next((tmp_path / "A" / "evidence").glob("*.mkv"))
    os.chmod(stored, 0o644)
    stored.write_bytes(stored.read_bytes()[:-100] + bytes(100))
    before = sorted(os.listdir(tmp_path / "A" / "derived"))
    result = run_batch(jobs, signer=signer, clock=_clock, client=client, part_frames=4)
    outcome = result.outcomes[6]
    assert outcome.status == "failed"
    assert "no longer matches its recorded SHA-256" in str(outcome.reason)
    assert [o.status for o in result.outcomes[2:6]] == ["recorded"] * 4
    assert not result.ok
    after = os.listdir(tmp_path / "A" / "derived")
    assert not [n for n in after if n.startswith(".tmp-")]
    kinds = [e.kind for e in read_entries(tmp_path / "A")]
    assert kinds.count("run") == 3  # jobs 1, 2, 4; nothing of job 7
    assert set(before) <= set(after)


class _KillOnce:
    """A worker plugin: the first worker to start a video part kills its own process (the
    file ``claim`` is created by exactly one of them)."""

    def __init__(self, claim: str) -> None:
        self.claim = claim

    def setup(self, worker: Any) -> None:
        pass

    def teardown(self, worker: Any) -> None:
        pass

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing" or "forensic-part-2-1" not in str(key):
            return
        try:
            fd = os.open(self.claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_batch_has_its_part_rerun(
    tmp_path: Path, signer: Signer, client: Any
) -> None:
    from distributed.diagnostics.plugin import WorkerPlugin

    plugin = type("KillOnce", (_KillOnce, WorkerPlugin), {})(str(tmp_path / "killed"))
    manifest = _layout(tmp_path, signer)
    client.register_plugin(plugin, name="kill-once")
    try:
        result = run_batch(
            load_manifest(manifest), signer=signer, clock=_clock, client=client, part_frames=6
        )
    finally:
        client.unregister_worker_plugin("kill-once")
    assert (tmp_path / "killed").exists()  # a worker did die, during part 2 of job 2
    assert [o.status for o in result.outcomes] == ["recorded"] * 7, result.as_dict()
    for name, runs in (("A", 4), ("B", 3)):
        entries = read_entries(tmp_path / name)
        run_ids = [e.payload["run"] for e in entries if e.kind == "run"]
        assert run_ids == [f"R{n}" for n in range(1, runs + 1)]
    assert api.verify_case(tmp_path / "A", replay=True).ok


@pytest.mark.slow
def test_the_cli_runs_a_manifest_on_a_running_scheduler(
    tmp_path: Path,
    signer: Signer,
    client: Any,
    key_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from forensic import cli

    manifest = _layout(tmp_path, signer)
    monkeypatch.setenv("FORENSIC_PASSPHRASE", PASSPHRASE)
    address = client.scheduler.address
    args = ["batch", str(manifest), "--scheduler", address, "--key-dir", str(key_dir)]
    assert cli.main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"] == {"recorded": 7, "skipped": 0, "failed": 0}
    assert doc["jobs"][1]["exhibit"] == "E2"
    assert doc["jobs"][1]["ingested"] is True
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "0 recorded, 7 skipped, 0 failed" in text


TOML_JOB = "[[jobs]]\ncase = 'A'\nexhibit = 'E1'\nrecipe = 'lift.toml'\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("m.csv", "case,exhibit,recipe,colour\n", "m.csv line 1: unknown column 'colour'"),
        ("m.csv", "case,exhibit,recipe\nA,E1\n", "m.csv line 2: 2 values for 3 columns"),
        ("m.csv", "case,exhibit\nA,E1\n", "m.csv line 2: field 'recipe' is missing"),
        (
            "m.csv",
            "case,exhibit,recipe\nA,E1,lift.toml\nNOPE,E1,lift.toml\n",
            "m.csv line 3, field 'case'",
        ),
        ("m.csv", "case,exhibit,recipe\nA,nothing.png,lift.toml\n", "field 'exhibit': nothing.png"),
        (
            "m.csv",
            "case,exhibit,recipe\nA,E1,no-such\n",
            "line 2, field 'recipe': recipe not found",
        ),
        (
            "m.csv",
            "case,exhibit,recipe,frames\nA,E1,lift.toml,9:2\n",
            "field 'frames': --frames 9:2",
        ),
        (
            "m.toml",
            TOML_JOB + "frame = '1:2'\n",
            "m.toml job 1: unknown field 'frame'",
        ),
        (
            "m.toml",
            TOML_JOB.replace("'lift.toml'", "3"),
            "m.toml job 1, field 'recipe': must be a text",
        ),
        ("m.toml", "jobs = 3\n", "'jobs' must be an array of tables"),
        ("m.toml", "", "m.toml: no jobs"),
    ],
)
def test_a_bad_manifest_is_refused_naming_the_line_and_field(
    tmp_path: Path, signer: Signer, name: str, text: str, message: str
) -> None:
    _new_case(tmp_path / "A", signer)
    (tmp_path / "lift.toml").write_text(STILL_RECIPE)
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError) as caught:
        load_manifest(tmp_path / name)
    assert message in caught.value.message


def test_a_toml_manifest_gives_the_same_jobs_as_a_csv(tmp_path: Path, signer: Signer) -> None:
    _new_case(tmp_path / "A", signer)
    (tmp_path / "lift.toml").write_text(STILL_RECIPE)
    (tmp_path / "m.toml").write_text(
        "[[jobs]]\ncase = 'A'\nexhibit = 'e1'\nrecipe = 'lift.toml'\nname = 'x'\n"
        "[[jobs]]\ncase = 'A'\nexhibit = 'R2'\nrecipe = 'dark-noisy'\nframes = 'all'\n"
    )
    jobs = load_manifest(tmp_path / "m.toml")
    assert [(j.source_ref, j.exhibit_file, j.recipe.name, j.name) for j in jobs] == [
        ("E1", None, "lift", "x"),
        ("R2", None, "dark-noisy", None),
    ]
    assert jobs[1].recipe.run_all


def test_video_parts_are_cut_only_at_safe_points(tmp_path: Path, signer: Signer) -> None:
    """Per-frame steps split anywhere; never inside a temporal step's range; an unbounded
    temporal step keeps the run whole."""
    from forensic.recipe import parse_recipe

    case = _new_case(tmp_path / "A", signer)
    _clip(tmp_path / "c.mkv", 1, frames=20)
    api.ingest(case, [tmp_path / "c.mkv"], signer=signer, now=NOW)

    def parts(text: str, size: int, frames: str = "all") -> list[tuple[int, int]]:
        recipe = api.recipe_with_range(parse_recipe(text.encode(), where="r.toml"), frames=frames)
        plan = api.plan_run(case, "E1", recipe)
        plan.raise_first()
        return [(p[0], p[-1]) for p in api.split_run(plan, size)]

    assert parts(CLIP_RECIPE, 6) == [(0, 5), (6, 11), (12, 17), (18, 19)]
    assert parts(CLIP_RECIPE, 100) == [(0, 19)]
    assert parts(CLIP_RECIPE, 4, "3:10") == [(3, 6), (7, 10)]
    assert parts(CLIP_AVERAGE, 3) == [(0, 2), (3, 11), (12, 14), (15, 17), (18, 19)]
    whole = CLIP_AVERAGE.replace("frames = [5, 11]\n", "")
    assert parts(whole, 3) == [(0, 19)]


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    with pytest.raises(InputError) as caught, connect("tcp://127.0.0.1:9", timeout="1s"):
        pass
    assert "--scheduler tcp://127.0.0.1:9: cannot connect" in caught.value.message
    assert caught.value.hint is not None


def test_a_generative_video_run_is_not_recorded_from_parts(tmp_path: Path, signer: Signer) -> None:
    """Its flicker figure spans consecutive frames of the whole clip: parts cannot carry it."""
    from forensic.recipe import parse_recipe

    case = init_case(
        tmp_path / "L",
        case_id="L",
        title="Leads",
        policy_path=None,
        signer=signer,
        now=NOW,
        profile="investigative",
    )
    _clip(tmp_path / "c.mkv", 2, frames=6)
    api.ingest(case, [tmp_path / "c.mkv"], signer=signer, now=NOW)
    text = '[[steps]]\nop = "generative.inpaint_telea"\nx = 4\ny = 4\nwidth = 8\nheight = 8\n'
    recipe = api.recipe_with_range(parse_recipe(text.encode(), where="g.toml"), frames="all")
    plan = api.plan_run(case, "E1", recipe)
    plan.raise_first()
    with pytest.raises(InputError, match="generative per-frame step"):
        api.record_run(case, plan, [], signer=signer, now=NOW)
    assert [e.kind for e in read_entries(case.root)].count("run") == 0

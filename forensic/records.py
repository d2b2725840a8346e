"""What a case's journal records, as typed values: entry kinds, exhibits, runs, steps, reports.

The journal (`forensic.journal`) stores signed, canonical JSON payloads; this module is the one
place that knows their shapes. Readers (`verify`, `report`, `export`, `case show`, the
workbench, the batch runner) take these records instead of indexing dictionaries, and need
nothing from the code that wrote them.

* `KINDS` declares every journal entry kind once: its name, what its payload is, who may sign
  it and which case files it references. `verify`, the report, `case show` and the spec's kind
  table (``python -m forensic.records``) all come from this list.
* `ExhibitRecord`, `RunRecord` (still and video alike), `StepRecord` and `ReportRecord` wrap a
  payload (``.payload`` is the signed dictionary itself, never a copy that could drift) with
  typed accessors, and know which stored files they reference (`RunRecord.files`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forensic.errors import CaseError, InputError
from forensic.journal import RECOVER_KIND, Entry, canonical
from forensic.store import CaseStore

#: A still-image run: one ``run.step`` entry per step with the image records inline.
RUN_FORMAT_STILL = "forensic-run/1"
#: A streamed video run: per-frame records in hashed artifacts (docs/spec.md §3.2).
RUN_FORMAT_VIDEO = "forensic-run/2"


# -- entry kinds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryKind:
    """One kind of journal entry (docs/spec.md §3)."""

    name: str
    #: What the payload is, in a phrase (the spec's table).
    payload: str
    #: Who may sign it.
    signer: str
    #: The case files its payload references (checked by ``verify``), in words.
    files: str


CASE_OPEN = EntryKind(
    "case.open",
    "the case's identity, policy (file, SHA-256, profile), extra fields, first examiner",
    "the opening examiner (always and only seq 0)",
    "case.json, policy.toml",
)
EXAMINER_ADD = EntryKind(
    "case.examiner.add",
    "another examiner's name, fingerprint and public key",
    "an enrolled examiner",
    "none (keys/<fingerprint>.pem is a convenience copy)",
)
EVIDENCE_INGEST = EntryKind(
    "evidence.ingest",
    "one exhibit: original name, file SHA-256, stored path, pixel or frame hashes, facts",
    "an enrolled examiner",
    "evidence/<sha256><ext>",
)
RUN_STEP = EntryKind(
    "run.step",
    "one step of a run: operation, version, resolved parameters, hashes, environment",
    "an enrolled examiner",
    "kept intermediates, generative maps and weights, per-frame artifacts (video)",
)
RUN = EntryKind(
    "run",
    "a run: recipe, exhibit, policy profile, its run.step entries, output, provenance",
    "an enrolled examiner",
    "output, provenance map, presentation copy (derived/)",
)
EXPORT = EntryKind(
    "export",
    "a run's output written outside the case: format, lossless or not, hashes",
    "an enrolled examiner",
    "none (the export is outside the case)",
)
COSIGN = EntryKind(
    "cosign",
    "a second examiner's statement on a generative run.step",
    "an enrolled examiner other than the step's",
    "none",
)
PKI_BIND = EntryKind(
    "pki.bind",
    "the report-signing certificate bound to the examiner's journal key",
    "the examiner whose key is bound (and the certificate's key)",
    "none",
)
REPORT_GENERATED = EntryKind(
    "report.generated",
    "a signed PDF report: number, SHA-256, what it covers",
    "an enrolled examiner with a bound certificate",
    "reports/<sha256>.pdf",
)
REPORT_APPROVED = EntryKind(
    "report.approved",
    "a second examiner's approval signature added to a report",
    "an enrolled examiner other than the report's, with a bound certificate",
    "reports/<sha256>.pdf",
)
CASE_RECOVER = EntryKind(
    RECOVER_KIND,
    "how an append interrupted by a crash was finished: completed, rolled back or cleaned; "
    "the intent's SHA-256, entry span and signed checkpoint",
    "the next enrolled examiner to write (or `forensic case recover`)",
    "none (files named only by a rolled-back append are removed)",
)

RUN_SUPERSEDE = EntryKind(
    "run.supersede",
    "an earlier run marked superseded: the run, the reason, optionally the run replacing it",
    "an enrolled examiner",
    "none (the superseded run and its files stay in the case)",
)
KEY_ROTATE = EntryKind(
    "key.rotate",
    "an examiner's new key replacing their current one: the old fingerprint, the new key "
    "(name, fingerprint, public key) and the new key's signature over the entry's content",
    "the key it replaces, which signs nothing after it (and the new key)",
    "none (keys/<fingerprint>.pem is a convenience copy)",
)
KEY_REVOKE = EntryKind(
    "key.revoke",
    "a key revoked from an effective time (which may precede the entry) and the reason",
    "an enrolled key valid at the time, or the revoked key itself",
    "none",
)

KINDS: tuple[EntryKind, ...] = (
    CASE_OPEN,
    EXAMINER_ADD,
    EVIDENCE_INGEST,
    RUN_STEP,
    RUN,
    EXPORT,
    COSIGN,
    PKI_BIND,
    REPORT_GENERATED,
    REPORT_APPROVED,
    RUN_SUPERSEDE,
    CASE_RECOVER,
    KEY_ROTATE,
    KEY_REVOKE,
)
KIND_BY_NAME: dict[str, EntryKind] = {k.name: k for k in KINDS}
#: Entries that enrol a key for later entries (their payload, or its ``examiner`` object,
#: holds ``name``, ``fingerprint`` and ``public_key``).
ENROLMENT_KINDS = frozenset({CASE_OPEN.name, EXAMINER_ADD.name, KEY_ROTATE.name})
#: Entries that record a report kept in the case.
REPORT_KINDS = frozenset({REPORT_GENERATED.name, REPORT_APPROVED.name})


def kind_table() -> str:
    """The spec's table of entry kinds (docs/spec.md §3), generated from `KINDS`."""
    rows = ["| kind | payload | signed by | case files |", "|---|---|---|---|"]
    rows += [f"| `{k.name}` | {k.payload} | {k.signer} | {k.files} |" for k in KINDS]
    return "\n".join(rows) + "\n"


# -- exhibits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExhibitRecord:
    """An ingested exhibit (``evidence.ingest``), or a still run's output used as a run's
    input (``source_run`` set; see `RunRecord.as_source`)."""

    payload: Mapping[str, Any]

    @property
    def exhibit_id(self) -> str:
        return str(self.payload["exhibit"])

    @property
    def media(self) -> str:
        return str(self.payload.get("media") or "image")

    @property
    def is_video(self) -> bool:
        return self.media == "video"

    @property
    def stored(self) -> str:
        return str(self.payload["stored"])

    @property
    def sha256(self) -> str:
        return str(self.payload["sha256"])

    @property
    def name(self) -> str:
        return str(self.payload["original"]["name"])

    @property
    def label(self) -> str:
        """How messages name it: ``exhibit E1 (still.png)``."""
        return f"exhibit {self.exhibit_id} ({self.name})"

    @property
    def facts(self) -> Mapping[str, Any]:
        return self.payload.get("facts") or {}

    @property
    def frames(self) -> Sequence[Mapping[str, Any]]:
        """Per-frame records of a video exhibit (index, pts, type, sha256), else empty."""
        return self.payload.get("frames") or []

    @property
    def pixel_sha256(self) -> str:
        return str(self.payload["pixel_hash"]["sha256"])

    @property
    def source_run(self) -> str | None:
        value = self.payload.get("source_run")
        return None if value is None else str(value)

    @property
    def tainted(self) -> bool:
        return bool(self.payload.get("tainted"))

    @property
    def file(self) -> dict[str, Any]:
        """The stored file as a record ``{file, sha256}`` for checked reads."""
        return {"file": self.stored, "sha256": self.sha256}

    def __getitem__(self, key: str) -> Any:
        return self.payload[key]

    def __contains__(self, key: object) -> bool:
        return key in self.payload

    def get(self, key: str, default: Any = None) -> Any:
        return self.payload.get(key, default)


def exhibits(entries: Sequence[Entry]) -> list[ExhibitRecord]:
    """Every exhibit, in ingest order."""
    return [ExhibitRecord(e.payload) for e in entries if e.kind == EVIDENCE_INGEST.name]


def find_exhibit(entries: Sequence[Entry], exhibit_id: str, *, case_id: str) -> ExhibitRecord:
    items = exhibits(entries)
    for item in items:
        if item.exhibit_id == exhibit_id.upper():
            return item
    known = ", ".join(i.exhibit_id for i in items) or "none yet"
    raise InputError(
        f"case {case_id} has no exhibit {exhibit_id!r} (exhibits: {known})",
        hint="`forensic case show CASE` lists them",
    )


# -- runs and steps ------------------------------------------------------------------------------


def load_artifact(
    store: CaseStore, record: Mapping[str, Any], *, what: str
) -> list[dict[str, Any]]:
    """A per-frame JSON artifact (docs/spec.md §3.2), checked against its recorded SHA-256 and
    canonical form."""
    rel = str(record["file"])
    try:
        data = store.read_bytes(rel)
    except OSError:
        raise CaseError(f"the {what} list {rel} is missing") from None
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise CaseError(f"the {what} list {rel} no longer matches its recorded SHA-256")
    try:
        items = json.loads(data)
    except ValueError:
        raise CaseError(f"the {what} list {rel} is not JSON") from None
    if not isinstance(items, list) or canonical(items) != data:
        raise CaseError(f"the {what} list {rel} is not a canonical JSON array")
    return items


@dataclass(frozen=True)
class StepRecord:
    """One ``run.step`` entry."""

    entry_hash: str
    actor: str
    payload: Mapping[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.payload["run"])

    @property
    def number(self) -> int:
        return int(self.payload["step"])

    @property
    def op(self) -> str:
        return str(self.payload["op"])

    @property
    def op_version(self) -> str:
        return str(self.payload["op_version"])

    @property
    def lane(self) -> str:
        return str(self.payload["lane"])

    @property
    def roi(self) -> tuple[int, int, int, int] | None:
        roi = self.payload.get("roi")
        return None if roi is None else (int(roi[0]), int(roi[1]), int(roi[2]), int(roi[3]))

    @property
    def frame_range(self) -> tuple[int, int] | None:
        frames = self.payload.get("frames")
        return None if frames is None else (int(frames[0]), int(frames[1]))

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.payload.get("params") or {})

    @property
    def model(self) -> Mapping[str, Any]:
        """A generative step's model facts (empty for a classical step)."""
        return self.payload.get("model") or {}

    @property
    def environment(self) -> Mapping[str, Any]:
        return self.payload.get("environment") or {}

    @property
    def warnings(self) -> list[str]:
        return list(self.payload.get("warnings") or [])

    @property
    def label(self) -> str:
        return f"run {self.run_id} step {self.number} ({self.op})"

    def applied(self, store: CaseStore | None = None) -> list[dict[str, Any]]:
        """The step's per-frame records: one (frame None) for a still image; for a video run
        they are in a hashed artifact read (checked) from ``store``, and without a store the
        list is empty."""
        applied = self.payload.get("applied")
        if isinstance(applied, Mapping):
            if store is None:
                return []
            return load_artifact(store, applied, what=f"step {self.number} frame")
        return [
            {
                "frame": None,
                **{
                    k: self.payload[k]
                    for k in ("params", "effect", "details", "input", "output", "maps")
                    if k in self.payload
                },
            }
        ]

    def __getitem__(self, key: str) -> Any:
        return self.payload[key]

    def __contains__(self, key: object) -> bool:
        return key in self.payload

    def get(self, key: str, default: Any = None) -> Any:
        return self.payload.get(key, default)


#: (what the file is, its record {file, sha256, ...}) for every stored file a run references.
FileRef = tuple[str, Mapping[str, Any]]


@dataclass(frozen=True)
class RunRecord:
    """A recorded run (a ``run`` entry with its ``run.step`` entries), still or video."""

    entry_hash: str
    actor: str
    time: str
    payload: Mapping[str, Any]
    steps: tuple[StepRecord, ...]
    #: The ``run.supersede`` entry that marked this run superseded (its payload with the
    #: entry's ``time`` and ``actor``), or None: the run stands.
    superseded: Mapping[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return str(self.payload["run"])

    @property
    def is_superseded(self) -> bool:
        return self.superseded is not None

    @property
    def recipe_sha256(self) -> str:
        return str((self.payload.get("recipe") or {}).get("sha256", ""))

    @property
    def frame_range(self) -> list[int] | None:
        """The frame range the run was asked to read (``--frames``/``--seconds``), or None."""
        value = (self.payload.get("range") or {}).get("frames")
        return None if value is None else [int(v) for v in value]

    @property
    def format(self) -> str:
        return str(self.payload.get("format"))

    @property
    def is_video(self) -> bool:
        """A streamed video run (`RUN_FORMAT_VIDEO`)."""
        return self.format == RUN_FORMAT_VIDEO

    @property
    def media(self) -> str:
        return "video" if self.is_video else "image"

    @property
    def name(self) -> str:
        return str(self.payload.get("name") or "")

    @property
    def exhibit_id(self) -> str:
        return str(self.payload["exhibit"])

    @property
    def source_run(self) -> str | None:
        """The run whose output this run started from, or None (it started from evidence)."""
        source = self.payload.get("source") or {}
        value = source.get("run")
        return None if value is None else str(value)

    @property
    def lanes(self) -> list[str]:
        return list(self.payload.get("lanes") or [])

    @property
    def tainted(self) -> bool:
        """Made with generative steps, or from a tainted run (a property of the run)."""
        return (
            bool(self.payload.get("tainted"))
            or "generative" in self.lanes
            or int(self.provenance.get("counts", {}).get("inferred", 0)) > 0
        )

    @property
    def output(self) -> Mapping[str, Any]:
        output: Mapping[str, Any] = self.payload["output"]
        return output

    @property
    def provenance(self) -> Mapping[str, Any]:
        return self.payload.get("provenance") or {}

    @property
    def warnings(self) -> list[str]:
        return list(self.payload.get("warnings") or [])

    @property
    def step_hashes(self) -> list[str]:
        return list(self.payload.get("steps") or [])

    @property
    def frame_count(self) -> int:
        """Output frames (1 for a still image)."""
        return int(self.output.get("frames", 1)) if self.is_video else 1

    def __getitem__(self, key: str) -> Any:
        return self.payload[key]

    def __contains__(self, key: object) -> bool:
        return key in self.payload

    def get(self, key: str, default: Any = None) -> Any:
        return self.payload.get(key, default)

    def files(self) -> list[FileRef]:
        """Every stored file the run references, with what it is (still and video alike)."""
        if self.is_video:
            return self._video_files()
        out: list[FileRef] = [
            ("output", self.output),
            ("provenance map", self.provenance),
        ]
        if "presentation" in self.output:
            out.append(("labelled presentation copy", self.output["presentation"]))
        out += [
            (f"step {step.number} output", rec["output"])
            for step in self.steps
            for rec in step.applied()
            if "file" in rec["output"]
        ]
        out += [
            (f"step {step.number} model weights", step.model["weights_copy"])
            for step in self.steps
            if "weights_copy" in step.model
        ]
        out += [
            (f"step {step.number} {name} map", record)
            for step in self.steps
            for rec in step.applied()
            for name, record in rec.get("maps", {}).get("files", {}).items()
        ]
        out += [
            (f"step {step.number} {name} mask", mask["png"])
            for step in self.steps
            for rec in step.applied()
            for name, mask in _stored_masks(rec.get("details"))
        ]
        return out

    def _video_files(self) -> list[FileRef]:
        p = self.payload
        out: list[FileRef] = [
            ("input frame list", p["inputs"]),
            ("output frame list", p["frames"]),
            ("output video", p["output"]["video"]),
            ("provenance map video", p["provenance"]["video"]),
        ]
        if "presentation" in p:
            out.append(("labelled presentation video", p["presentation"]))
        for step in self.steps:
            where = f"step {step.number}"
            out.append((f"{where} frame list", step["applied"]))
            if "kept" in step.payload:
                out.append((f"{where} kept output video", step["kept"]))
            for name, rec in (step.get("maps") or {}).items():
                out.append((f"{where} {name} map video", rec))
            for name, rec in (step.get("masks") or {}).items():
                out.append((f"{where} {name} mask video", rec))
            if "weights_copy" in step.model:
                out.append((f"{where} model weights", step.model["weights_copy"]))
        return out

    def still_chain(
        self,
    ) -> tuple[Mapping[str, Any], list[tuple[StepRecord, dict[str, Any]]], Mapping[str, Any]]:
        """A still run's chain: (its starting image description, [(step, image record)...],
        its output). Video runs are checked frame by frame from their artifacts
        (`forensic.verify`)."""
        chain = [(step, rec) for step in self.steps for rec in step.applied()]
        return self.payload["input"], chain, self.payload["output"]

    def provenance_records(self) -> list[Mapping[str, Any]]:
        """The stored provenance map(s): one still image, or the video of maps."""
        if self.is_video:
            return [self.provenance["video"]]
        return [self.provenance]

    def as_source(self, exhibit: ExhibitRecord) -> ExhibitRecord:
        """This still run's output described as an exhibit, to be another run's input (a
        *tainted* source, which only a profile that allows the generative lane may use)."""
        if self.is_video:
            raise InputError(
                f"run {self.run_id} is a video run; only a still image's run output can be the "
                "input of another run in this version"
            )
        output, counts = self.output, self.provenance.get("counts", {})
        return ExhibitRecord(
            {
                "exhibit": exhibit.exhibit_id,
                "source_run": self.run_id,
                "media": "image",
                "original": {"name": f"output of run {self.run_id}"},
                "stored": output["file"],
                "sha256": output["sha256"],
                "pixel_hash": {"sha256": output["pixel_sha256"]},
                "provenance": self.provenance,
                "inferred": int(counts.get("inferred", 0)),
                # Taint is a property of the run, not of surviving pixel counts: a shrink or a
                # redaction over inferred pixels must not launder it.
                "tainted": self.tainted,
                "facts": {
                    # An orientation already applied by an orient step is not applied again.
                    **{
                        k: v
                        for k, v in exhibit.facts.items()
                        if k != "orientation" or not any(s.op == "orient" for s in self.steps)
                    },
                    **{"width": output["width"], "height": output["height"]},
                },
            }
        )


def _stored_masks(details: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, mask record) of a still step's defect masks stored as PNG files (``details``
    ``masks`` per kind and ``mask`` combined; docs/spec.md section 10). Legacy records with the
    mask inline (``encoded``) reference no file."""
    if not isinstance(details, Mapping):
        return []
    found = [
        (str(k), v)
        for k, v in (details.get("masks") or {}).items()
        if isinstance(v, Mapping) and "png" in v
    ]
    combined = details.get("mask")
    if isinstance(combined, Mapping) and "png" in combined:
        found.append(("mask", combined))
    return found


def read_runs(entries: Sequence[Entry]) -> list[RunRecord]:
    """Every run, in journal order, with its step entries (those the journal still has)."""
    by_hash = {e.hash: e for e in entries}
    superseded = {
        str(e.payload.get("run")): {**e.payload, "time": e.time, "actor": e.actor}
        for e in entries
        if e.kind == RUN_SUPERSEDE.name
    }
    out = []
    for e in entries:
        if e.kind != RUN.name:
            continue
        steps = tuple(
            StepRecord(h, by_hash[h].actor, by_hash[h].payload)
            for h in e.payload.get("steps", [])
            if h in by_hash
        )
        run_id = str(e.payload.get("run"))
        out.append(RunRecord(e.hash, e.actor, e.time, e.payload, steps, superseded.get(run_id)))
    return out


def find_run(entries: Sequence[Entry], ref: str, *, case_id: str) -> RunRecord:
    """The run ``R<n>`` (any case)."""
    recorded = read_runs(entries)
    for run in recorded:
        if run.run_id == ref.upper():
            return run
    known = ", ".join(r.run_id for r in recorded) or "none yet"
    raise InputError(
        f"case {case_id} has no run {ref!r} (runs: {known})",
        hint="`forensic case show CASE` lists them",
    )


def next_run_id(entries: Sequence[Entry]) -> str:
    """One more than the highest run number in the journal (run or run.step entries)."""
    numbers = [0]
    for e in entries:
        if e.kind in (RUN.name, RUN_STEP.name):
            run = str(e.payload.get("run", ""))
            if run[1:].isdigit():
                numbers.append(int(run[1:]))
    return f"R{max(numbers) + 1}"


def step_entries(entries: Sequence[Entry]) -> Iterator[Entry]:
    return (e for e in entries if e.kind == RUN_STEP.name)


# -- reports -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRecord:
    """A report kept in the case (``report.generated`` or ``report.approved``)."""

    entry_hash: str
    kind: str
    actor: str
    time: str
    payload: Mapping[str, Any]

    @property
    def number(self) -> int:
        return int(self.payload.get("number", 0))

    @property
    def approval(self) -> bool:
        return self.kind == REPORT_APPROVED.name

    @property
    def stored(self) -> str:
        return str(self.payload.get("stored", ""))

    @property
    def sha256(self) -> str:
        return str(self.payload.get("sha256", ""))

    @property
    def file(self) -> dict[str, Any]:
        return {"file": self.stored, "sha256": self.sha256}

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "number": self.number,
            "entry": self.entry_hash,
            "time": self.time,
            "actor": self.actor,
            "file": self.payload.get("file"),
            "stored": self.stored,
            "sha256": self.sha256,
            "pages": self.payload.get("pages"),
        }


def reports(entries: Sequence[Entry]) -> list[ReportRecord]:
    """Every report issued or approved in the case, in journal order."""
    return [
        ReportRecord(e.hash, e.kind, e.actor, e.time, e.payload)
        for e in entries
        if e.kind in REPORT_KINDS
    ]


if __name__ == "__main__":  # pragma: no cover - prints the spec's table
    print(kind_table(), end="")

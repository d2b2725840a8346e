"""Policies: what a case may run. Parsed strictly and enforced, failing closed.

A policy file (see the commented `policy.toml` at the repository root) has fixed tables and
named profiles. Validation refuses unknown tables and keys, wrong types, unknown lanes,
operation names that do not exist and malformed model hashes; enforcement refuses every
operation that its profile does not allow, naming the rule. Small composable checks
(`Profile.check_operation`) deny by default, in the spirit of sigstore-python's policies.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509

from forensic.errors import PolicyError
from forensic.fsutil import parse_toml, read_regular
from forensic.hashing import sha256_hex
from forensic.lanes import GENERATIVE_PREFIX
from forensic.media import CEILING_MAX_FRAMES, CEILING_MAX_PIXELS, MediaLimits
from forensic.ops.models import Manifest, parse_manifest

POLICY_SCHEMA = 2
LANES = ("classical", "generative")
#: The algorithms this version of the tool writes; a policy may not name others.
HASH_ALGORITHMS = ("sha256",)
SIGNATURE_ALGORITHMS = ("ed25519",)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PROFILE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: The shipped policy is about 4 kB; the limit keeps a wrong file from being read whole.
MAX_POLICY_BYTES = 1 << 20
#: The profile for court work; `load_policy` refuses one that lets the generative lane in.
EVIDENCE_PROFILE = "evidence"

Shape = dict[str, type | tuple[type, ...]]
_TOP: dict[str, Shape] = {
    "policy": {"schema": int, "name": str, "description": str, "default_profile": str},
    "case": {"required_fields": list},
    "crypto": {"hash_algorithms": list, "signature_algorithms": list},
    "replay": {"max_abs_difference": int, "min_psnr_db": (int, float)},
}
_REQUIRED_TOP = {
    "policy": {"schema", "name", "default_profile"},
    "case": {"required_fields"},
    "crypto": {"hash_algorithms", "signature_algorithms"},
    "replay": {"max_abs_difference", "min_psnr_db"},
}
_PROFILE: Shape = {
    "description": str,
    "lanes": list,
    "allow_operations": list,
    "deny_operations": list,
    "generative": dict,
}
#: The optional [limits] table (defaults: `forensic.media.MediaLimits`).
_LIMITS: Shape = {"max_pixels": int, "max_frames": int}
#: The optional [timestamps] table: an RFC 3161 time-stamping authority (spec §4.1).
_TIMESTAMPS: Shape = {"url": str, "trust_root": str, "required": bool}
#: The optional [bundle] table: what `forensic bundle` puts in an evidence bundle (spec §12).
_BUNDLE: Shape = {"originals": str}
BUNDLE_ORIGINALS = ("include", "hashes")
_OPTIONAL_TABLES = ("limits", "timestamps", "bundle")
_GENERATIVE: Shape = {
    "approved_models": list,
    "require_cosign": bool,
    "visible_label": bool,
    "label": str,
    "max_flicker": (int, float),
    "flicker_action": str,
    "models": list,
    "devices": list,
}
#: Optional keys of [profiles.P.generative] (absent: no flicker bound; no declared manifests;
#: the CPU only).
_GENERATIVE_OPTIONAL = {"max_flicker", "flicker_action", "models", "devices"}
#: What a flicker factor above ``max_flicker`` does (`forensic.pipeline.flicker`).
FLICKER_ACTIONS = ("warn", "refuse")
#: Keys of one ``[[profiles.NAME.generative.models]]`` entry: a model file approved with
#: its declared manifest (`forensic.ops.models`).
_MODEL_ENTRY: Shape = {"sha256": str, "manifest": dict}
#: Devices generative steps may run on (``devices``, optional). Absent: the CPU only, so a
#: GPU runs only where the lab's policy names it.
DEVICE_KINDS = ("cpu", "cuda")
DEFAULT_DEVICES = ("cpu",)


@dataclass(frozen=True)
class GenerativeRules:
    approved_models: tuple[str, ...]
    require_cosign: bool
    visible_label: bool
    label: str
    devices: tuple[str, ...] = DEFAULT_DEVICES
    #: Bound on a generative video step's flicker factor; None: unbounded.
    max_flicker: float | None = None
    flicker_action: str = "refuse"
    #: Manifests of the approved model files that declare one, by SHA-256 (each hash is also
    #: in `approved_models`).
    manifests: dict[str, Manifest] = field(default_factory=dict)

    def manifest(self, sha256: str) -> Manifest | None:
        return self.manifests.get(sha256)


@dataclass(frozen=True)
class TimestampSettings:
    """The policy's ``[timestamps]`` table: where to ask for RFC 3161 tokens, the TSA root
    certificates their signers must chain to, and whether work stops when none is had."""

    url: str
    trust_roots: tuple[x509.Certificate, ...]
    required: bool


@dataclass(frozen=True)
class Profile:
    """One named profile of a policy: which operations a case may run."""

    policy_name: str
    name: str
    description: str
    lanes: tuple[str, ...]
    allow_operations: tuple[str, ...]
    deny_operations: tuple[str, ...]
    generative: GenerativeRules

    def check_operation(self, op_name: str, lane: str, *, where: str) -> None:
        """Raise `PolicyError` naming the rule unless this profile allows the operation."""
        rule = f"policy {self.policy_name!r}, profile {self.name!r}"
        if op_name in self.deny_operations:
            raise PolicyError(
                f"{where}: {op_name} is refused by {rule}: it is in "
                f"profiles.{self.name}.deny_operations"
            )
        if lane in self.lanes or op_name in self.allow_operations:
            return
        raise PolicyError(
            f"{where}: {op_name} ({lane} lane) is refused by {rule}: lane {lane!r} is not in "
            f"profiles.{self.name}.lanes and the operation is not in "
            f"profiles.{self.name}.allow_operations",
            hint="run it in a case opened with a profile that allows it, if the lab's policy "
            "has one; the policy of an existing case cannot be changed",
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "lanes": list(self.lanes),
            "allow_operations": list(self.allow_operations),
            "deny_operations": list(self.deny_operations),
            "generative": {
                "approved_models": list(self.generative.approved_models),
                "require_cosign": self.generative.require_cosign,
                "visible_label": self.generative.visible_label,
                "label": self.generative.label,
                **(
                    {
                        "max_flicker": self.generative.max_flicker,
                        "flicker_action": self.generative.flicker_action,
                    }
                    if self.generative.max_flicker is not None
                    else {}
                ),
                "models": [
                    {"sha256": digest, "manifest": manifest.as_dict()}
                    for digest, manifest in self.generative.manifests.items()
                ],
                "devices": list(self.generative.devices),
            },
        }


@dataclass(frozen=True)
class Policy:
    name: str
    data: dict[str, Any]
    raw: bytes
    profiles: dict[str, Profile]

    @property
    def sha256(self) -> str:
        return sha256_hex(self.raw)

    @property
    def default_profile(self) -> str:
        return str(self.data["policy"]["default_profile"])

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(self.data["case"]["required_fields"])

    @property
    def max_abs_difference(self) -> int:
        return int(self.data["replay"]["max_abs_difference"])

    @property
    def min_psnr_db(self) -> float:
        return float(self.data["replay"]["min_psnr_db"])

    @property
    def limits(self) -> MediaLimits:
        """Pixel and frame limits for ingest (the optional ``[limits]`` table, else the
        defaults of `MediaLimits`)."""
        table = self.data.get("limits", {})
        default = MediaLimits()
        return MediaLimits(
            max_pixels=int(table.get("max_pixels", default.max_pixels)),
            max_frames=int(table.get("max_frames", default.max_frames)),
        )

    @property
    def timestamps(self) -> TimestampSettings | None:
        """The ``[timestamps]`` table (validated by `parse_policy`), or None without one."""
        table = self.data.get("timestamps")
        if table is None:
            return None
        return TimestampSettings(
            url=str(table["url"]),
            trust_roots=tuple(x509.load_pem_x509_certificates(table["trust_root"].encode())),
            required=bool(table.get("required", False)),
        )

    @property
    def bundle_originals(self) -> str:
        """``bundle.originals``: ``include`` (default) copies the evidence into a bundle,
        ``hashes`` leaves it in the evidence store and lists only its hashes."""
        return str(self.data.get("bundle", {}).get("originals", "include"))

    @property
    def hash_algorithms(self) -> tuple[str, ...]:
        return tuple(self.data["crypto"]["hash_algorithms"])

    @property
    def signature_algorithms(self) -> tuple[str, ...]:
        return tuple(self.data["crypto"]["signature_algorithms"])

    def profile(self, name: str | None) -> Profile:
        chosen = self.default_profile if name is None else name
        try:
            return self.profiles[chosen]
        except KeyError:
            raise PolicyError(
                f"policy {self.name!r} has no profile {chosen!r}",
                hint=f"its profiles: {', '.join(sorted(self.profiles))}",
            ) from None


def default_policy_path() -> Path:
    """The policy shipped with the package (installed wheel) or the repository's policy.toml."""
    packaged = resources.files("forensic") / "_data" / "policy.toml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "policy.toml"


def _check_table(where: str, path: str, table: Any, shape: Shape, required: set[str]) -> None:
    if not isinstance(table, dict):
        raise PolicyError(f"{where}: [{path}] must be a table")
    for key, value in table.items():
        expected = shape.get(key)
        if expected is None:
            raise PolicyError(
                f"{where}: unknown key {path}.{key}",
                hint=f"allowed keys in [{path}]: {', '.join(shape)}",
            )
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            name = expected.__name__ if isinstance(expected, type) else "number"
            if expected is dict:
                name = "table"
            elif expected is list:
                name = "list"
            raise PolicyError(f"{where}: {path}.{key} must be a {name}")
    missing = sorted(required - set(table))
    if missing:
        raise PolicyError(f"{where}: missing {', '.join(f'{path}.{k}' for k in missing)}")


def _strings(where: str, path: str, items: list[Any]) -> tuple[str, ...]:
    if not all(isinstance(i, str) for i in items):
        raise PolicyError(f"{where}: every entry of {path} must be a text")
    return tuple(items)


def _operation_names(where: str, path: str, items: list[Any]) -> tuple[str, ...]:
    from forensic.classical import registry

    names = _strings(where, path, items)
    known = registry(include_temporal=True)
    generative: list[str] | None = None
    for name in names:
        if name.startswith(GENERATIVE_PREFIX):
            if generative is None:
                from forensic.lanes import generative_names

                generative = generative_names()
            if name not in generative:
                raise PolicyError(
                    f"{where}: {path} names {name!r}, which is not a generative operation",
                    hint=f"generative operations: {', '.join(generative)}",
                )
            continue
        if name not in known:
            raise PolicyError(
                f"{where}: {path} names {name!r}, which is not an operation",
                hint="`forensic ops list` prints the classical operations; generative ones "
                f"start with {GENERATIVE_PREFIX!r}",
            )
    return names


def _profile(where: str, policy_name: str, name: str, table: Any) -> Profile:
    path = f"profiles.{name}"
    if not _PROFILE_NAME.match(name):
        raise PolicyError(
            f"{where}: profile name {name!r} must be lowercase letters, digits, - or _"
        )
    _check_table(
        where, path, table, _PROFILE, {"description", "lanes", "allow_operations", "generative"}
    )
    lanes = _strings(where, f"{path}.lanes", table["lanes"])
    for lane in lanes:
        if lane not in LANES:
            raise PolicyError(f"{where}: {path}.lanes names {lane!r}; lanes are {', '.join(LANES)}")
    gen = table["generative"]
    _check_table(
        where, f"{path}.generative", gen, _GENERATIVE, set(_GENERATIVE) - _GENERATIVE_OPTIONAL
    )
    max_flicker, flicker_action = _flicker_bound(where, f"{path}.generative", gen)
    devices = _strings(
        where, f"{path}.generative.devices", gen.get("devices", list(DEFAULT_DEVICES))
    )
    for device in devices:
        if device not in DEVICE_KINDS:
            raise PolicyError(
                f"{where}: {path}.generative.devices names {device!r}; devices are "
                f"{', '.join(DEVICE_KINDS)}"
            )
    models = _strings(where, f"{path}.generative.approved_models", gen["approved_models"])
    for model in models:
        if not _SHA256.match(model):
            raise PolicyError(
                f"{where}: {path}.generative.approved_models entries must be lowercase SHA-256 "
                f"hex digests, not {model!r}"
            )
    manifests = _model_entries(where, f"{path}.generative.models", gen.get("models", []))
    models = (*models, *(m for m in manifests if m not in models))
    if gen["visible_label"] and not gen["label"].strip():
        raise PolicyError(f"{where}: {path}.generative.label is empty but visible_label is true")
    return Profile(
        policy_name=policy_name,
        name=name,
        description=table["description"],
        lanes=lanes,
        allow_operations=_operation_names(
            where, f"{path}.allow_operations", table["allow_operations"]
        ),
        deny_operations=_operation_names(
            where, f"{path}.deny_operations", table.get("deny_operations", [])
        ),
        generative=GenerativeRules(
            approved_models=models,
            require_cosign=gen["require_cosign"],
            visible_label=gen["visible_label"],
            label=gen["label"],
            max_flicker=max_flicker,
            flicker_action=flicker_action,
            manifests=manifests,
            devices=devices,
        ),
    )


def _flicker_bound(where: str, path: str, gen: dict[str, Any]) -> tuple[float | None, str]:
    """``max_flicker`` (a finite number >= 1: a factor below 1 would refuse a step that is
    steadier than its input) and ``flicker_action`` (warn or refuse, default refuse)."""
    action = gen.get("flicker_action", "refuse")
    if action not in FLICKER_ACTIONS:
        raise PolicyError(
            f"{where}: {path}.flicker_action is {action!r}; it must be one of "
            f"{', '.join(FLICKER_ACTIONS)}"
        )
    if "max_flicker" not in gen:
        if "flicker_action" in gen:
            raise PolicyError(
                f"{where}: {path}.flicker_action is set but {path}.max_flicker is not",
                hint="add max_flicker (e.g. 2.0) or remove flicker_action",
            )
        return None, action
    bound = float(gen["max_flicker"])
    if not math.isfinite(bound) or bound < 1.0:
        raise PolicyError(
            f"{where}: {path}.max_flicker is {gen['max_flicker']!r}; it must be a finite "
            "number of at least 1",
            hint="1 allows no more frame-to-frame change than the input has; 2 allows twice",
        )
    return bound, action


def _model_entries(where: str, path: str, entries: list[Any]) -> dict[str, Manifest]:
    """``[[...generative.models]]`` entries: each a SHA-256 and the file's declared manifest."""
    manifests: dict[str, Manifest] = {}
    for number, entry in enumerate(entries, start=1):
        at = f"{path}[{number}]"
        _check_table(where, at, entry, _MODEL_ENTRY, set(_MODEL_ENTRY))
        digest = entry["sha256"]
        if not _SHA256.match(digest):
            raise PolicyError(f"{where}: {at}.sha256 must be a lowercase SHA-256 hex digest")
        if digest in manifests:
            raise PolicyError(f"{where}: {at}.sha256 {digest} is listed twice")

        def fail(message: str, at: str = at) -> PolicyError:
            return PolicyError(
                f"{where}: {at}.manifest {message}",
                hint="`forensic model approve FILE --task ...` prints a valid entry",
            )

        manifests[digest] = parse_manifest(entry["manifest"], fail)
    return manifests


def _check_limits(where: str, table: Any) -> None:
    _check_table(where, "limits", table, _LIMITS, set())
    for key, ceiling in (("max_pixels", CEILING_MAX_PIXELS), ("max_frames", CEILING_MAX_FRAMES)):
        value = table.get(key)
        if value is not None and not 1 <= value <= ceiling:
            raise PolicyError(
                f"{where}: limits.{key} is {value}; it must be between 1 and {ceiling:,}",
                hint="the upper bound is a hard ceiling of this version of the tool",
            )


def _check_timestamps(where: str, table: Any) -> None:
    _check_table(where, "timestamps", table, _TIMESTAMPS, {"url", "trust_root"})
    if not re.match(r"^https?://[^\s/]+", table["url"]):
        raise PolicyError(
            f"{where}: timestamps.url is {table['url']!r}; it must be an http:// or https:// URL "
            "of an RFC 3161 time-stamping authority"
        )
    try:
        roots = x509.load_pem_x509_certificates(table["trust_root"].encode())
    except ValueError:
        roots = []
    if not roots:
        raise PolicyError(
            f"{where}: timestamps.trust_root holds no PEM certificate",
            hint="paste the TSA's root certificate(s) (-----BEGIN CERTIFICATE----- ...) as a "
            "multi-line string: the case's copy of the policy then carries, and pins, the root",
        )


def _check_bundle(where: str, table: Any) -> None:
    _check_table(where, "bundle", table, _BUNDLE, set())
    originals = table.get("originals", "include")
    if originals not in BUNDLE_ORIGINALS:
        raise PolicyError(
            f"{where}: bundle.originals is {originals!r}; it must be one of "
            f"{', '.join(BUNDLE_ORIGINALS)}"
        )


def parse_policy(raw: bytes, *, where: str) -> Policy:
    """Parse and validate a policy; every problem is a `PolicyError` naming the key."""
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(
            f"{where}: larger than {MAX_POLICY_BYTES:,} bytes, the limit for a policy"
        )
    data = parse_toml(raw, where=where, error=PolicyError)
    for table in data:
        if table not in _TOP and table not in ("profiles", *_OPTIONAL_TABLES):
            raise PolicyError(
                f"{where}: unknown table [{table}]",
                hint=f"allowed tables: {', '.join([*_TOP, *_OPTIONAL_TABLES, 'profiles'])}",
            )
    if "limits" in data:
        _check_limits(where, data["limits"])
    if "timestamps" in data:
        _check_timestamps(where, data["timestamps"])
    if "bundle" in data:
        _check_bundle(where, data["bundle"])
    for table, shape in _TOP.items():
        if table not in data:
            raise PolicyError(f"{where}: missing table [{table}]")
        _check_table(where, table, data[table], shape, _REQUIRED_TOP[table])
    if data["policy"]["schema"] != POLICY_SCHEMA:
        raise PolicyError(
            f"{where}: policy.schema is {data['policy']['schema']}; this version reads "
            f"{POLICY_SCHEMA}",
            hint="start from the commented policy.toml shipped with forensic",
        )
    fields = _strings(where, "case.required_fields", data["case"]["required_fields"])
    for field_name in fields:
        if not re.match(r"^[a-z][a-z0-9_]{0,31}$", field_name):
            raise PolicyError(f"{where}: case.required_fields has a malformed name {field_name!r}")
    for key, known in (
        ("hash_algorithms", HASH_ALGORITHMS),
        ("signature_algorithms", SIGNATURE_ALGORITHMS),
    ):
        names = _strings(where, f"crypto.{key}", data["crypto"][key])
        if not names:
            raise PolicyError(f"{where}: crypto.{key} is empty, so no record could be accepted")
        for name in names:
            if name not in known:
                raise PolicyError(
                    f"{where}: crypto.{key} names {name!r}, which this tool does not implement",
                    hint=f"supported: {', '.join(known)}",
                )
    psnr = float(data["replay"]["min_psnr_db"])
    if data["replay"]["max_abs_difference"] < 0 or not math.isfinite(psnr) or psnr <= 0:
        raise PolicyError(f"{where}: replay tolerances must be non-negative (PSNR positive)")
    name = str(data["policy"]["name"])
    profiles_table = data.get("profiles")
    if not isinstance(profiles_table, dict) or not profiles_table:
        raise PolicyError(f"{where}: no [profiles.NAME] table; a policy needs at least one profile")
    profiles = {n: _profile(where, name, n, t) for n, t in profiles_table.items()}
    if data["policy"]["default_profile"] not in profiles:
        raise PolicyError(
            f"{where}: policy.default_profile is {data['policy']['default_profile']!r}, which is "
            f"not one of the profiles ({', '.join(profiles)})"
        )
    return Policy(name=name, data=data, raw=raw, profiles=profiles)


def read_policy_file(path: Path) -> bytes:
    """The bytes of a policy file: a regular file (a FIFO or device is refused by type, not
    read) of at most `MAX_POLICY_BYTES`."""
    return read_regular(path, what="policy file", max_bytes=MAX_POLICY_BYTES, error=PolicyError)


def load_policy(path: Path) -> Policy:
    """Read and validate a policy for a new case (``case init``, ``policy check``): besides
    `parse_policy`'s checks, a profile named ``evidence`` may not allow the generative lane."""
    policy = parse_policy(read_policy_file(path), where=str(path))
    _refuse_generative_evidence(policy, where=str(path))
    return policy


def _refuse_generative_evidence(policy: Policy, *, where: str) -> None:
    profile = policy.profiles.get(EVIDENCE_PROFILE)
    if profile is None:
        return
    generative_ops = [n for n in profile.allow_operations if n.startswith(GENERATIVE_PREFIX)]
    if "generative" in profile.lanes or generative_ops:
        allowed = (
            "lane 'generative'" if "generative" in profile.lanes else ", ".join(generative_ops)
        )
        raise PolicyError(
            f"{where}: profile {EVIDENCE_PROFILE!r} allows the generative lane ({allowed}): "
            "evidence work must stay classical",
            hint=f"remove 'generative' from profiles.{EVIDENCE_PROFILE}.lanes and generative "
            f"operations from profiles.{EVIDENCE_PROFILE}.allow_operations; use another profile "
            "(e.g. investigative) for generative leads",
        )

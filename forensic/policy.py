"""Load and validate a policy file. Fails closed: unknown keys or wrong types are errors.

Enforcement (which operations a case may run) arrives with the enhancement pipeline; here a
policy is parsed, validated, hashed and copied into the case.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from forensic.errors import PolicyError
from forensic.hashing import sha256_hex

POLICY_SCHEMA = 1

# table -> key -> expected type
_SHAPE: dict[str, dict[str, type | tuple[type, ...]]] = {
    "policy": {"schema": int, "name": str, "description": str},
    "lanes": {"classical": bool, "generative": bool},
    "generative": {"approved_models": list, "label": str, "burn_label": bool},
}
_REQUIRED = {"policy": {"schema", "name"}, "lanes": {"classical", "generative"}}


@dataclass(frozen=True)
class Policy:
    name: str
    data: dict[str, Any]
    raw: bytes

    @property
    def sha256(self) -> str:
        return sha256_hex(self.raw)

    @property
    def generative_allowed(self) -> bool:
        return bool(self.data["lanes"]["generative"])


def default_policy_path() -> Path:
    """The policy shipped with the package (installed wheel) or the repository's policy.toml."""
    packaged = resources.files("forensic") / "_data" / "policy.toml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "policy.toml"


def parse_policy(raw: bytes, *, where: str) -> Policy:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{where}: not valid TOML ({exc})") from None
    for table, value in data.items():
        if table not in _SHAPE:
            raise PolicyError(
                f"{where}: unknown table [{table}]", hint=f"allowed tables: {', '.join(_SHAPE)}"
            )
        if not isinstance(value, dict):
            raise PolicyError(f"{where}: [{table}] must be a table")
        for key, item in value.items():
            expected = _SHAPE[table].get(key)
            if expected is None:
                raise PolicyError(
                    f"{where}: unknown key {table}.{key}",
                    hint=f"allowed keys in [{table}]: {', '.join(_SHAPE[table])}",
                )
            if not isinstance(item, expected) or (expected is int and isinstance(item, bool)):
                name = expected.__name__ if isinstance(expected, type) else str(expected)
                raise PolicyError(f"{where}: {table}.{key} must be of type {name}")
    for table, keys in _REQUIRED.items():
        missing = keys - set(data.get(table, {}))
        if missing:
            raise PolicyError(
                f"{where}: missing {', '.join(f'{table}.{k}' for k in sorted(missing))}"
            )
    if data["policy"]["schema"] != POLICY_SCHEMA:
        raise PolicyError(f"{where}: policy.schema must be {POLICY_SCHEMA}")
    models = data.get("generative", {}).get("approved_models", [])
    for model in models:
        if not (
            isinstance(model, str)
            and len(model) == 64
            and all(c in "0123456789abcdef" for c in model)
        ):
            raise PolicyError(
                f"{where}: generative.approved_models entries must be lowercase SHA-256 hex digests"
            )
    return Policy(name=str(data["policy"]["name"]), data=data, raw=raw)


def load_policy(path: Path) -> Policy:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {path}") from None
    except IsADirectoryError:
        raise PolicyError(f"the policy path is a directory, not a file: {path}") from None
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    return parse_policy(raw, where=str(path))

"""Recipes as the editor holds them (a name and a list of steps) and as TOML text.

The editor's steps are turned into TOML here and then parsed by `forensic.api.parse_recipe`,
so a recipe made in the browser is checked by exactly the code that checks a recipe file, and
its messages are the CLI's. The writer covers what recipe values are: strings, numbers,
booleans and flat lists of them (a hand-written serializer, because Python's standard library
reads TOML but does not write it, and these few types do not justify a dependency).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from forensic.errors import InputError

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
#: Step keys that are not operation parameters (forensic.recipe reads them itself).
STEP_KEYS = ("op", "roi", "frames", "seconds")


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where}: {value} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v, where) for v in value) + "]"
    raise InputError(f"{where}: {value!r} cannot be written to a recipe")


def _key(key: str, where: str) -> str:
    if not BARE_KEY.match(key):
        raise InputError(f"{where}: {key!r} is not a parameter name")
    return key


def to_toml(recipe: Mapping[str, Any]) -> str:
    """TOML text of an editor recipe ``{"name", "description", "steps": [{"op", "params",
    "roi", "frames"}...]}``."""
    lines = ["[recipe]"]
    lines.append(f"name = {_value(str(recipe.get('name') or 'workbench'), 'recipe name')}")
    if recipe.get("description"):
        lines.append(f"description = {_value(str(recipe['description']), 'description')}")
    steps = recipe.get("steps")
    if not isinstance(steps, list):
        raise InputError("the recipe has no list of steps")
    for number, step in enumerate(steps, start=1):
        where = f"step {number}"
        if not isinstance(step, Mapping) or not isinstance(step.get("op"), str):
            raise InputError(f"{where}: no operation")
        lines += ["", "[[steps]]", f"op = {_value(step['op'], where)}"]
        for key in ("roi", "frames", "seconds"):
            if step.get(key) is not None:
                lines.append(f"{key} = {_value(step[key], where)}")
        params = step.get("params") or {}
        if not isinstance(params, Mapping):
            raise InputError(f"{where}: parameters must be a table")
        for key, value in params.items():
            if value is None or value == "":
                continue  # left empty: the operation's automatic value or default
            lines.append(f"{_key(str(key), where)} = {_value(value, f'{where} {key}')}")
    return "\n".join(lines) + "\n"


def from_parsed(recipe: Any) -> dict[str, Any]:
    """An editor recipe from a parsed `forensic.recipe.Recipe`."""
    return {
        "name": recipe.name,
        "description": recipe.description,
        "steps": [
            {
                "op": step.op_name,
                "params": dict(step.params),
                "roi": None if step.roi is None else list(step.roi),
                "frames": None if step.frames is None else list(step.frames),
                "seconds": None if step.seconds is None else list(step.seconds),
            }
            for step in recipe.steps
        ],
    }

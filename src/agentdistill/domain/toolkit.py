"""What every domain's tool layer needs: argument validation against the OpenAI schema, schema builders, and the
`{"ok": ..., "result"|"error": ...}` envelope that makes `World.call_tool` never raise.

An implementation is `fn(world, **validated_args) -> dict` and signals failure by raising `ToolFailure`; the
envelope turns it (and any unexpected exception) into a structured error and rolls the world's transaction back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from agentdistill.domain.base import ToolSpec

Impl = Callable[..., dict[str, Any]]


class ToolFailure(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# ------------------------------------------------------------------------------------------- validation

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def bad(message: str) -> ToolFailure:
    return ToolFailure("invalid_arguments", message)


def show(value: Any) -> str:
    """A value as an error message may quote it: repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parses(value: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(value, fmt)
        return True
    except ValueError:
        return False


def _check_value(field: str, schema: dict[str, Any], value: Any) -> None:
    typ = schema.get("type")
    if typ and not _TYPES[typ](value):
        raise bad(f"Argument '{field}' must be of type {typ}, got {type(value).__name__}.")
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(map(str, schema["enum"]))
        raise bad(f"Argument '{field}' must be one of [{allowed}], got {show(value)}.")
    if typ in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            raise bad(f"Argument '{field}' must be >= {schema['minimum']}, got {value}.")
        if "maximum" in schema and value > schema["maximum"]:
            raise bad(f"Argument '{field}' must be <= {schema['maximum']}, got {value}.")
    if typ == "string":
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise bad(f"Argument '{field}' must have at least {schema['minLength']} character(s).")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise bad(f"Argument '{field}' must have at most {schema['maxLength']} characters.")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise bad(f"Argument '{field}' has an invalid format: {show(value)}.")
        fmt = schema.get("format")
        if fmt == "date":
            if not _DATE_RE.match(value) or not _parses(value, "%Y-%m-%d"):
                raise bad(f"Argument '{field}' must be a date 'YYYY-MM-DD', got {show(value)}.")
        elif fmt == "date-time" and (not _DATETIME_RE.match(value) or not _parses(value, "%Y-%m-%dT%H:%M")):
            raise bad(f"Argument '{field}' must be a local date-time 'YYYY-MM-DDTHH:MM', got {show(value)}.")
    if typ == "array":
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise bad(f"Argument '{field}' needs at least {schema['minItems']} items.")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise bad(f"Argument '{field}' allows at most {schema['maxItems']} items.")
        for i, item in enumerate(value):
            _check_value(f"{field}[{i}]", schema.get("items", {}), item)
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            raise bad(f"Argument '{field}' must not contain duplicates.")


def validate_arguments(schema: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """Check `arguments` against a tool's parameter schema; return them with defaults filled in.

    A JSON string is parsed first. An optional argument given as null counts as omitted.
    """
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise bad("Arguments are not valid JSON.") from None
    if not isinstance(arguments, dict):
        raise bad("Arguments must be a JSON object.")
    props: dict[str, Any] = schema.get("properties", {})
    required = schema.get("required", [])
    for key in arguments:
        if key not in props:
            raise bad(f"Unknown argument '{key}'.")
    out: dict[str, Any] = {}
    for key in required:
        if arguments.get(key) is None:
            raise bad(f"Missing required argument '{key}'.")
    for key, sub in props.items():
        value = arguments.get(key)
        if value is None:
            if "default" in sub:
                out[key] = sub["default"]
            continue
        _check_value(key, sub, value)
        out[key] = value
    return out


# ------------------------------------------------------------------------------------------- schemas


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or [], "additionalProperties": False}


def string(desc: str, **kw: Any) -> dict[str, Any]:
    return {"type": "string", "description": desc, **kw}


def integer(desc: str, **kw: Any) -> dict[str, Any]:
    return {"type": "integer", "description": desc, **kw}


# ------------------------------------------------------------------------------------------- running


class Toolbox:
    """A domain's tools: the specs the model sees and the implementations the world runs."""

    def __init__(self, specs: list[tuple[ToolSpec, Impl]]):
        self.specs: dict[str, ToolSpec] = {spec.name: spec for spec, _ in specs}
        self.impls: dict[str, Impl] = {spec.name: fn for spec, fn in specs}

    def run(self, world: Any, name: str, arguments: Any) -> dict[str, Any]:
        """Validate and run one tool; raises ToolFailure on bad arguments or integrity errors."""
        args = validate_arguments(self.specs[name].parameters, arguments)
        return self.impls[name](world, **args)

    def call(self, world: Any, name: Any, arguments: Any) -> dict[str, Any]:
        """The envelope: run a tool on an SQLite-backed world and never raise."""
        try:
            if not isinstance(name, str) or name not in self.specs:
                return error("unknown_tool", f"No tool named {repr(name)[:40]}.")
            return {"ok": True, "result": self.run(world, name, arguments)}
        except ToolFailure as e:
            world.conn.rollback()
            return error(e.code, e.message)
        except Exception as e:  # noqa: BLE001 - tools never raise
            with contextlib.suppress(Exception):
                world.conn.rollback()
            return error("internal_error", f"Internal error in {name}: {type(e).__name__}.")


def error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}

"""A small JSON Schema checker for the subset the API's own schemas use, so tests can
hold real responses against the OpenAPI document (no extra dependency)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """The target of a local ``$ref`` (``#/a/b``); KeyError if it does not resolve."""
    assert ref.startswith("#"), f"non-local $ref {ref}"
    node: Any = doc
    for part in ref[1:].split("/")[1:] if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[part]
    return node


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, TYPES[name])


def errors(doc: dict[str, Any], schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema`` (empty: it conforms)."""
    if "$ref" in schema:
        return errors(doc, resolve(doc, schema["$ref"]), value, path)
    out: list[str] = []
    if "anyOf" in schema and all(errors(doc, s, value, path) for s in schema["anyOf"]):
        out.append(f"{path}: matches none of anyOf")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            return [f"{path}: {value!r} is not {names}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, str):
        if schema.get("format") == "date-time" and (
            not value.endswith("Z") or datetime.fromisoformat(value).tzinfo is None
        ):
            out.append(f"{path}: {value!r} is not an RFC 3339 UTC time with Z")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{path}: missing {name}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                out.extend(errors(doc, props[name], item, f"{path}.{name}"))
            elif extra is False:
                out.append(f"{path}: unexpected {name}")
            elif isinstance(extra, dict):
                out.extend(errors(doc, extra, item, f"{path}.{name}"))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out.extend(errors(doc, schema["items"], item, f"{path}[{i}]"))
    return out


def refs(node: Any) -> list[str]:
    """Every ``$ref`` value in ``node``."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(refs(item))
    return found

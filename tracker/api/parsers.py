"""The API's one parser: JSON, with limits on size, depth and numbers, so hostile bodies are a 400.

DRF's own JSONParser lets through what later code cannot handle: nesting thousands deep
(Python's decoder raises ``RecursionError``, a 500), and ``1e999``, which decodes as infinity
and fails deep inside a field (``int(inf)``, a 500). Here both are a ``ParseError`` (400)
naming the problem, like any other malformed body. So is a lone surrogate (``"\\ud800"``), which
UTF-8 cannot encode: it failed when stored, or when echoed back in a field's error.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No request of this API nests deeper than a prescription's regimen (about 4); 32 leaves room.
MAX_DEPTH = 32


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ParseError(f"JSON parse error - the number {text[:40]} is too large.")
    return value


def _strict_constant(name: str) -> Any:
    raise ParseError(f"JSON parse error - {name} is not a number JSON allows.")


def _check_text(text: str) -> None:
    """A lone surrogate (``"\\ud800"`` is valid JSON) cannot be stored or even echoed in an error as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParseError(
            "JSON parse error - the text holds a lone surrogate (\\ud800-\\udfff), not a character."
        ) from exc


def _check_depth(data: Any, limit: int) -> None:
    """Walk the parsed value without recursion; refuse containers nested deeper than ``limit`` and lone surrogates."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
            continue
        if isinstance(value, dict):
            for key in value:
                _check_text(key)
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            raise ParseError(f"JSON parse error - nested more than {limit} levels deep.")
        stack.extend((child, depth + 1) for child in children)


class LimitedJSONParser(JSONParser):
    """JSON bodies up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes and ``MAX_DEPTH`` levels, finite numbers only."""

    max_depth = MAX_DEPTH

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise ParseError(f"JSON parse error - the body is larger than {limit} bytes.")
        try:
            data = json.loads(raw.decode(encoding), parse_float=_finite_float, parse_constant=_strict_constant)
        except RecursionError as exc:
            raise ParseError(f"JSON parse error - nested more than {self.max_depth} levels deep.") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        _check_depth(data, self.max_depth)
        return data

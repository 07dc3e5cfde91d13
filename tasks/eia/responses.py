"""Reading EIA API v2 response bodies, in both shapes EIA sends.

`/v2/<route>/data/` sends `total` and values as strings; `/v2/seriesid/<ID>` sends numbers and may
send `period` as an integer. The truncation `warnings` list sits at the top level since API
2.1.14 and inside `response` before. An `error` member means failure whatever the status code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tasks.core.errors import EiaMalformedResponse

# Deeply nested JSON is hostile input: EIA's own bodies nest four levels.
MAX_JSON_DEPTH = 32


@dataclass(frozen=True, slots=True)
class EiaPage:
    rows: list[Any]  # normally objects; anything else is left for the normalizer to reject
    total: int | None
    frequency: str | None
    date_format: str | None
    description: str | None
    warnings: list[str]
    api_version: str | None


def _depth_ok(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def decode_body(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise EiaMalformedResponse(f"EIA sent a body that is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(body, dict):
        raise EiaMalformedResponse("EIA sent a JSON body that is not an object")
    if not _depth_ok(body, MAX_JSON_DEPTH):
        raise EiaMalformedResponse(f"EIA sent JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return body


def error_of(body: dict[str, Any]) -> tuple[str | None, str] | None:
    """(code, message) when the body reports an error, in any of the shapes EIA uses."""
    err = body.get("error")
    if err is None:
        return None
    if isinstance(err, dict):
        code = err.get("code")
        return (str(code) if code is not None else None, str(err.get("message") or err))
    code = body.get("code")
    return (str(code) if code is not None else None, str(err))


def _warnings(body: dict[str, Any], response: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for source in (body.get("warnings"), response.get("warnings")):
        if isinstance(source, list):
            for w in source:
                if isinstance(w, dict):
                    found.append(f"{w.get('warning', '')}: {w.get('description', '')}".strip(": "))
                else:
                    found.append(str(w))
    return found


def parse_page(body: dict[str, Any]) -> EiaPage:
    response = body.get("response")
    if not isinstance(response, dict):
        raise EiaMalformedResponse("EIA response has no 'response' object")
    data = response.get("data")
    if not isinstance(data, list):
        raise EiaMalformedResponse("EIA response has no 'response.data' list")
    raw_total = response.get("total")
    try:
        total = int(raw_total) if raw_total is not None else None
    except (TypeError, ValueError):
        total = None
    return EiaPage(
        rows=data,
        total=total,
        frequency=response.get("frequency"),
        date_format=response.get("dateFormat"),
        description=response.get("description"),
        warnings=_warnings(body, response),
        api_version=body.get("apiVersion"),
    )

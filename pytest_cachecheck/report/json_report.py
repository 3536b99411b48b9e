"""``--cache-report run.json``: the report dict as JSON, and the JSON Schema it follows.

The schema is part of the public API (version 1): keys are only ever added, and a
change that removes or renames one bumps ``version``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..metrics import TARGET_METRICS

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_COUNT = {"type": "integer", "minimum": 0}

PATTERN_STATS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "reads",
        "hits",
        "misses",
        "hit_rate",
        "writes",
        "deletes",
        "errors",
        "commands",
        "command_counts",
        "latency_ms",
        "latency_cdf",
        "keys_written",
        "keys_without_ttl",
    ],
    "properties": {
        "reads": _COUNT,
        "hits": _COUNT,
        "misses": _COUNT,
        "hit_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "writes": _COUNT,
        "deletes": _COUNT,
        "errors": _COUNT,
        "commands": _COUNT,
        "command_counts": {"type": "object", "additionalProperties": _COUNT},
        "latency_ms": {
            "type": "object",
            "required": ["count", "p50", "p95", "p99", "max"],
            "properties": {
                "count": _COUNT,
                "p50": _NUMBER_OR_NULL,
                "p95": _NUMBER_OR_NULL,
                "p99": _NUMBER_OR_NULL,
                "max": _NUMBER_OR_NULL,
            },
        },
        "latency_cdf": {
            "type": "array",
            "items": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}], "minItems": 2},
        },
        "keys_written": _COUNT,
        "keys_without_ttl": _COUNT,
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pytest-cachecheck report",
    "type": "object",
    "required": ["version", "created", "backend", "redis_version", "run", "targets", "patterns", "tests"],
    "properties": {
        "version": {"const": 1},
        "created": {"type": "string"},
        "backend": {"enum": ["fake", "server", "docker", "url", "cluster"]},
        "redis_version": {"type": ["string", "null"]},
        "run": {
            "type": "object",
            "required": ["tests", "workers", "targets", "targets_missed"],
            "properties": {
                "tests": _COUNT,
                "workers": _COUNT,
                "targets": _COUNT,
                "targets_missed": _COUNT,
                "crashed_workers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["worker", "test"],
                        "properties": {"worker": {"type": "string"}, "test": {"type": ["string", "null"]}},
                    },
                },
            },
        },
        "targets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "pattern", "metric", "value", "limit", "op", "status", "detail"],
                "properties": {
                    "name": {"type": "string"},
                    "pattern": {"type": "string"},
                    "metric": {"enum": list(TARGET_METRICS)},
                    "value": _NUMBER_OR_NULL,
                    "limit": {"type": "number"},
                    "op": {"enum": [">=", "<="]},
                    "status": {"enum": ["met", "missed", "no data", "inconclusive", "not enforced"]},
                    "value_text": {"type": "string"},
                    "limit_text": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
        },
        "patterns": {"type": "object", "required": ["*"], "additionalProperties": PATTERN_STATS_SCHEMA},
        "key_shapes": {"type": "object", "additionalProperties": PATTERN_STATS_SCHEMA},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["nodeid", "metrics", "checks"],
                "properties": {
                    "nodeid": {"type": "string"},
                    "metrics": {
                        "type": "object",
                        "required": ["commands", "reads", "hits", "misses", "hit_rate"],
                        "properties": {"commands": _COUNT, "reads": _COUNT, "hits": _COUNT, "misses": _COUNT},
                    },
                    "checks": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["marker", "status", "message", "metrics"],
                            "properties": {
                                "marker": {"type": "string"},
                                "status": {"enum": ["passed", "failed", "inconclusive", "not enforced"]},
                                "message": {"type": "string"},
                                "metrics": {"type": "object"},
                            },
                        },
                    },
                },
            },
        },
        "measurements": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["metric", "value", "nodeid", "size"],
                "properties": {
                    "metric": {"type": "string"},
                    "value": {"type": ["number", "string"]},
                    "nodeid": {"type": "string"},
                    "size": _NUMBER_OR_NULL,
                },
            },
        },
    },
}


def render(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, allow_nan=False) + "\n"


def write(report: dict[str, Any], path: Path) -> None:
    path.write_text(render(report), encoding="utf-8")

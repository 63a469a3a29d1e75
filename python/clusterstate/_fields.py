"""Typed values of single State fields, for the Rust State's attributes (``clusterstate.CoreState``).

The Rust State reads like the pydantic one: each attribute is decoded from that field's JSON with
the pydantic type of the same field, so ``rust_state.node_memory["n"]`` is a ``MemoryUsage``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter

from clusterstate.models import State

__all__ = ["field_value"]


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    annotation: Any = State.model_fields[name].annotation
    return TypeAdapter(annotation)


def field_value(name: str, json: bytes) -> Any:
    """The value of State field ``name`` decoded from its JSON."""
    return _adapter(name).validate_json(json)

"""Model base classes and the externally tagged union convention shared by every model.

exo's wire format: JSON, snake_case field names, and unions encoded
as ``{"ClassName": {...fields...}}``. Dumps meant for people use camelCase aliases
(``model_dump(by_alias=True)``); both spellings are accepted on input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    JsonValue,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "CamelCaseModel",
    "JsonObject",
    "TaggedJson",
    "TaggedModel",
    "check_json",
    "one_of_tags",
    "tag_discriminator",
]


class CamelCaseModel(BaseModel):
    """Strict, frozen model: snake_case on the wire, camelCase aliases for people.

    Frozen because the reducer is pure: a State and everything in it is a value, and ``apply``
    returns a new State instead of changing the old one.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=False,
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,  # JSON has no NaN/inf: pydantic would accept them and then write null
        loc_by_alias=False,  # errors name the wire (snake_case) field, as for every other error kind
    )


class TaggedModel(CamelCaseModel):
    """A union member that serialises as ``{"ClassName": {...}}``.

    Validating a class directly accepts the tagged or the bare form; unions built with
    :func:`tag_discriminator` require the tag, so an unknown or missing tag is a clear error.
    """

    @model_serializer(mode="wrap")
    def _serialize_tagged(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {type(self).__name__: handler(self)}

    @model_validator(mode="wrap")
    @classmethod
    def _validate_tagged(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Self:
        if isinstance(value, dict) and len(value) == 1 and cls.__name__ in value:
            value = value[cls.__name__]
        result: Self = handler(value)
        return result


def _tag_of(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        return key if isinstance(key, str) else None
    return None


def tag_discriminator(untagged: Callable[[dict[str, Any]], str | None] | None = None) -> Discriminator:
    """The discriminator of an externally tagged union.

    The tag is the class name of an instance, or the single key of a dict. ``untagged`` names
    the member for dicts that carry no tag (exo leaves ``MemoryUsage`` and connection edges
    untagged and tells them apart by shape).
    """

    def discriminate(value: Any) -> str | None:
        if untagged is not None and isinstance(value, dict):
            member = untagged(value)
            if member is not None:
                return member
        return _tag_of(value)

    return Discriminator(discriminate)


MAX_JSON_DEPTH = 64
"""How deep arrays and objects may nest in an opaque JSON value (the outermost is depth 1)."""

MAX_JSON_INT_DIGITS = 4300
"""The most digits of an integer in an opaque JSON value (Python's ``int`` text limit)."""

_INT_LIMIT = 10**MAX_JSON_INT_DIGITS


def check_json(value: Any) -> None:
    """Refuse what an opaque JSON value may not hold, the same rules as the Rust core's.

    pydantic's JsonValue accepts NaN, Infinity and 1e400 in JSON mode and would write them back as
    null: a silent change of value, so non-finite numbers are refused. Nesting beyond
    :data:`MAX_JSON_DEPTH` and integers of more than :data:`MAX_JSON_INT_DIGITS` digits are refused.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("JSON numbers must be finite")
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= _INT_LIMIT:
            raise ValueError(f"integer of more than {MAX_JSON_INT_DIGITS} digits")
        if isinstance(item, (dict, list)) and depth > MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _checked_json(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    check_json(value)
    return value


JsonObject = Annotated[dict[str, JsonValue], AfterValidator(_checked_json)]
"""A JSON object carried opaquely: validated as (finite) JSON, never looked inside by the reducer."""


def _checked_bodies(value: dict[str, dict[str, JsonValue]]) -> dict[str, dict[str, JsonValue]]:
    for body in value.values():
        check_json(body)
    return value


TaggedJson = Annotated[dict[str, dict[str, JsonValue]], AfterValidator(_checked_bodies)]
"""A tagged payload kept as JSON: ``{"Tag": {...}}``; see :func:`one_of_tags`."""


def one_of_tags(*tags: str) -> AfterValidator:
    """Validator for a :data:`TaggedJson` payload whose single tag must be one of ``tags``.

    Used for inference payloads the reducer never reads (generation chunks, shard metadata), so
    exo's full payloads round-trip unchanged while the Rust types stay small.
    """
    allowed = frozenset(tags)

    def check(value: TaggedJson) -> TaggedJson:
        if len(value) != 1:
            raise ValueError(f"expected one tag of {sorted(allowed)}, got keys {sorted(value)}")
        (tag,) = value
        if tag not in allowed:
            raise ValueError(f"unknown tag {tag!r}, expected one of {sorted(allowed)}")
        return value

    return AfterValidator(check)

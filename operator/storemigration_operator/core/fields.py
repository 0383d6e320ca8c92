"""The field types the spec and status models share, and how each appears in the CRD.

Every model writes camelCase on the wire (`alias_generator`), so the Python side reads
`read_step.interval` and the YAML says `readStep.interval`. Spec models are strict and
closed: what the API server admits must parse exactly, and a misspelt field is an error
that names it, not a silently ignored one. Status models are lenient: they read back what
an older operator wrote and drop what they no longer know.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

from .durations import NONZERO_DURATION_PATTERN, format_duration, format_time, parse_duration


class SpecModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True,
                              extra="forbid", strict=True)


class StatusModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="ignore")


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


def _reading(value: Any) -> float | str | None:
    """A reading as status can hold it: JSON has no Infinity or NaN, so they are strings."""
    if value is None or isinstance(value, str):
        return value
    number = float(value)
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if math.isnan(number):
        return "NaN"
    return number


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": NONZERO_DURATION_PATTERN}),
]
Timestamp = Annotated[
    datetime,
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
# A gate's value: a number, "+Inf" (histogram_quantile above the top bucket) or "NaN".
# Structural schemas allow one type per field, so this one keeps what it is given.
Reading = Annotated[
    float | Literal["+Inf", "-Inf", "NaN"] | None,
    BeforeValidator(_reading),
    WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True}),
]
IntOrString = Annotated[
    int | str,
    WithJsonSchema({"x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}]}),
]

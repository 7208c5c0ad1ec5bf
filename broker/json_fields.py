"""Reading request bodies field by field as Nakadi's request binding does,
and writing times as Nakadi serialises them.

A value of the wrong JSON type or an unknown enum value stops the request
at once (400, `InvalidRequestError`); missing required fields and values
out of range are collected by a `FieldReader` and reported together (422,
`InvalidFieldsError`), one `Field "x" ...` line each. Nested readers share
one problem list. Used by `event_type_json` and `subscription_json`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from .errors import InvalidFieldsError, InvalidRequestError


def time_json(moment: datetime | None) -> str | None:
    """`moment` as Nakadi writes times: UTC, milliseconds, `Z`."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


LABEL_VALUE = re.compile(r"([a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?)?", re.ASCII)
_E = TypeVar("_E", bound=StrEnum)
_ABSENT = object()
_KEY_RULES = (
    (re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[^/]*", re.ASCII),
     "Key name should be an optional lowercase domain name with path"),
    (re.compile(r"([-.a-z0-9]{0,253}/)?[^/]*", re.ASCII), "Key prefix cannot be more than 253 characters."),
    (re.compile(r"([-.a-z0-9]+/)?[^/]{0,63}", re.ASCII), "Key name cannot be more than 63 characters."),
    (re.compile(r"([^/]+/)?[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?", re.ASCII),
     "Key name should start and end with a letter or a digit"),
)


class FieldReader:
    """The fields of one JSON object; nested readers share the problem list."""

    def __init__(self, value: Any, prefix: str = "", problems: list[str] | None = None) -> None:
        if not isinstance(value, Mapping):
            raise InvalidRequestError(f"{_describe(prefix.rstrip('.') or 'body')} must be a JSON object")
        self._object = value
        self._prefix = prefix
        self._problems = [] if problems is None else problems

    def invalid(self, name: str, message: str) -> None:
        self._problems.append(f'Field "{self._prefix}{name}" {message}')

    def present(self, name: str) -> bool:
        """Whether the object has `name` with a value other than null."""
        return self._object.get(name) is not None

    def raise_if_invalid(self) -> None:
        if self._problems:
            raise InvalidFieldsError("".join(f"{problem}\n" for problem in self._problems))

    def _value(self, name: str, json_type: type | tuple[type, ...], default: Any, required: bool) -> Any:
        value = self._object.get(name, _ABSENT)
        if value is _ABSENT:
            value = default
        if value is None:
            if required:
                self.invalid(name, "may not be null")
            return None
        if value is not default and (isinstance(value, bool) or not isinstance(value, json_type)):
            raise InvalidRequestError(f"{_describe(self._prefix + name)} has the wrong JSON type")
        return value

    def raw(self, name: str) -> Any:
        """The value of `name` as it is (None when absent), for fields whose
        own module checks them."""
        return self._object.get(name)

    def string(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        return self._value(name, str, default, required)

    def integer(self, name: str, *, required: bool = False, minimum: tuple[int, str] | None = None) -> int | None:
        value = self._value(name, int, None, required)
        if value is not None and minimum is not None and value < minimum[0]:
            self.invalid(name, minimum[1])
        return value

    def strings(self, name: str, *, required: bool = False) -> tuple[str, ...]:
        values = self._value(name, list, None if required else (), required) or ()
        if not all(isinstance(value, str) for value in values):
            raise InvalidRequestError(f"{_describe(self._prefix + name)} must be a list of strings")
        return tuple(values)

    def enum(self, name: str, enum: type[_E], *, required: bool = False, default: _E | None = None,
             exact: bool = False) -> _E | None:
        value = self._value(name, str, default, required)
        return value if value is None or value is default else _enum_value(enum, value, exact)

    def enum_list(self, name: str, enum: type[_E]) -> tuple[_E, ...]:
        values = self._value(name, list, (), True)
        if values is None:
            return ()
        if not all(isinstance(value, str) for value in values):
            raise InvalidRequestError(f"{_describe(self._prefix + name)} must be a list of strings")
        return tuple(_enum_value(enum, value, exact=False) for value in values)

    def time(self, name: str) -> datetime | None:
        value = self._value(name, str, None, False)
        try:
            return None if value is None else datetime.fromisoformat(value)
        except ValueError as e:
            raise InvalidRequestError(f"{_describe(self._prefix + name)} is not an RFC 3339 date-time") from e

    def child(self, name: str, *, required: bool = False) -> FieldReader | None:
        value = self._value(name, Mapping, None, required)
        return None if value is None else FieldReader(value, f"{self._prefix}{name}.", self._problems)

    def children(self, name: str, *, required: bool = False, at_least_one: bool = False) -> list[FieldReader]:
        values = self._value(name, list, None, required)
        if values is None:
            return []
        if at_least_one and not values:
            self.invalid(name, "must contain at least one attribute")
        return [FieldReader(value, f"{self._prefix}{name}[{index}].", self._problems)
                for index, value in enumerate(values)]

    def annotations(self, name: str, *, value_length_max: int,
                    value_pattern: re.Pattern[str] | None = None) -> MappingProxyType[str, str] | None:
        """A string map with Kubernetes-style keys (annotations, labels)."""
        values = self._value(name, Mapping, None, False)
        if values is None:
            return None
        if not all(isinstance(v, str) for v in values.values()):
            raise InvalidRequestError(f"{_describe(self._prefix + name)} must map strings to strings")
        for key, value in values.items():
            for problem in _key_problems(key):
                self.invalid(name, problem)
            if len(value) > value_length_max:
                self.invalid(f"{name}[{key}]", f"size must be between 0 and {value_length_max}")
            if value_pattern is not None and not value_pattern.fullmatch(value):
                self.invalid(f"{name}[{key}]", "Should contain only allowed symbols")
        return MappingProxyType(dict(values))


def _key_problems(key: str) -> list[str]:
    if not key:
        return ["Key cannot be empty"]
    return [message for pattern, message in _KEY_RULES if not pattern.fullmatch(key)]


def _enum_value(enum: type[_E], value: str, exact: bool) -> _E:
    try:
        return enum(value if exact else value.lower())
    except ValueError:
        possible = ", ".join(member.value for member in enum)
        raise InvalidRequestError(f"Illegal enum value: '{value}'. Possible values: [{possible}]") from None


def _describe(field: str) -> str:
    return "The request body" if field == "body" else f'Field "{field}"'

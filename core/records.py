"""Typed, versioned records that cross a process: one base class, one way to read and write them.

A record is a dataclass deriving from :class:`Record` with a class-level ``KIND`` (its name in errors and
in the JSON document) and ``VERSION`` (an integer, raised when a field changes meaning or goes away). Its
JSON document is :meth:`Record.to_dict`: ``"record": KIND`` and ``"record_version": VERSION`` first, then
the fields as plain JSON types (``record`` and ``record_version`` are therefore not field names).
:meth:`Record.from_dict` checks the kind, the version, every required field and
every field's type from the dataclass annotations, and raises :class:`RecordError` naming the field
(``run summary: tasks[2].name must be a string, got 5``). Unknown keys are refused too, so that a typo in a
hand-written record is not silently ignored.

Supported annotations: ``str``, ``int``, ``float`` (an ``int`` is accepted), ``bool``, ``Any``,
``Optional[X]``, ``List[X]``, ``Dict[str, X]``, ``Tuple[X, ...]`` and nested :class:`Record` or plain
dataclass types. Only the standard library is imported.

Writers call :func:`write_record` (atomic, through :func:`kfpkit.core.publish.publish_json`) and readers
:func:`read_record`; both name the file in their errors.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from typing import Any, ClassVar, Dict, Mapping, Optional, Type, TypeVar

R = TypeVar("R", bound="Record")
_NONE = type(None)


class RecordError(ValueError):
    """A record document that is not of the expected kind or version, or has a missing or invalid field."""


def _type_name(annotation: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", dict: "an object"}
    if annotation in names:
        return names[annotation]
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "an object"
    if dataclasses.is_dataclass(annotation):
        return "an object"
    return str(annotation)


def _convert_union(value: Any, annotation: Any, where: str) -> Any:
    options = typing.get_args(annotation)
    if value is None and _NONE in options:
        return None
    errors = []
    for option in (o for o in options if o is not _NONE):
        try:
            return _convert(value, option, where)
        except RecordError as exc:
            errors.append(str(exc))
    raise RecordError(errors[0] if len(errors) == 1 else f"{where} has an invalid value {value!r}")


def _convert_sequence(value: Any, annotation: Any, where: str) -> Any:
    if not isinstance(value, (list, tuple)):
        raise RecordError(f"{where} must be a list, got {value!r}")
    item = (typing.get_args(annotation) or (Any,))[0]
    converted = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(converted) if typing.get_origin(annotation) is tuple else converted


def _convert_mapping(value: Any, annotation: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise RecordError(f"{where} must be an object, got {value!r}")
    value_type = (typing.get_args(annotation) or (str, Any))[1]
    for key in value:
        if not isinstance(key, str):
            raise RecordError(f"{where} must have string keys, got {key!r}")
    return {k: _convert(v, value_type, f"{where}.{k}") for k, v in value.items()}


def _convert_scalar(value: Any, annotation: Any, where: str) -> Any:
    # bool is an int in Python, and JSON has one number type: a float field takes an integer
    accepted = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}.get(annotation, (annotation,))
    if (isinstance(value, bool) and annotation is not bool) or not isinstance(value, accepted):
        raise RecordError(f"{where} must be {_type_name(annotation)}, got {value!r}")
    return float(value) if annotation is float else value


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """``value`` read as ``annotation``; raises RecordError naming ``where`` when it is not one."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        result = value
    elif origin is typing.Union:
        result = _convert_union(value, annotation, where)
    elif origin in (list, tuple):
        result = _convert_sequence(value, annotation, where)
    elif origin is dict:
        result = _convert_mapping(value, annotation, where)
    elif dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if isinstance(value, annotation):
            result = value
        elif issubclass(annotation, Record):
            result = annotation._from_fields(value, where)
        else:
            result = _dataclass_from(annotation, value, where)
    elif isinstance(annotation, type):
        result = _convert_scalar(value, annotation, where)
    else:
        result = value
    return result


def _hints(cls: type) -> Dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    return typing.get_type_hints(cls, globalns=vars(module) if module else None)


def _dataclass_from(cls: Any, value: Any, where: str) -> Any:
    if not isinstance(value, Mapping):
        raise RecordError(f"{where} must be an object, got {value!r}")
    hints = _hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise RecordError(f"{where + ' has ' if where else ''}unknown field(s) {unknown}")
    kwargs = {}
    for name, spec in known.items():
        if name not in value:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise RecordError(f"{where}.{name} is missing" if where else f"{name} is missing")
            continue
        kwargs[name] = _convert(value[name], hints[name], f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value._fields_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclasses.dataclass
class Record:
    """Base of every typed record (see the module docstring); subclasses are dataclasses too."""

    KIND: ClassVar[str] = "record"
    VERSION: ClassVar[int] = 1

    def _fields_dict(self) -> Dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document: ``record`` and ``record_version`` first, then every field as plain JSON types."""
        return {"record": self.KIND, "record_version": self.VERSION, **self._fields_dict()}

    @classmethod
    def _from_fields(cls: Type[R], value: Any, where: str) -> R:
        return _dataclass_from(cls, value, where)

    @classmethod
    def from_dict(cls: Type[R], document: Any, where: Optional[str] = None) -> R:
        """Reads a document written by :meth:`to_dict`.

        Args:
            document: The parsed JSON document.
            where: What errors call the document (default: the record's kind, e.g. ``run summary``).

        Returns:
            The record.

        Raises:
            RecordError: The document is not an object, is of another kind or version, lacks a required
                field, has an unknown one, or a field of the wrong type; the message names the field.
        """
        name = where or cls.KIND
        if not isinstance(document, Mapping):
            raise RecordError(f"{name}: must be a JSON object, got {type(document).__name__}")
        kind = document.get("record")
        if kind != cls.KIND:
            raise RecordError(f"{name}: record must be {cls.KIND!r}, got {kind!r}")
        version = document.get("record_version")
        if isinstance(version, bool) or version != cls.VERSION:
            raise RecordError(
                f"{name}: record_version must be {cls.VERSION}, got {version!r} (written by another kfpkit version?)"
            )
        body = {k: v for k, v in document.items() if k not in ("record", "record_version")}
        try:
            return cls._from_fields(body, "")
        except RecordError as exc:
            raise RecordError(f"{name}: {exc}") from None

    def to_json(self, indent: Optional[int] = 2) -> str:
        """The JSON text of :meth:`to_dict` (keys in field order)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls: Type[R], text: str, where: Optional[str] = None) -> R:
        """Parses JSON text, then :meth:`from_dict`; a text that is not JSON raises RecordError too."""
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise RecordError(f"{where or cls.KIND}: not JSON: {exc}") from None
        return cls.from_dict(document, where)


def write_record(path: str, record: Record) -> None:
    """Writes ``record`` as JSON to the local ``path`` atomically (a reader sees the old or the new file)."""
    from kfpkit.core.publish import publish_json

    publish_json(path, record.to_dict())


def read_record(path: str, cls: Type[R]) -> R:
    """Reads a record of type ``cls`` from the local ``path``; errors name the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read the {cls.KIND}: {exc}") from None
    return cls.from_json(text, where=f"{path}")

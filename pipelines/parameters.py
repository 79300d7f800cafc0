"""A pipeline's parameters: what it declares, and the checked values of one run (flags, a params file).

``kfpkit run`` (kfp.local) and ``kfpkit submit`` (Kubeflow, Vertex AI) read a run's parameters the same
way, through :func:`resolve_parameters`:

1. the **params file** (``--params-file FILE``), if any: a YAML or JSON mapping of parameter names to
   values. An unknown name, a value of the wrong type, a repeated name, a file that is not YAML or JSON or
   not a mapping are refused, and the error names the file (and the key);
2. the **flags** (``--param NAME=VALUE`` of submit, ``--<name>`` of run), which override the file;
3. the check of the merged values against the declared parameters: an unknown name, a wrong type, a
   required parameter left out.

Values take the declared type (:class:`Parameter`, in the compiled spec's words: ``STRING``,
``NUMBER_INTEGER``, ``NUMBER_DOUBLE``, ``BOOLEAN``, ``LIST``, ``STRUCT``). A string given for a
non-string parameter is read like command-line text (``"5"`` for an integer, ``"true"`` for a boolean,
JSON for a list), so that ``learning_rate: 1e-3`` (a string to YAML 1.1) works; any other value must
have the type itself (an integer is accepted for a ``NUMBER_DOUBLE``).

Nothing here imports kfp: the declared parameters come from a compiled spec (:func:`spec_parameters`) or
from a pipeline object that the caller built (:func:`pipeline_parameters`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import yaml


class ParameterError(ValueError):
    """A pipeline parameter value is unknown, missing or of the wrong type; the message names it."""


@dataclass(frozen=True)
class Parameter:
    """One pipeline input parameter, as the compiled spec declares it."""

    name: str
    type: str  # STRING, NUMBER_INTEGER, NUMBER_DOUBLE, BOOLEAN, LIST, STRUCT
    required: bool
    default: Any = None
    description: str = ""


# kfp's component-spec type names -> the compiled spec's parameterType
_COMPONENT_TYPES = {
    "String": "STRING",
    "Integer": "NUMBER_INTEGER",
    "Float": "NUMBER_DOUBLE",
    "Boolean": "BOOLEAN",
    "List": "LIST",
    "Dict": "STRUCT",
}
# parameterType -> (the Python types of its values, its values in words)
_PYTHON_TYPES: Dict[str, tuple] = {
    "STRING": ((str,), "a string"),
    "NUMBER_INTEGER": ((int,), "an integer"),
    "NUMBER_DOUBLE": ((int, float), "a number"),
    "BOOLEAN": ((bool,), "true or false"),
    "LIST": ((list,), "a list"),
    "STRUCT": ((dict,), "a mapping"),
}


def spec_parameters(pipeline_spec: Mapping[str, Any]) -> Dict[str, Parameter]:
    """The ``root.inputDefinitions.parameters`` of a compiled pipeline spec (a dict), by name."""
    declared = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    parameters = {}
    for name, spec in declared.items():
        parameters[name] = Parameter(
            name=name,
            type=spec.get("parameterType", "STRING"),
            required=not spec.get("isOptional", False) and "defaultValue" not in spec,
            default=spec.get("defaultValue"),
            description=spec.get("description", ""),
        )
    return parameters


def pipeline_parameters(pipeline: Any) -> Dict[str, Parameter]:
    """The declared inputs of a KFP pipeline object (``GraphComponent``), in signature order.

    Defaults keep their Python type (an integer default stays an integer, unlike in the compiled spec),
    and descriptions are the ``Args:`` of the pipeline's docstring, whitespace folded.

    Raises:
        ParameterError: an input is an artifact or of a type that a run cannot be given as a value.
    """
    found = {}
    for name, spec in pipeline.component_spec.inputs.items():
        kind = _COMPONENT_TYPES.get(str(spec.type))
        if kind is None:
            raise ParameterError(f"pipeline {pipeline.name!r}: input {name!r} of type {spec.type!r} cannot be given")
        description = " ".join((spec.description or "").split())
        found[name] = Parameter(name, kind, not spec.optional, spec.default, description)
    return found


def parse_assignments(items: Sequence[str], flag: str = "--param") -> Dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``.

    Raises:
        ParameterError: an item without ``=`` or a name, or a name given twice (the message names ``flag``).
    """
    values: Dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"{flag} {item!r}: expected NAME=VALUE")
        if name in values:
            raise ParameterError(f"{flag} {name} given twice")
        values[name] = value
    return values


def _parse_text(parameter: Parameter, text: str, where: str) -> Any:
    """Command-line text for a non-string parameter -> its value (checked against the type afterwards)."""
    kind = parameter.type
    text = text.strip()
    if kind == "NUMBER_INTEGER":
        if not re.fullmatch(r"[-+]?\d+", text):
            raise ParameterError(f"{where}: {text!r} is not an integer")
        return int(text)
    if kind == "NUMBER_DOUBLE":
        try:
            number = float(text)
        except ValueError:
            raise ParameterError(f"{where}: {text!r} is not a number") from None
        if not math.isfinite(number):
            raise ParameterError(f"{where}: {text!r} is not a finite number")
        return number
    if kind == "BOOLEAN":
        if text.lower() not in ("true", "false"):
            raise ParameterError(f"{where}: {text!r} is not true or false")
        return text.lower() == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"{where}: {text!r} is not JSON ({exc.msg})") from None


def coerce(parameter: Parameter, value: Any) -> Any:
    """``value`` as ``parameter``'s type: text is parsed, any other value must already have the type.

    Raises:
        ParameterError: naming the parameter, its type and the value.
    """
    where = f"parameter {parameter.name} ({parameter.type})"
    if parameter.type not in _PYTHON_TYPES:
        raise ParameterError(f"{where}: parameters of type {parameter.type} cannot be set")
    expected, words = _PYTHON_TYPES[parameter.type]
    if isinstance(value, str) and parameter.type != "STRING":
        value = _parse_text(parameter, value, where)
    if (isinstance(value, bool) and parameter.type != "BOOLEAN") or not isinstance(value, expected):
        raise ParameterError(f"{where}: {value!r} is not {words}")
    return float(value) if parameter.type == "NUMBER_DOUBLE" else value


def _set_with_param(name: str) -> str:
    return f"--param {name}=..."


def _check_known(parameters: Mapping[str, Parameter], names: Sequence[str], pipeline: str) -> None:
    unknown = sorted(set(names) - set(parameters))
    if unknown:
        known = ", ".join(sorted(parameters))
        raise ParameterError(f"pipeline {pipeline} has no parameter {', '.join(unknown)}; its parameters: {known}")


def check_parameters(
    parameters: Mapping[str, Parameter],
    values: Mapping[str, Any],
    pipeline: str,
    *,
    how_to_set: Callable[[str], str] = _set_with_param,
) -> Dict[str, Any]:
    """Coerces ``values`` (command-line text or typed Python values) to the declared types.

    Args:
        parameters: The pipeline's declared parameters (:func:`spec_parameters`, :func:`pipeline_parameters`).
        values: The values of one run, by parameter name.
        pipeline: The pipeline's name, for the messages.
        how_to_set: The hint that a missing parameter's message gives (default ``--param NAME=...``).

    Returns:
        The values, each of its parameter's type.

    Raises:
        ParameterError: an unknown parameter, a value of the wrong type, or a required parameter missing.
    """
    _check_known(parameters, list(values), pipeline)
    missing = sorted(name for name, p in parameters.items() if p.required and name not in values)
    if missing:
        hint = " ".join(how_to_set(name) for name in missing)
        raise ParameterError(f"pipeline {pipeline} needs {', '.join(missing)} ({hint})")
    return {name: coerce(parameters[name], value) for name, value in values.items()}


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a mapping key given twice is an error (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_params_file(path: str) -> Dict[str, Any]:
    """The mapping of parameter names to values in the YAML or JSON file ``path`` (empty file: none).

    Raises:
        ParameterError: the file cannot be read, is not YAML or JSON (with the line), repeats a key, or is
            not a mapping with string keys; the message names the file.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            document = yaml.load(fh, Loader=_UniqueKeyLoader)  # a SafeLoader: builds plain data only
    except OSError as exc:
        raise ParameterError(f"params file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ParameterError(f"params file {path}: not UTF-8 text ({exc.reason})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        kind = "" if isinstance(exc, yaml.constructor.ConstructorError) else "not YAML or JSON: "
        raise ParameterError(f"params file {path}: {kind}{problem}{where}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ParameterError(
            f"params file {path}: expected a mapping of parameter names to values, not a {type(document).__name__}"
        )
    keys = [key for key in document if not isinstance(key, str)]
    if keys:
        raise ParameterError(f"params file {path}: parameter names are strings, not {keys[0]!r}")
    return document


def params_file_values(path: str, parameters: Mapping[str, Parameter], pipeline: str) -> Dict[str, Any]:
    """The values of params file ``path``, each checked against ``parameters`` and of its type.

    Raises:
        ParameterError: as :func:`read_params_file`, or an unknown key or a wrong type (naming the key and
            the file).
    """
    document = read_params_file(path)
    try:
        _check_known(parameters, list(document), pipeline)
        return {name: coerce(parameters[name], value) for name, value in document.items()}
    except ParameterError as exc:
        raise ParameterError(f"params file {path}: {exc}") from None


def resolve_parameters(
    parameters: Mapping[str, Parameter],
    pipeline: str,
    given: Mapping[str, Any],
    *,
    params_file: Optional[str] = None,
    how_to_set: Callable[[str], str] = _set_with_param,
) -> Dict[str, Any]:
    """The checked parameter values of one run: ``params_file``'s, overridden by ``given`` (the flags).

    Args:
        parameters: The pipeline's declared parameters.
        pipeline: The pipeline's name, for the messages.
        given: Values from the command line (text or typed); they override the file's.
        params_file: A YAML or JSON mapping of parameter names to values (``None``: no file).
        how_to_set: The hint that a missing parameter's message gives.

    Raises:
        ParameterError: see :func:`params_file_values` and :func:`check_parameters`.
    """
    values = params_file_values(params_file, parameters, pipeline) if params_file else {}
    values.update(given)
    return check_parameters(parameters, values, pipeline, how_to_set=how_to_set)

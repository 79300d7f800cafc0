"""Inputs/outputs tables of component READMEs, generated from the component signature and docstring.

Every ``components/<name>/README.md`` holds the table between ``<!-- io-table:start -->`` and
``<!-- io-table:end -->``. ``python -m tools.component_readmes`` (from the repository root) rewrites those
tables; ``tests/test_component_readmes.py`` fails when a README differs from what the component says.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import sys
from typing import Any, Dict, List, Tuple

START = "<!-- io-table:start -->"
END = "<!-- io-table:end -->"
HEADER = "| name | direction | type | default | description |\n|---|---|---|---|---|"
COMPONENTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "components")


def component_modules() -> List[str]:
    """Names of the component folders that have a ``component.py``."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules([COMPONENTS_DIR])
        if info.ispkg and os.path.exists(os.path.join(COMPONENTS_DIR, info.name, "component.py"))
    )


def load_component(folder: str) -> Any:
    """The KFP component object defined in ``components/<folder>/component.py``."""
    module = importlib.import_module(f"kfpkit.components.{folder}.component")
    found = [v for v in vars(module).values() if hasattr(v, "component_spec") and hasattr(v, "python_func")]
    found = [v for v in found if v.python_func.__module__ == module.__name__]
    if len(found) != 1:
        raise ValueError(f"components/{folder}/component.py must define exactly one component, found {len(found)}")
    return found[0]


def docstring_args(func: Any) -> Dict[str, str]:
    """``{parameter: description}`` from a Google-style docstring (Args and Returns sections)."""
    import docstring_parser

    parsed = docstring_parser.parse(inspect.getdoc(func) or "")
    out = {p.arg_name: " ".join((p.description or "").split()) for p in parsed.params}
    named = _named_returns(inspect.getdoc(func) or "")
    out.update(named)
    if not named and parsed.returns and parsed.returns.description:
        out["Output"] = " ".join(parsed.returns.description.split())
    return out


def _named_returns(doc: str) -> Dict[str, str]:
    """``name: description`` entries of the Returns section (NamedTuple fields of a component)."""
    match = re.search(r"^Returns:\n((?:[ \t]+.*\n?|\n)+)", doc, re.MULTILINE)
    if not match:
        return {}
    out: Dict[str, str] = {}
    current = None
    for line in match.group(1).splitlines():
        entry = re.match(r"^ {4}(\w+):\s*(.*)$", line)
        if entry:
            current = entry.group(1)
            out[current] = entry.group(2).strip()
        elif current and line.strip():
            out[current] = f"{out[current]} {line.strip()}"
    return out


def _type_name(annotation: Any) -> str:
    is_generic = getattr(annotation, "__args__", None) is not None
    text = str(annotation) if is_generic else (getattr(annotation, "__name__", None) or str(annotation))
    text = text.replace("typing.", "").replace("kfp.dsl.types.artifact_types.", "")
    return re.sub(r"<class '([^']+)'>", r"\1", text).replace("kfp.dsl.", "")


def signature_rows(component: Any) -> List[Tuple[str, str, str, str]]:
    """``(name, direction, type, default)`` for every parameter and NamedTuple output, in order."""
    from kfp.dsl import types as kfp_types  # noqa: F401  (kfp present whenever components are imported)

    func = component.python_func
    sig = inspect.signature(func)
    rows = []
    for name, param in sig.parameters.items():
        ann = param.annotation
        origin = getattr(ann, "__origin__", None)
        metadata = getattr(ann, "__metadata__", ())
        direction = "input"
        type_name = _type_name(ann)
        if metadata:  # Input[X] / Output[X] are Annotated[X, InputAnnotation|OutputAnnotation]
            marker = metadata[0]
            direction = "output" if "Output" in getattr(marker, "__name__", str(marker)) else "input"
            type_name = f"{'Output' if direction == 'output' else 'Input'}[{_type_name(ann.__origin__)}]"
        elif origin is not None and "Optional" in str(ann) and hasattr(ann, "__args__"):
            inner = next(a for a in ann.__args__ if a is not type(None))
            inner_meta = getattr(inner, "__metadata__", ())
            if inner_meta:
                type_name = f"Optional[Input[{_type_name(inner.__origin__)}]]"
        default = "required" if param.default is inspect.Parameter.empty else repr(param.default)
        if direction == "output":
            default = ""
        rows.append((name, direction, type_name, default))
    ret = sig.return_annotation
    fields = getattr(ret, "__annotations__", None)
    if ret is not inspect.Signature.empty and fields:
        for name, typ in fields.items():
            rows.append((name, "output", _type_name(typ), ""))
    elif ret not in (inspect.Signature.empty, None):
        rows.append(("Output", "output", _type_name(ret), ""))
    return rows


def render_table(component: Any) -> str:
    descriptions = docstring_args(component.python_func)
    lines = [HEADER]
    for name, direction, type_name, default in signature_rows(component):
        desc = descriptions.get(name, "").replace("|", "\\|")
        default_cell = f"`{default}`" if default and default != "required" else default
        lines.append(f"| `{name}` | {direction} | `{type_name}` | {default_cell} | {desc} |")
    return "\n".join(lines)


def readme_path(folder: str) -> str:
    return os.path.join(COMPONENTS_DIR, folder, "README.md")


def replace_table(readme_text: str, table: str) -> str:
    block = f"{START}\n{table}\n{END}"
    if START in readme_text and END in readme_text:
        before = readme_text.split(START, maxsplit=1)[0]
        after = readme_text.split(END, 1)[1]
        return before + block + after
    return readme_text.rstrip() + "\n\n## Inputs and outputs\n\n" + block + "\n"


def current_table(readme_text: str) -> str:
    if START not in readme_text or END not in readme_text:
        return ""
    return readme_text.split(START, 1)[1].split(END, 1)[0].strip()


def main(argv: Any = None) -> int:
    changed = 0
    for folder in component_modules():
        component = load_component(folder)
        path = readme_path(folder)
        text = open(path, encoding="utf-8").read() if os.path.exists(path) else f"# {folder}\n"
        new = replace_table(text, render_table(component))
        if new != text:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(new)
            changed += 1
            print(f"updated {path}")
    print(f"{changed} README(s) updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

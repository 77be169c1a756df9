"""Filling a checked template with placeholder values: a plain join for text and
placeholders only (a bulk renders thousands), the sandboxed Jinja template for the rest.
A placeholder without a value is recorded in ``sink``, never printed blank."""

from __future__ import annotations

from jinja2 import Undefined
from jinja2.exceptions import TemplateError as JinjaError

from core.mail.template_check import Compiled, TemplateError


class _Missing(Undefined):
    """The value of a placeholder the context cannot fill: falsy in ``{% if %}``, replaced
    by ``default(...)``, and recorded (never printed blank) when it reaches the output."""

    __slots__ = ("_placeholder", "_sink")

    def __init__(self, placeholder: str, sink: list[str]) -> None:
        super().__init__(hint=f"{placeholder} has no value", name=placeholder)
        self._placeholder = placeholder
        self._sink = sink

    def __str__(self) -> str:
        self._sink.append(self._placeholder)
        return ""


def fill(compiled: Compiled, values: dict[str, str | None], sink: list[str]) -> str:
    assert compiled.template is not None
    if compiled.segments is not None:
        out: list[str] = []
        for segment in compiled.segments:
            if isinstance(segment, str):
                out.append(segment)
                continue
            name = compiled.refs[segment]
            value = values.get(name)
            if value:
                out.append(value)
            else:
                sink.append(name)  # what printing _Missing(name, sink) does
        return "".join(out)
    variables: dict[str, object] = {}
    for index, name in enumerate(compiled.refs):
        value = values.get(name)
        variables[f"p{index}"] = value if value else _Missing(name, sink)
    try:
        return compiled.template.render(variables)
    except JinjaError as exc:  # defensive: validated templates have nothing that can fail
        raise TemplateError(str(exc) or "template error", code="UNSUPPORTED") from exc

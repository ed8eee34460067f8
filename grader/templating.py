"""Jinja2 rendering: the toolkit's own templates and a unit's ``.j2`` files.

Only files ending in ``.j2`` ever go through Jinja, so code containing ``{{`` is safe.
Undefined names are errors (``StrictUndefined``): a typo in a template must not render as "".
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from .errors import LmcourseError


def _templates_dir() -> Path:
    # Installed, templates live in the lmcourse.templates package; in the repo, beside grader/.
    from lmcourse import templates

    return Path(templates.__file__).resolve().parent


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pyrepr"] = repr  # a Python literal, for templates that write code
    return env


def render_template(name: str, **context: Any) -> str:
    """Render one of the toolkit's templates, e.g. ``handout/README.md.j2``."""
    try:
        return environment().get_template(name).render(**context)
    except jinja2.TemplateNotFound:
        raise LmcourseError(f"template '{name}' not found in {_templates_dir()}.") from None
    except jinja2.TemplateError as exc:
        raise LmcourseError(f"{name}:{getattr(exc, 'lineno', '?')}: {exc}.") from None


def render_text(text: str, origin: Path | str, **context: Any) -> str:
    """Render a unit's ``.j2`` file; errors name the file and line."""
    try:
        return environment().from_string(text).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise LmcourseError(f"{origin}:{exc.lineno}: template syntax error: {exc.message}.") from None
    except jinja2.TemplateError as exc:
        line = _line_of(exc)
        raise LmcourseError(f"{origin}{':' + str(line) if line else ''}: {exc}.") from None


def _line_of(exc: Exception) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line

"""The Jinja environment for the dataset card (Markdown) and the version report (HTML).

Templates live in `mossforge/release/templates/` (shipped as package data). HTML templates are
autoescaped; every value goes through `html.escape` (what the report used before it had templates,
so a published page is byte-identical: `'` becomes `&#x27;`, not markupsafe's `&#39;`). Markdown
templates are not escaped (the card is Markdown, and the Hub renders it as such).
"""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_eval_context, select_autoescape
from markupsafe import Markup


@pass_eval_context
def _finalize(eval_ctx, value: Any) -> Any:
    if eval_ctx.autoescape and not isinstance(value, Markup):
        return Markup(html.escape(str(value)))
    return value


def md_table(header: list, rows: list[list]) -> str:
    """A Markdown table (no trailing newline)."""
    lines = ["| " + " | ".join(str(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pairs(mapping: dict) -> str:
    """{"a": 1, "b": 2} as "a: 1, b: 2"."""
    return ", ".join(f"{k}: {v}" for k, v in mapping.items())


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mossforge.release", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False,
                                     default=False),
        undefined=StrictUndefined,  # a misspelt key is an error, not an empty string in a card
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    env.globals["table"] = md_table
    env.filters.update(pairs=_pairs, dict_values=lambda d: list(d.values()),
                       pick=lambda d, *keys: [d[k] for k in keys])
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)

"""Named prompt families and the sandboxed Jinja rendering of task and rubric templates.

A family decides how an instruction, the few-shot examples and the query are
laid out; a task supplies the instruction and how a document becomes input
text. The same task can so be run under several families and compared.

Task files and rubrics are shared like data, so their templates are untrusted:
they render in Jinja's immutable sandbox, which refuses Python internals
(``__class__``, ``__globals__``…) and calls that change objects, with none of
the helper globals (``cycler``, ``joiner``, ``lipsum``) that template-injection
payloads start from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError


class PromptError(ValueError):
    """A template could not be rendered for a document."""


@dataclass(frozen=True)
class PromptFamily:
    """How a prompt is laid out; ``{instruction}``, ``{input}`` and ``{answer}`` are filled in."""

    name: str
    description: str
    header: str
    shot: str
    separator: str
    query: str
    stop: tuple[str, ...]

    def render(self, instruction: str, shots: Sequence[tuple[str, str]], query_input: str) -> str:
        return _prefix(self, instruction, tuple(shots)) + self.query.format(input=query_input)


@lru_cache(maxsize=64)
def _prefix(family: PromptFamily, instruction: str, shots: tuple[tuple[str, str], ...]) -> str:
    """Header and few-shot examples: the same for every document of a run, so laid out once."""
    parts = [family.shot.format(input=text, answer=answer) for text, answer in shots]
    return family.header.format(instruction=instruction) + "".join(part + family.separator for part in parts)


PROMPT_FAMILIES: dict[str, PromptFamily] = {
    family.name: family
    for family in (
        PromptFamily(
            name="plain",
            description="a plain Japanese instruction, then 入力/答え pairs",
            header="{instruction}\n\n",
            shot="{input}\n答え：{answer}",
            separator="\n\n",
            query="{input}\n答え：",
            stop=("\n",),
        ),
        PromptFamily(
            name="alpaca",
            description="the Alpaca-style Japanese prompt used by llm-jp-eval (### 指示 / 入力 / 応答)",
            header=(
                "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。"
                "要求を適切に満たす応答を書きなさい。\n\n### 指示:\n{instruction}\n\n"
            ),
            shot="### 入力:\n{input}\n\n### 応答:\n{answer}",
            separator="\n\n",
            query="### 入力:\n{input}\n\n### 応答:\n",
            stop=("\n\n", "###"),
        ),
    )
}


def get_family(name: str) -> PromptFamily:
    try:
        return PROMPT_FAMILIES[name]
    except KeyError:
        raise PromptError(
            f"unknown prompt family {name!r}; known families: {', '.join(PROMPT_FAMILIES)}"
        ) from None


MAX_REPEAT = 1_000_000  # items a template's ``*`` may build ("a" * 10**9 would take gigabytes)
MAX_EXPONENT = 1_000  # a template's ``**`` (9 ** 99999999 would compute for minutes)


class _PromptSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``*`` and ``**`` held to sizes a prompt can use."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is above {MAX_EXPONENT}")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and len(seq) * count > MAX_REPEAT:
                    raise SecurityError(f"repeating {len(seq)} items {count} times is above {MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)


def _sandbox() -> ImmutableSandboxedEnvironment:
    env = _PromptSandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    for name in ("cycler", "joiner", "lipsum"):  # not needed in prompts; common first steps of injection payloads
        env.globals.pop(name, None)
    return env


_ENV = _sandbox()


@lru_cache(maxsize=512)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


_FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_JINJA_SYNTAX = ("{{", "{%", "{#")

Renderer = Callable[[Mapping[str, Any]], str]


def render(source: str, doc: Mapping[str, Any]) -> str:
    """Render a template against a document in the sandbox; any failure is a :class:`PromptError`.

    The one entry point for task and rubric templates (callers add which file, field
    and document the template belongs to).
    """
    return _renderer(source)(doc)


@lru_cache(maxsize=1024)
def _renderer(source: str) -> Renderer:
    """A function rendering ``source``: plain Python for text with ``{{ field }}`` slots, else Jinja.

    Nearly every task template is text and fields only; joining strings gives what
    Jinja gives for those at a fraction of the cost. A document lacking a field goes to
    Jinja too, for its error message.
    """
    if "{" not in source:  # plain text, e.g. most instructions
        return lambda doc: source
    pieces = _FIELD.split(source)
    texts, fields = pieces[0::2], pieces[1::2]
    if "\r" in source or any(marker in text for text in texts for marker in _JINJA_SYNTAX):
        return lambda doc: _render_jinja(source, doc)  # Jinja syntax, or line endings Jinja normalises
    if texts == ["", ""]:  # the whole template is one field, as answer choices and targets usually are
        (field,) = fields

        def lone_field(doc: Mapping[str, Any]) -> str:
            try:
                return str(doc[field])
            except KeyError:
                return _render_jinja(source, doc)

        return lone_field
    # texts with "{}" slots between them: str.format fills the fields' values in one call
    layout = "{}".join(text.replace("{", "{{").replace("}", "}}") for text in texts)

    def substitute(doc: Mapping[str, Any]) -> str:
        try:
            values = [doc[name] for name in fields]
        except KeyError:
            return _render_jinja(source, doc)
        return layout.format(*values)

    return substitute


def _render_jinja(source: str, doc: Mapping[str, Any]) -> str:
    try:
        return _compile(source).render(**doc)
    except SecurityError as exc:
        raise PromptError(
            f"template {_short(source)} was refused by the sandbox ({exc}); "
            "templates may read the document's fields, not Python internals"
        ) from None
    except jinja2.UndefinedError as exc:
        raise PromptError(
            f"template {_short(source)} uses a name the document lacks ({exc.message}); "
            f"document fields: {', '.join(k for k in doc if not k.startswith('_'))}"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise PromptError(f"template {_short(source)} is not valid Jinja (line {exc.lineno}: {exc.message})") from None
    except Exception as exc:
        raise PromptError(f"template {_short(source)} failed: {type(exc).__name__}: {exc}") from None


def _short(source: str, limit: int = 120) -> str:
    return repr(source if len(source) <= limit else source[:limit] + "…")

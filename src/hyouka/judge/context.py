"""Recognise a judge server's "the prompt does not fit my context" refusal and say what to change.

Servers refuse an over-long request with an HTTP 400 whose text carries the numbers:

- vLLM (0.10 and later): ``max_tokens=2048 cannot be greater than max_model_len=1024. Please
  request fewer output tokens.`` (the completion budget alone is too long) and ``This model's
  maximum context length is 1024 tokens. However, your prompt contains at least 1025 input tokens,
  which exceeds this limit even without any output tokens.`` (the prompt alone, counted only to one
  token past the context);
- vLLM before that, and OpenAI: ``This model's maximum context length is 2048 tokens. However,
  you requested 2148 tokens (100 in the messages, 2048 in the completion).`` or ``…your messages
  resulted in 9000 tokens.``

:func:`context_overflow` reads those numbers; :func:`explain` turns them into a message naming
the prompt's length, the judge's context and the ``--judge-max-tokens`` option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["OPTION", "ContextOverflow", "JudgeContextError", "context_overflow", "explain"]

OPTION = "--judge-max-tokens (judge_max_tokens=)"

_BUDGET = re.compile(r"(max_tokens|max_completion_tokens)=(\d+) cannot be greater than max_model_len=(\d+)")
_CONTEXT = re.compile(r"maximum context length is (\d+) tokens", re.IGNORECASE)
_PROMPT = re.compile(r"your prompt contains (at least )?(\d+) input tokens", re.IGNORECASE)
_REQUESTED = re.compile(r"you requested (\d+) tokens \((\d+) in the messages, (\d+) in the completion\)",
                        re.IGNORECASE)
_RESULTED = re.compile(r"your messages resulted in (\d+) tokens", re.IGNORECASE)


class JudgeContextError(ValueError):
    """Judge prompts cannot fit the judge's context as configured: no judgment could succeed."""


@dataclass(frozen=True)
class ContextOverflow:
    """What a refusal says: the judge's context, the prompt's tokens and the completion budget (when told)."""

    context: int
    prompt_tokens: int | None = None
    max_tokens: int | None = None
    at_least: bool = False  # vLLM counts a too-long prompt only to one token past the context
    @property
    def budget_too_large(self) -> bool:
        """The completion budget alone fills the context: every judgment is refused, whatever its prompt."""
        return self.max_tokens is not None and self.max_tokens >= self.context


def context_overflow(error: str | None) -> ContextOverflow | None:
    """The numbers of a context-length refusal in ``error``, or ``None`` when it is another error."""
    if not error:
        return None
    m = _BUDGET.search(error)
    if m:
        return ContextOverflow(context=int(m.group(3)), max_tokens=int(m.group(2)))
    context = _CONTEXT.search(error)
    if context is None:
        return None
    limit = int(context.group(1))
    if m := _PROMPT.search(error):
        return ContextOverflow(limit, prompt_tokens=int(m.group(2)), at_least=m.group(1) is not None)
    if m := _REQUESTED.search(error):
        return ContextOverflow(limit, prompt_tokens=int(m.group(2)), max_tokens=int(m.group(3)))
    if m := _RESULTED.search(error):
        return ContextOverflow(limit, prompt_tokens=int(m.group(1)))
    return ContextOverflow(limit)


def explain(overflow: ContextOverflow, judge: str, max_tokens: int, prompt_chars: int, server_error: str) -> str:
    """A message naming the prompt's length, the judge's context, the option to change, and the server's words."""
    prompt = f"{prompt_chars} characters"
    if overflow.prompt_tokens is not None:
        prompt = f"{'at least ' if overflow.at_least else ''}{overflow.prompt_tokens} tokens ({prompt})"
    head = (f"the judge prompt does not fit the judge's context: {judge} has a context of {overflow.context} "
            f"tokens; the prompt is {prompt} and {OPTION} is {max_tokens}")
    if overflow.budget_too_large:
        advice = (f"lower {OPTION} well below {overflow.context} (the prompt needs room too), "
                  "or use a judge with a longer context")
    elif overflow.prompt_tokens is not None and overflow.prompt_tokens >= overflow.context:
        advice = "the prompt alone is longer than the context: use a judge with a longer context"
    elif overflow.prompt_tokens is not None:
        advice = f"lower {OPTION} to at most {overflow.context - overflow.prompt_tokens} for this prompt"
    else:
        advice = f"lower {OPTION}, or use a judge with a longer context"
    return f"{head}; {advice} (server: {server_error})"

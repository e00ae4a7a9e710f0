"""Model answers as markdown for rater pages: CommonMark with raw HTML shown as text, no links, no images."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from markupsafe import Markup


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    # html off: a <script> in an answer is escaped text; links and images off: a blind page fetches
    # nothing and sends the rater nowhere (their text stays as written)
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).disable(["link", "image", "autolink"])


def render_markdown(text: str | None) -> Markup:
    """``text`` rendered as HTML that holds no markup of the text's own (every tag is markdown's)."""
    return Markup(_parser().render(text or ""))

"""A Japanese font for charts and the HTML report on machines that have none installed.

The ``report`` extra installs ``matplotlib-fontja``, which ships IPAexGothic (IPA Font License).
Its file is found without importing the package (importing it rewrites matplotlib's global
font settings). Charts add it to matplotlib's font list as the last fallback after installed CJK
fonts; the HTML report embeds it, cut down to the characters the page uses, as the last entry of
its font stack, so the page stays one self-contained file that any browser renders. The dashboard
uses the same stacks (``FONT_STACK``, ``MONO_STACK``) and serves the same file whole.
"""

from __future__ import annotations

import base64
import importlib.util
import io
from functools import lru_cache
from pathlib import Path

FONT_FAMILY = "IPAexGothic"
PAGE_FAMILY = "hyouka-ja"  # the embedded subset's name in the page (not to be taken for an installed font)
# the report's and the dashboard's CSS font stacks: installed Japanese fonts first, the shipped
# IPAexGothic (as PAGE_FAMILY: embedded in the report, served by the dashboard) last
FONT_STACK = (f'system-ui, -apple-system, "Segoe UI", "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", '
              f'"Yu Gothic", Meiryo, "IPAexGothic", "{PAGE_FAMILY}", sans-serif')
MONO_STACK = f'ui-monospace, "Noto Sans Mono CJK JP", "DejaVu Sans Mono", "{PAGE_FAMILY}", monospace'


@lru_cache
def japanese_font_path() -> Path | None:
    """IPAexGothic's file from matplotlib-fontja, or None when it is not installed."""
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "fonts" / "ipaexg.ttf"
    return path if path.is_file() else None


def _needs_font(char: str) -> bool:
    return ord(char) >= 0x2E80  # CJK radicals, kana, kanji, full-width forms: beyond what Latin fonts carry


def font_face_css(text: str) -> str:
    """A ``@font-face`` rule embedding the Japanese font's glyphs for the CJK characters in ``text``
    (empty when there are none, or the font is not installed)."""
    path = japanese_font_path()
    chars = "".join(sorted({c for c in text if _needs_font(c)}))
    if path is None or not chars:
        return ""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.name_IDs = ["*"]  # keep the font's names and its license notice
    options.notdef_outline = True
    font = TTFont(path, lazy=True)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=chars)
    subsetter.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f"@font-face {{ font-family: '{PAGE_FAMILY}'; font-style: normal; font-weight: 400; "
            f"src: url(data:font/ttf;base64,{data}) format('truetype'); }}")

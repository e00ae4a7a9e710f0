"""llm-jp-eval v1.3.0's metric definitions (also the Nejumi leaderboard's), under the ``llmjp:`` prefix.

They compare the model's raw output with the gold answer text, read as llm-jp-eval reads them:

- the answer is the output's text before the first blank line, NFKC-normalised, then stripped;
  the gold is the first gold answer, NFKC-normalised (not stripped);
- ``exact_match``: the two strings are equal (no other normalisation);
- ``char_f1``: fuzzywuzzy 0.18's ``fuzz.token_sort_ratio(answer, gold) / 100`` with
  python-Levenshtein, as llm-jp-eval and Nejumi call it: an integer percentage. Its default
  ``force_ascii`` drops U+0080-U+00FF; every other character that is not a letter, a digit or
  ``_`` (Japanese punctuation included) becomes a space; the text is lower-cased and its
  space-separated tokens sorted before an Indel (Levenshtein) ratio; two texts that are both empty
  after that score 1, one empty text 0. fuzzywuzzy is GPL and unmaintained: the same steps run
  here on thefuzz (rapidfuzz), whose own pre-processing differs (it also blanks ``_``);
- ``set_f1``: F1 of the sets of lines (gold lines counted as a list);
- ``pearson`` / ``spearman``: over the whole run, ``scipy.stats`` on the gold numbers and
  ``parse_float`` of the answers (every character but digits and dots dropped; ``-2.0`` when
  what is left is no number); NaN becomes 0.0;
- ``bleu_ja``: the Nejumi leaderboard's ``blue_ja``: answer and gold stripped, an empty gold
  refused, an empty answer 0.0, else ``sacrebleu.BLEU(trg_lang="ja", effective_order=True)``
  corpus score of the one sentence / 100 (0-1); ``trg_lang="ja"`` selects sacreBLEU's
  ``ja-mecab`` tokenizer (MeCab with IPADIC).

thefuzz and sacreBLEU's Japanese tokenizer come with ``pip install 'hyouka[llmjp]'``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

PREFIX = "llmjp:"
PER_SAMPLE = ("exact_match", "char_f1", "set_f1", "bleu_ja")
CORPUS = ("pearson", "spearman")
PARSE_FLOAT_FALLBACK = -2.0
_NOT_NUMBER = re.compile(r"[^0-9.]")
_NOT_WORD = re.compile(r"(?ui)\W")  # fuzzywuzzy's StringProcessor: letters, digits and "_" stay
_LATIN1 = dict.fromkeys(range(0x80, 0x100))  # what fuzzywuzzy's force_ascii drops


def is_llmjp(metric: str) -> bool:
    return metric.startswith(PREFIX)


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"the llmjp: metrics need {module}: pip install 'hyouka[llmjp]'") from exc


def first_gold(reference: Any) -> str:
    """The first gold answer, as text (llm-jp-eval keeps one gold per sample)."""
    if isinstance(reference, list | tuple):
        reference = reference[0] if reference else ""
    return "" if reference is None else str(reference)


def read_answer(output: str | None) -> str:
    """The answer as llm-jp-eval reads it: before the first blank line, NFKC, stripped."""
    return unicodedata.normalize("NFKC", (output or "").split("\n\n")[0]).strip()


def read_gold(reference: Any) -> str:
    """The gold as llm-jp-eval reads it: the first gold answer, NFKC."""
    return unicodedata.normalize("NFKC", first_gold(reference))


def fuzz_process(text: str) -> str:
    """fuzzywuzzy 0.18's ``full_process(text, force_ascii=True)``."""
    return _NOT_WORD.sub(" ", text.translate(_LATIN1)).lower().strip()


def parse_float(text: str) -> float:
    """llm-jp-eval's ``parse_float``: digits and dots only, else -2.0."""
    try:
        return float(_NOT_NUMBER.sub("", str(text)))
    except ValueError:
        return PARSE_FLOAT_FALLBACK


def exact_match(output: str | None, reference: Any) -> float:
    return float(read_answer(output) == read_gold(reference))


def char_f1(output: str | None, reference: Any) -> float:
    fuzz = _need("thefuzz.fuzz")
    answer, gold = fuzz_process(read_answer(output)), fuzz_process(read_gold(reference))
    return fuzz.token_sort_ratio(answer, gold, full_process=False) / 100.0


def set_f1(output: str | None, reference: Any) -> float:
    gold = [line.strip() for line in read_gold(reference).split("\n")]
    predicted = list({line.strip() for line in read_answer(output).split("\n")})
    hits = sum(1 for item in predicted if item in gold)
    precision, recall = hits / len(predicted), hits / len(gold)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def bleu_ja(output: str | None, reference: Any) -> float:
    answer, gold = read_answer(output), read_gold(reference).strip()
    if not gold:
        raise ValueError("llmjp:bleu_ja: the gold answer is empty")
    if not answer:
        return 0.0
    sacrebleu = _need("sacrebleu.metrics")
    return sacrebleu.BLEU(trg_lang="ja", effective_order=True).corpus_score([answer], [[gold]]).score / 100.0


SAMPLE_FUNCS = {"exact_match": exact_match, "char_f1": char_f1, "set_f1": set_f1, "bleu_ja": bleu_ja}


def sample_score(metric: str, output: str | None, reference: Any) -> float:
    return SAMPLE_FUNCS[metric.removeprefix(PREFIX)](output, reference)


def correlation_inputs(outputs: Sequence[str | None], references: Sequence[Any]) -> tuple[list[float], list[float]]:
    """Gold numbers and parsed answers, as llm-jp-eval feeds them to scipy."""
    golds = [float(read_gold(r)) for r in references]
    answers = [parse_float(read_answer(o)) for o in outputs]
    return golds, answers


def correlation(metric: str, golds: Sequence[float], answers: Sequence[float]) -> float:
    """``scipy.stats.pearsonr`` / ``spearmanr`` of gold and answers; NaN (a constant side) is 0.0."""
    stats = _need("scipy.stats")
    name = metric.removeprefix(PREFIX)
    if len(golds) < 2:
        return 0.0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on a constant input; llm-jp-eval's answer is 0.0 then
        value = (stats.pearsonr if name == "pearson" else stats.spearmanr)(golds, answers)[0]
    value = float(value)
    return 0.0 if math.isnan(value) else value

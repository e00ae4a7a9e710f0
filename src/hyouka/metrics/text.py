"""Generation metrics that work on Japanese: ROUGE, BLEU and chrF on morphemes or characters.

Word-based metrics need word boundaries, which Japanese text does not mark; rouge-score's default
tokenizer drops every Japanese character. Here text is split into morphemes by MeCab (fugashi)
with the UniDic-lite dictionary, or, for BLEU, with IPADIC (``dictionary="ipadic"``: the
segmentation of sacreBLEU's ``ja-mecab`` tokenizer, which needs ``pip install 'hyouka[llmjp]'``).
Record ``TOKENIZER_NAME`` (or ``tokenizer_info()``) with any score, since scores depend on the
tokenizer. Text is not normalised before scoring.

BLEU and chrF reproduce sacreBLEU's defaults (BLEU: 4-grams, exponential smoothing, closest
reference length; chrF: character 6-grams, beta 2, whitespace ignored) on a 0-1 scale, i.e.
sacreBLEU's score / 100. They are computed from per-item sufficient statistics so that the
bootstrap can resample corpora by summing rows.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np

__all__ = [
    "BLEU_MAX_ORDER",
    "CHRF_BETA",
    "CHRF_CHAR_ORDER",
    "TOKENIZER_NAME",
    "answer_length_tokens",
    "bleu",
    "bleu_from_stats",
    "bleu_stats",
    "chrf",
    "chrf_from_stats",
    "chrf_stats",
    "is_japanese_char",
    "japanese_char_ratio",
    "lcs_length",
    "rouge_l",
    "rouge_lsum",
    "rouge_n",
    "sentence_bleu",
    "tokenize_ja",
    "tokenizer_info",
]

TOKENIZER_NAME = "fugashi-unidic-lite"
DICTIONARIES = {"unidic-lite": TOKENIZER_NAME, "ipadic": "fugashi-ipadic (sacreBLEU ja-mecab)"}
BLEU_MAX_ORDER = 4
CHRF_CHAR_ORDER = 6
CHRF_BETA = 2

References = str | Sequence[str]

_local = threading.local()


def _tagger(dictionary: str = "unidic-lite") -> Any:
    """The MeCab tagger of ``dictionary`` for this thread, created on first use (taggers are not thread-safe)."""
    taggers = getattr(_local, "taggers", None)
    if taggers is None:
        taggers = _local.taggers = {}
    tagger = taggers.get(dictionary)
    if tagger is None:
        import fugashi

        if dictionary == "unidic-lite":
            import os

            import unidic_lite

            dicdir = unidic_lite.DICDIR
            tagger = fugashi.Tagger(f'-d "{dicdir}" -r "{os.path.join(dicdir, "mecabrc")}"')
        elif dictionary == "ipadic":
            try:
                import ipadic
            except ImportError as exc:
                raise ImportError("the ipadic tokenizer needs the ipadic package: pip install 'hyouka[llmjp]'") from exc
            tagger = fugashi.GenericTagger(ipadic.MECAB_ARGS)  # IPADIC's features are not UniDic's
        else:
            raise ValueError(f"unknown dictionary {dictionary!r}; known: {', '.join(DICTIONARIES)}")
        taggers[dictionary] = tagger
    return tagger


def tokenizer_info() -> dict[str, str]:
    """Name and package versions of the tokenizer, for run metadata."""
    info = {"name": TOKENIZER_NAME}
    for package in ("fugashi", "unidic-lite"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "unknown"
    return info


def tokenize_ja(text: str, dictionary: str = "unidic-lite") -> list[str]:
    """Split ``text`` into morpheme surface forms (``dictionary``: unidic-lite or ipadic); whitespace is dropped.

    Raises ``ValueError`` if the tokenizer yields nothing for text that is not blank.
    """
    if not text or text.isspace():
        return []
    tagger = _tagger(dictionary)
    tokens = [part for word in tagger(text.replace("\x00", " ")) for part in word.surface.split()]
    if not tokens and text.replace("\x00", "").strip():
        raise ValueError(f"{DICTIONARIES[dictionary]} produced no tokens for non-empty text {text[:50]!r}")
    return tokens


def answer_length_tokens(text: str | None) -> int:
    """Length of ``text`` in morphemes (0 for ``None`` or blank text)."""
    return 0 if text is None else len(tokenize_ja(text))


def _ref_list(refs: References) -> list[str]:
    ref_list = [refs] if isinstance(refs, str) else list(refs)
    if not ref_list:
        raise ValueError("at least one reference is required")
    return ref_list


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _f_measure(overlap: int, n_pred: int, n_ref: int) -> float:
    if overlap == 0 or n_pred == 0 or n_ref == 0:
        return 0.0
    precision = overlap / n_pred
    recall = overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def rouge_n(prediction: str, references: References, n: int = 1) -> float:
    """ROUGE-N F-measure on morpheme n-grams; the maximum over references.

    As rouge-score does, 0.0 when either side has no n-gram (e.g. a one-morpheme text and n=2).
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    pred_ngrams = _ngrams(tokenize_ja(prediction), n)
    n_pred = sum(pred_ngrams.values())
    best = 0.0
    for ref in _ref_list(references):
        ref_ngrams = _ngrams(tokenize_ja(ref), n)
        overlap = sum((pred_ngrams & ref_ngrams).values())
        best = max(best, _f_measure(overlap, n_pred, sum(ref_ngrams.values())))
    return best


def lcs_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (bit-parallel, Hyyrö 2004)."""
    if not a or not b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    masks: dict[Any, int] = {}
    for i, item in enumerate(a):
        masks[item] = masks.get(item, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for item in b:
        u = v & masks.get(item, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(prediction: str, references: References) -> float:
    """ROUGE-L F-measure (longest common subsequence of morphemes); the maximum over references."""
    pred_tokens = tokenize_ja(prediction)
    best = 0.0
    for ref in _ref_list(references):
        ref_tokens = tokenize_ja(ref)
        best = max(best, _f_measure(lcs_length(pred_tokens, ref_tokens), len(pred_tokens), len(ref_tokens)))
    return best


def _lcs_indices(ref: Sequence[str], cand: Sequence[str]) -> list[int]:
    """Positions in ``ref`` of one longest common subsequence (the one rouge-score backtracks to)."""
    table = [[0] * (len(cand) + 1) for _ in range(len(ref) + 1)]
    for i, r in enumerate(ref, 1):
        for j, c in enumerate(cand, 1):
            table[i][j] = table[i - 1][j - 1] + 1 if r == c else max(table[i - 1][j], table[i][j - 1])
    i, j, out = len(ref), len(cand), []
    while i > 0 and j > 0:
        if ref[i - 1] == cand[j - 1]:
            out.append(i - 1)
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return out[::-1]


def _sentences(text: str) -> list[list[str]]:
    return [tokenize_ja(line) for line in text.split("\n") if line]


def rouge_lsum(prediction: str, references: References) -> float:
    """ROUGE-Lsum F-measure (summary-level union LCS over newline-separated sentences, as rouge-score
    and MLflow's ``rougeLsum``) on morphemes; the maximum over references."""
    pred = _sentences(prediction)
    best = 0.0
    for ref_text in _ref_list(references):
        ref = _sentences(ref_text)
        m, n = sum(map(len, ref)), sum(map(len, pred))
        if not m or not n:
            continue
        left_ref, left_pred = Counter(t for s in ref for t in s), Counter(t for s in pred for t in s)
        hits = 0
        for sentence in ref:
            union = sorted(set().union(*(_lcs_indices(sentence, p) for p in pred)))
            for token in (sentence[i] for i in union):
                if left_pred[token] > 0 and left_ref[token] > 0:
                    hits += 1
                    left_pred[token] -= 1
                    left_ref[token] -= 1
        best = max(best, _f_measure(hits, n, m))
    return best


def _closest_ref_len(hyp_len: int, ref_lens: Sequence[int]) -> int:
    return min(ref_lens, key=lambda ref_len: (abs(hyp_len - ref_len), ref_len))


def bleu_stats(prediction: str, references: References, dictionary: str = "unidic-lite") -> np.ndarray:
    """BLEU sufficient statistics of one item: ``[hyp_len, ref_len, correct_1..4, total_1..4]``."""
    hyp = tokenize_ja(prediction, dictionary)
    ref_max: Counter[tuple[str, ...]] = Counter()
    ref_lens = []
    for ref in _ref_list(references):
        tokens = tokenize_ja(ref, dictionary)
        ref_lens.append(len(tokens))
        for n in range(1, BLEU_MAX_ORDER + 1):
            for gram, count in _ngrams(tokens, n).items():
                ref_max[gram] = max(ref_max[gram], count)
    correct = [0] * BLEU_MAX_ORDER
    total = [0] * BLEU_MAX_ORDER
    for n in range(1, BLEU_MAX_ORDER + 1):
        for gram, count in _ngrams(hyp, n).items():
            total[n - 1] += count
            correct[n - 1] += min(count, ref_max.get(gram, 0))
    return np.array([len(hyp), _closest_ref_len(len(hyp), ref_lens), *correct, *total], dtype=np.int64)


def bleu_from_stats(stats: np.ndarray, effective_order: bool = False) -> np.ndarray:
    """Corpus BLEU (0-1) from summed statistics, shape ``(..., 2 + 2 * 4)`` -> ``(...)``.

    ``effective_order`` (sacreBLEU's, as its sentence BLEU uses): the geometric mean runs over
    the n-gram orders the hypothesis has (a 2-morpheme answer: orders 1 and 2), so a short
    exact copy scores 1 instead of 0.
    """
    if effective_order:
        return _bleu_effective_order(np.asarray(stats, dtype=float))
    s = np.asarray(stats, dtype=float)
    sys_len, ref_len = s[..., 0], s[..., 1]
    correct = s[..., 2 : 2 + BLEU_MAX_ORDER]
    total = s[..., 2 + BLEU_MAX_ORDER : 2 + 2 * BLEU_MAX_ORDER]
    with np.errstate(divide="ignore", invalid="ignore"):
        brevity = np.where(sys_len < ref_len, np.exp(1.0 - ref_len / np.maximum(sys_len, 1.0)), 1.0)
        brevity = np.where(sys_len > 0, brevity, 0.0)
        # sacreBLEU's 'exp' smoothing: the k-th order with no match gets precision 1 / (2^k * total).
        smooth = 2.0 ** np.cumsum(correct == 0, axis=-1)
        precision = np.where(correct > 0, correct / total, 1.0 / (smooth * total))
        log_mean = np.log(precision).mean(axis=-1)
    # An order with no n-gram at all (text shorter than 4 morphemes) makes BLEU 0, as does no match.
    defined = (total > 0).all(axis=-1) & (correct.sum(axis=-1) > 0)
    return np.where(defined, brevity * np.exp(np.where(defined, log_mean, 0.0)), 0.0)


def _bleu_effective_order(s: np.ndarray) -> np.ndarray:
    sys_len, ref_len = s[..., 0], s[..., 1]
    correct = s[..., 2 : 2 + BLEU_MAX_ORDER]
    total = s[..., 2 + BLEU_MAX_ORDER : 2 + 2 * BLEU_MAX_ORDER]
    orders = np.cumprod(total > 0, axis=-1).astype(bool)  # orders up to the first with no n-gram
    n_orders = orders.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        brevity = np.where(sys_len < ref_len, np.exp(1.0 - ref_len / np.maximum(sys_len, 1.0)), 1.0)
        smooth = 2.0 ** np.cumsum((correct == 0) & orders, axis=-1)
        precision = np.where(correct > 0, correct / total, 1.0 / (smooth * total))
        logs = np.where(orders, np.log(np.where(orders, precision, 1.0)), 0.0).sum(axis=-1)
        value = brevity * np.exp(logs / np.maximum(n_orders, 1))
    defined = (n_orders > 0) & (correct.sum(axis=-1) > 0)
    return np.where(defined, value, 0.0)


def sentence_bleu(prediction: str | None, references: References, dictionary: str = "unidic-lite") -> float:
    """sacreBLEU's sentence BLEU (effective order, exp smoothing) on morphemes, 0-1."""
    return float(bleu_from_stats(bleu_stats(prediction or "", references, dictionary), effective_order=True))


def _corpus_stats(
    stats_fn: Any, predictions: Sequence[str | None], references: Sequence[References], width: int, **kwargs: Any
) -> np.ndarray:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    rows = [stats_fn("" if p is None else p, r, **kwargs) for p, r in zip(predictions, references, strict=True)]
    return np.array(rows, dtype=np.int64).reshape(len(rows), width)


def bleu(
    predictions: Sequence[str | None], references: Sequence[References], dictionary: str = "unidic-lite"
) -> float:
    """Corpus BLEU (0-1) on morphemes; ``references[i]`` is one reference or several for item i.

    ``None`` predictions count as empty output.
    """
    stats = _corpus_stats(bleu_stats, predictions, references, 2 + 2 * BLEU_MAX_ORDER, dictionary=dictionary)
    return float(bleu_from_stats(stats.sum(axis=0)))


def _char_ngrams(text: str) -> list[Counter[str]]:
    chars = "".join(text.split())
    return [Counter(chars[i : i + n] for i in range(len(chars) - n + 1)) for n in range(1, CHRF_CHAR_ORDER + 1)]


def chrf_stats(prediction: str, references: References) -> np.ndarray:
    """chrF statistics of one item: ``[hyp, ref, match]`` per character order 1-6.

    With several references, those of the best-scoring reference (as sacreBLEU does).
    """
    hyp = _char_ngrams(prediction)
    best: np.ndarray | None = None
    best_score = -1.0
    for ref in _ref_list(references):
        row: list[int] = []
        for hyp_counts, ref_counts in zip(hyp, _char_ngrams(ref), strict=True):
            n_hyp = sum(hyp_counts.values()) if ref_counts else 0
            match = sum((hyp_counts & ref_counts).values())
            row += [n_hyp, sum(ref_counts.values()), match]
        stats = np.array(row, dtype=np.int64)
        score = float(chrf_from_stats(stats))
        if score > best_score:
            best, best_score = stats, score
    assert best is not None
    return best


def chrf_from_stats(stats: np.ndarray) -> np.ndarray:
    """chrF (0-1) from summed statistics, shape ``(..., 3 * 6)`` -> ``(...)``."""
    s = np.asarray(stats, dtype=float).reshape(*np.shape(stats)[:-1], CHRF_CHAR_ORDER, 3)
    n_hyp, n_ref, n_match = s[..., 0], s[..., 1], s[..., 2]
    effective = (n_hyp > 0) & (n_ref > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(effective, n_match / n_hyp, 0.0).sum(axis=-1)
        recall = np.where(effective, n_match / n_ref, 0.0).sum(axis=-1)
        n_effective = effective.sum(axis=-1)
        precision = np.where(n_effective > 0, precision / n_effective, 0.0)
        recall = np.where(n_effective > 0, recall / n_effective, 0.0)
        factor = CHRF_BETA**2
        score = (1 + factor) * precision * recall / (factor * precision + recall)
    return np.where(precision + recall > 0, score, 0.0)


def chrf(predictions: Sequence[str | None], references: Sequence[References]) -> float:
    """Corpus chrF (0-1) on characters, whitespace ignored; ``None`` predictions count as empty."""
    stats = _corpus_stats(chrf_stats, predictions, references, 3 * CHRF_CHAR_ORDER)
    return float(chrf_from_stats(stats.sum(axis=0)))


_JAPANESE_RANGES = (
    (0x3005, 0x3007),  # 々 〆 〇
    (0x303B, 0x303B),  # 〻
    (0x3041, 0x309F),  # Hiragana
    (0x30A0, 0x30FF),  # Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x3134F),  # CJK extensions B-G and compatibility supplement
)


def is_japanese_char(char: str) -> bool:
    """Whether ``char`` is Hiragana, Katakana or a Kanji (punctuation such as ・ excluded)."""
    code = ord(char)
    if unicodedata.category(char).startswith("P"):
        return False
    return any(low <= code <= high for low, high in _JAPANESE_RANGES)


def japanese_char_ratio(text: str | None) -> float:
    """Share of Hiragana/Katakana/Kanji among the characters of ``text``.

    Whitespace, controls and punctuation (ASCII or Japanese) are left out of the count, so a
    fully Japanese sentence scores 1.0 with its 。 and 、. Blank text or ``None`` scores 0.0.
    """
    if not text:
        return 0.0
    counted = japanese = 0
    for char in text:
        category = unicodedata.category(char)
        if category[0] in "PZ" or category in ("Cc", "Cf"):
            continue
        counted += 1
        japanese += is_japanese_char(char)
    return japanese / counted if counted else 0.0

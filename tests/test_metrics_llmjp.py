"""The llmjp: metrics against llm-jp-eval v1.3.0's definitions, computed here with the libraries it calls.

llm-jp-eval's own repository could not be read from this project (no snapshot, not in the code
index, not on PyPI); its definitions as the Nejumi leaderboard (wandb/llm-leaderboard) vendors them
were read instead: ``scripts/evaluator/evaluate_utils/metrics.py`` (parse_float, exact_match,
char_f1, set_f1, blue_ja) and the llm-jp-eval reading of an answer in ``scripts/jaster_evaluation.py``
(``normalize(output.split("\n\n")[0])``, gold ``normalize(sample["output"])``). So: answer =
``unicodedata.normalize("NFKC", output.split("\n\n")[0])`` (stripped), gold = its NFKC text;
exact_match = equality (sklearn accuracy_score over the run); char_f1 =
``fuzzywuzzy.fuzz.token_sort_ratio(pred, true) / 100`` with python-Levenshtein installed; set_f1
over the lines; pearson/spearman = scipy over ``float(gold)`` and ``parse_float(pred)``
(``re.sub(r"[^0-9.]", "", s)``, -2.0 when that is no number; NaN -> 0); bleu_ja =
``BLEU(trg_lang="ja", effective_order=True).corpus_score([pred], [[true]]).score / 100`` on the
stripped texts (empty prediction 0). The expected values below come from fuzzywuzzy, sacrebleu and
scipy directly, never from hyouka's code, on pairs built from JGLUE.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path
from statistics import mean

import pytest
import yaml

import hyouka
from hyouka.metrics.registry import aggregate, sample_score
from hyouka.store.store import Store
from tests.fakes import ScriptedModel

pytest.importorskip("Levenshtein")  # fuzzywuzzy's fast matcher, as llm-jp-eval installs it
fuzz = pytest.importorskip("fuzzywuzzy.fuzz")  # the library llm-jp-eval calls (a test dependency only)
thefuzz = pytest.importorskip("thefuzz.fuzz")  # what hyouka calls
sacrebleu = pytest.importorskip("sacrebleu.metrics")
stats = pytest.importorskip("scipy.stats")

FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})
HALF_WIDTH = str.maketrans({chr(c + 0xFEE0): chr(c) for c in range(0x21, 0x7F)})


def _pred(output: str) -> str:
    return unicodedata.normalize("NFKC", output.split("\n\n")[0]).strip()


def _true(gold: str) -> str:
    return unicodedata.normalize("NFKC", gold)


def _parse_float(text: str) -> float:
    try:
        return float(re.sub(r"[^0-9.]", "", text))
    except ValueError:
        return -2.0


def _variants(gold: str, other: str, context: str) -> list[str]:
    return [
        gold, gold.translate(FULL_WIDTH), gold.translate(HALF_WIDTH), f"{gold}。", f"「{gold}」です", f" {gold}\n",
        f"{gold}\n\n以上が答えです", f"\n\n{gold}", "", "The answer is " + gold, other, context[:12],
        gold.upper(), f"{gold} {other}", f"回答：{gold}", f"{gold}_{other}", f"café {gold}", "。", f"{other} {gold}",
    ]


@pytest.fixture(scope="module")
def qa_pairs(jglue_dir: Path) -> list[tuple[str, str]]:
    data = json.loads((jglue_dir / "jsquad-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8"))
    items = [(p["context"], q["answers"][0]["text"]) for a in data["data"] for p in a["paragraphs"] for q in p["qas"]]
    items = items[:: max(1, len(items) // 24)][:24]
    pairs = []
    for i, (context, gold) in enumerate(items):
        other = items[(i + 1) % len(items)][1]
        pairs += [(output, gold) for output in _variants(gold, other, context)]
        pairs.append((gold, f"{gold} "))  # llm-jp-eval does not strip the gold
    return pairs  # 480 pairs


@pytest.fixture(scope="module")
def sts_pairs(jglue_dir: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (jglue_dir / "jsts-v1.3" / "valid-v1.3.json").read_text().splitlines()[:300]]
    outputs = ["{v}", "{v:.0f}", "類似度は{v}です", "スコア：{v}", "", "five", "{v}点\n\n理由",
               "約{v:.1f}"]
    return [(outputs[i % len(outputs)].format(v=round(r["label"] + (i % 5 - 2) * 0.4, 1)).translate(
        FULL_WIDTH if i % 7 == 0 else {}), str(r["label"])) for i, r in enumerate(rows)]


def test_llmjp_exact_match_and_char_f1_match_their_definition(qa_pairs: list[tuple[str, str]]) -> None:
    assert fuzz.SequenceMatcher.__module__ == "fuzzywuzzy.StringMatcher"  # python-Levenshtein, not difflib
    outputs, golds = [p for p, _ in qa_pairs], [g for _, g in qa_pairs]
    em = [float(_pred(p) == _true(g)) for p, g in qa_pairs]
    cf = [fuzz.token_sort_ratio(_pred(p), _true(g)) / 100.0 for p, g in qa_pairs]
    # thefuzz's own pre-processing also blanks "_": called naively it would differ here
    assert [thefuzz.token_sort_ratio(_pred(p), _true(g)) / 100.0 for p, g in qa_pairs] != cf
    assert [sample_score("llmjp:exact_match", p, g) for p, g in qa_pairs] == em
    assert [sample_score("llmjp:char_f1", p, g) for p, g in qa_pairs] == cf
    assert aggregate("llmjp:exact_match", outputs, golds).value == pytest.approx(mean(em), abs=1e-12)
    assert aggregate("llmjp:char_f1", outputs, golds).value == pytest.approx(mean(cf), abs=1e-12)
    # they are other definitions than hyouka's own (which normalises punctuation and takes the best gold)
    ours = [sample_score("char_f1", p, [g]) for p, g in qa_pairs]
    assert sum(abs(a - b) > 1e-9 for a, b in zip(ours, cf, strict=True)) > 50
    assert 0 < mean(em) < 1 and sum(em) < sum(sample_score("exact_match", p, [g]) for p, g in qa_pairs)


def test_llmjp_set_f1_matches_their_definition(qa_pairs: list[tuple[str, str]]) -> None:
    pairs = [(f"{p}\n{g}" if i % 3 == 0 else p, f"{g}\n{qa_pairs[(i + 15) % len(qa_pairs)][1]}" if i % 2 else g)
             for i, (p, g) in enumerate(qa_pairs)]

    def expected(output: str, gold: str) -> float:
        true = [x.strip() for x in _true(gold).split("\n")]
        pred = list({x.strip() for x in _pred(output).split("\n")})
        pre = sum(1 if y in true else 0 for y in pred) / len(pred)
        rec = sum(1 if y in true else 0 for y in pred) / len(true)
        return 2 * pre * rec / (pre + rec) if pre + rec != 0 else 0

    assert [sample_score("llmjp:set_f1", p, g) for p, g in pairs] == pytest.approx([expected(p, g) for p, g in pairs])


def test_llmjp_pearson_spearman_use_parse_float_and_minus_two(sts_pairs: list[tuple[str, str]]) -> None:
    outputs, golds = [p for p, _ in sts_pairs], [g for _, g in sts_pairs]
    x, y = list(map(float, golds)), [_parse_float(_pred(o)) for o in outputs]
    assert -2.0 in y and any("５" in o or "３" in o for o in outputs)  # fallbacks and full-width digits present
    for name, func in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        value = aggregate(f"llmjp:{name}", outputs, golds, n_resamples=50)
        assert value.value == pytest.approx(float(func(x, y)[0]), abs=1e-12)
        assert value.n_scored == len(sts_pairs)  # no pair left out: an unreadable answer is -2.0
    constant = aggregate("llmjp:pearson", ["わからない"] * 5, golds[:5], n_resamples=0)
    assert constant.value == 0.0  # scipy's NaN for a constant side is 0.0 in llm-jp-eval


def test_llmjp_bleu_ja_is_their_sentence_sacrebleu_call(jglue_dir: Path) -> None:
    rows = [json.loads(line) for line in (jglue_dir / "jsts-v1.3" / "valid-v1.3.json").read_text().splitlines()[:80]]
    pairs = [(r["sentence2"], r["sentence1"]) for r in rows] + [(r["sentence1"], r["sentence1"]) for r in rows[:10]]
    pairs += [("", rows[0]["sentence1"]), ("Completely English output.", rows[1]["sentence1"])]

    def expected(output: str, gold: str) -> float:
        pred, true = _pred(output), _true(gold)
        if not pred:
            return 0.0
        return sacrebleu.BLEU(trg_lang="ja", effective_order=True).corpus_score([pred], [[true]]).score / 100

    values = [sample_score("llmjp:bleu_ja", p, g) for p, g in pairs]
    assert values == pytest.approx([expected(p, g) for p, g in pairs], abs=1e-12)
    assert values[80:90] == pytest.approx([1.0] * 10)
    with pytest.raises(ValueError, match="gold answer is empty"):
        sample_score("llmjp:bleu_ja", "何か", " ")


def test_evaluate_accepts_llmjp_metric_names(qa_pairs: list[tuple[str, str]], tmp_path: Path) -> None:
    rows = [{"question": f"q{i}", "answer": p, "ground_truth": g} for i, (p, g) in enumerate(qa_pairs[:90])]
    result = hyouka.evaluate(data=rows, predictions="answer", targets="ground_truth",
                             metrics=["llmjp:exact_match", "llmjp:char_f1", "exact_match"],
                             store=f"sqlite:///{tmp_path / 's.sqlite'}", cache=False)
    answered = [(r["answer"], r["ground_truth"]) for r in rows]
    assert result.metrics["llmjp:char_f1"] == pytest.approx(
        mean(fuzz.token_sort_ratio(_pred(p), _true(g)) / 100 for p, g in answered))
    assert result.metrics["llmjp:exact_match"] == pytest.approx(mean(float(_pred(p) == _true(g)) for p, g in answered))
    assert result.metrics["llmjp:exact_match"] != result.metrics["exact_match"]


def test_jsts_run_with_llm_jp_eval_prompts_scores_as_llm_jp_eval(jglue_dir: Path, tmp_path: Path) -> None:
    answers = ["3", "類似度は4です", "", "five", "２．５", "1.0\n\n理由: 似ている", "4点"]

    def answer(prompt: str) -> str:
        return answers[sum(map(ord, prompt)) % len(answers)]

    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    result = hyouka.run(ScriptedModel(answer=answer), "jsts", prompt_family="llm-jp-eval", data_dir=jglue_dir,
                        limit=60, store=url, cache=False, mode="generate")
    run = result["jsts"]
    samples = Store(url).samples(run.run_id)
    assert "整数値のみを返し" in samples[0]["prompt"] and samples[0]["prompt"].endswith("### 応答:\n")
    gold = [float(s["doc"]["label"]) for s in samples]
    parsed = [_parse_float(_pred(s["output"])) for s in samples]
    assert run.aggregates["llmjp:pearson"]["value"] == pytest.approx(float(stats.pearsonr(gold, parsed)[0]))
    assert run.aggregates["llmjp:spearman"]["value"] == pytest.approx(float(stats.spearmanr(gold, parsed)[0]))
    assert run.aggregates["llmjp:pearson"]["n_scored"] == 60
    assert run.aggregates["pearson"]["n_scored"] < 60  # hyouka's own leaves unreadable answers out
    assert not math.isclose(run.aggregates["pearson"]["value"], run.aggregates["llmjp:pearson"]["value"])
    # `hyouka score` recomputes the same from the stored records, and knows the task is unchanged
    from hyouka.engine.rescore import rescore

    store = Store(url)
    again = rescore(store, run.run_id)
    assert again["llmjp:pearson"]["value"] == pytest.approx(run.aggregates["llmjp:pearson"]["value"])
    assert store.get_run(run.run_id)["stats"]["task_hash_matches"]


def _nejumi_qa_formatter(text: str) -> str:
    """Nejumi's ``text_formatter`` for jsquad / jemhopqa / niilc, as read in wandb/llm-leaderboard."""
    for label in ("応答:", "回答:", "答え:"):
        text = text.replace(label, "")
    return text.strip().lower()


def test_nejumi_label_stripping_feeds_the_llmjp_metrics(jglue_dir: Path, tmp_path: Path) -> None:
    data = json.loads((jglue_dir / "jsquad-v1.3" / "valid-v1.3.json").read_text(encoding="utf-8"))
    rows = [{"question": q["question"], "gold": q["answers"][0]["text"]}
            for a in data["data"][:4] for p in a["paragraphs"] for q in p["qas"]][:40]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    frames = ["回答: {g}", "答え:{g}\n\n理由", "回答：{g}", " 応答: {G}です", "{g}", "The answer: {g}"]
    answers = {r["question"]: frames[i % len(frames)].format(g=r["gold"], G=r["gold"].upper())
               for i, r in enumerate(rows)}
    spec = {"task": "nejumi_qa", "version": "1", "dataset": {"files": {"valid": "qa.jsonl"}, "eval_split": "valid"},
            "output_type": "generate_until", "modes": ["generate"], "doc_to_text": "{{ question }}",
            "doc_to_target": "{{ gold }}", "generation": {"preprocess": ["strip_answer_label", "lowercase"]},
            "metric_list": [{"metric": "llmjp:char_f1"}, {"metric": "llmjp:exact_match"}]}
    path = tmp_path / "nejumi_qa.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")

    def answer(prompt: str) -> str:
        return answers[max((q for q in answers if q in prompt), key=len)]

    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    run = hyouka.run(ScriptedModel(answer=answer), str(path), data_dir=tmp_path, store=url, cache=False,
                     mode="generate")["nejumi_qa"]
    golds = [_true(r["gold"]) for r in rows]
    preds = [_pred(_nejumi_qa_formatter(answers[r["question"]])) for r in rows]
    assert run.aggregates["llmjp:char_f1"]["value"] == pytest.approx(
        mean(fuzz.token_sort_ratio(p, g) / 100 for p, g in zip(preds, golds, strict=True)))
    assert run.aggregates["llmjp:exact_match"]["value"] == pytest.approx(
        mean(float(p == g) for p, g in zip(preds, golds, strict=True)))
    assert 0 < run.aggregates["llmjp:exact_match"]["value"] < 1  # the full-width colon label stays, as in Nejumi

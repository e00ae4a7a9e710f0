"""A tiny, randomly initialised causal LM with a Japanese byte-level BPE tokenizer, built locally.

Tests and benchmarks need a real transformers model without network access. ``build_tiny_model``
trains a byte-level BPE tokenizer on JGLUE train text (deterministic), initialises a small Llama or
GPT-NeoX with a fixed seed and saves both, so ``hf:<out_dir>`` loads it like any local checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from hyouka.models.hf_deps import require_hf

PAD, BOS, EOS = "<pad>", "<s>", "</s>"

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# (file under corpus_dir, text fields) in the JGLUE v1.3 upstream layout; missing files are skipped.
CORPUS_FILES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "jcommonsenseqa-v1.3/train-v1.3.json",
        ("question", "choice0", "choice1", "choice2", "choice3", "choice4"),
    ),
    ("jsts-v1.3/train-v1.3.json", ("sentence1", "sentence2")),
)

ARCHS = ("llama", "gpt_neox", "bloom")  # bloom (ALiBi) takes no position ids


def iter_corpus(corpus_dir: Path) -> Iterator[str]:
    """Yield the training texts (JSON lines) found under ``corpus_dir``, in file order."""
    for rel, fields in CORPUS_FILES:
        path = Path(corpus_dir) / rel
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    yield from (str(row[f]) for f in fields if row.get(f))


@lru_cache(maxsize=8)
def _train_tokenizer_json(corpus_dir: str, vocab_size: int) -> str:
    """Train the byte-level BPE and return its serialised form (cached per process)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    texts = list(iter_corpus(Path(corpus_dir)))
    if not texts:
        raise FileNotFoundError(f"no JGLUE train text found under {corpus_dir} (expected {CORPUS_FILES[0][0]})")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return tok.to_str()


def build_tokenizer(corpus_dir: Path, *, vocab_size: int = 8000, chat_template: bool = True, max_length: int = 2048):
    """A ``PreTrainedTokenizerFast`` (BOS added on encode; pad/eos set) trained on JGLUE text."""
    require_hf()
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_str(_train_tokenizer_json(str(Path(corpus_dir).resolve()), vocab_size))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=max_length,
        chat_template=CHAT_TEMPLATE if chat_template else None,
    )


def _config(arch: str, vocab_size: int, hidden_size: int, num_layers: int, max_length: int, ids: dict[str, int]):
    from transformers import BloomConfig, GPTNeoXConfig, LlamaConfig

    heads = max(1, hidden_size // 32)
    common = {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": heads,
        "intermediate_size": hidden_size * 8 // 3 // 8 * 8,
        "max_position_embeddings": max_length,
        "tie_word_embeddings": False,
        **ids,
    }
    if arch == "llama":
        return LlamaConfig(num_key_value_heads=heads, rms_norm_eps=1e-5, **common)
    if arch == "gpt_neox":
        return GPTNeoXConfig(rotary_pct=0.25, use_parallel_residual=True, **common)
    if arch == "bloom":
        return BloomConfig(vocab_size=vocab_size, hidden_size=hidden_size, n_layer=num_layers, n_head=heads, **ids)
    raise ValueError(f"unknown tiny arch {arch!r}; choose one of {ARCHS}")


def build_tiny_model(
    out_dir: Path,
    *,
    corpus_dir: Path,
    arch: str = "llama",
    seed: int = 0,
    vocab_size: int = 8000,
    hidden_size: int = 192,
    num_layers: int = 4,
    max_length: int = 2048,
    chat_template: bool = True,
) -> Path:
    """Build and save a tiny random ``arch`` model plus tokenizer to ``out_dir``; return ``out_dir``.

    Deterministic: the same arguments give the same tokenizer and the same weights.
    """
    require_hf()
    import torch
    from transformers import AutoModelForCausalLM

    if arch not in ARCHS:
        raise ValueError(f"unknown tiny arch {arch!r}; choose one of {ARCHS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(corpus_dir, vocab_size=vocab_size, chat_template=chat_template, max_length=max_length)
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = _config(arch, len(tokenizer), hidden_size, num_layers, max_length, ids)
    with torch.random.fork_rng(devices=[]):  # seed only the CPU generator, restore it afterwards
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    """``python -m hyouka.testing.tiny OUT_DIR --corpus-dir JGLUE_DIR``: build a stand-in model offline."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--corpus-dir", type=Path, required=True, help="JGLUE datasets/ folder (train text)")
    parser.add_argument("--arch", choices=ARCHS, default="llama")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build_tiny_model(args.out_dir, corpus_dir=args.corpus_dir, arch=args.arch, seed=args.seed)
    print(f"tiny {args.arch} model written to {path}; use it as --model hf:{path}")


if __name__ == "__main__":
    main()

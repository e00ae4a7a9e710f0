"""What a checkpoint settles for the backends that load one (``hf:``, ``vllm:``): its fingerprint, its max length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyouka.models.fingerprint import folder_fingerprint


def weights_fingerprint(name_or_path: str, config: Any, revision: str | None) -> str | None:
    """The hub commit the config came from, else the content fingerprint of a local folder (every file
    below it hashed, see :mod:`hyouka.models.fingerprint`), else the revision asked for."""
    commit = getattr(config, "_commit_hash", None)
    if commit:
        return str(commit)
    path = Path(name_or_path)
    if path.is_dir():
        return "local-" + folder_fingerprint(path)
    return revision


def model_max_length(config: Any, tokenizer: Any) -> int:
    """Positions the model takes: from the (text) config, else the tokenizer, else 2048."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(text, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 1_000_000:
        return value
    return 2048

"""``process_docs``: a Python function from a task file's own folder that rewrites its documents.

This is code the user chose to run: a task file naming ``process_docs: utils.process_docs`` (or
lm-eval's ``!function utils.process_docs``) runs ``utils.py`` from the folder that file lies in,
and from nowhere else: the module name may not climb out of that folder or name a package.
The function gets a ``datasets.Dataset`` (as lm-eval passes it) and returns one (or a list of
dicts); hyouka's documents are copied in, so the loaded files stay untouched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from hyouka.tasks.loaders import DataError

_REFERENCE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$")


class ProcessDocsError(ValueError):
    """A ``process_docs`` reference that cannot be resolved or run."""


def resolve_reference(reference: str, folder: Path, where: Path | str) -> str:
    """``module.function`` in ``folder`` as ``/abs/folder/module.py:function``; ``where`` names the task file."""
    if ":" in reference and Path(reference.split(":", 1)[0]).is_absolute():
        return reference  # already resolved (a spec saved and loaded again)
    match = _REFERENCE.match(reference.strip())
    if match is None:
        raise ProcessDocsError(
            f"{where}: process_docs {reference!r} must be module.function, the module a .py file "
            "in the task file's own folder"
        )
    module, function = match.groups()
    path = (folder / f"{module}.py").resolve()
    if not path.is_file():
        raise ProcessDocsError(f"{where}: process_docs {reference!r}: no {module}.py in {folder.resolve()}")
    return f"{path}:{function}"


def _split(resolved: str) -> tuple[Path, str]:
    path, _, function = resolved.rpartition(":")
    if not path or not function:
        raise ProcessDocsError(f"process_docs {resolved!r} is not resolved to a file; load the task from its file")
    return Path(path), function


def code_digest(resolved: str) -> str:
    """Hash of the module's source, so that editing the code changes the task's hash."""
    path, function = _split(resolved)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise ProcessDocsError(f"process_docs module {path} cannot be read: {exc}") from exc
    return hashlib.sha256(source + b"\0" + function.encode()).hexdigest()[:16]


@lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int, function: str) -> Callable[..., Any]:
    name = f"hyouka_task_code_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ProcessDocsError(f"process_docs module {path} cannot be imported")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ProcessDocsError(f"process_docs module {path} failed to import: {exc!r}") from exc
    func = getattr(module, function, None)
    if not callable(func):
        raise ProcessDocsError(f"process_docs: {path} has no function {function!r}")
    return func


def load_function(resolved: str) -> Callable[..., Any]:
    """The function a resolved reference names (imported once per file version)."""
    path, function = _split(resolved)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ProcessDocsError(f"process_docs module {path} is missing: {exc}") from exc
    return _load(path, mtime, function)


def apply(resolved: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents as the function returns them, each keeping (or getting) a stable ``_id``."""
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"process_docs ({resolved}) passes a datasets.Dataset: `pip install datasets`") from exc
    func = load_function(resolved)
    try:
        out = func(datasets.Dataset.from_list([dict(doc) for doc in docs]))
    except Exception as exc:
        raise ProcessDocsError(f"process_docs {resolved} failed: {exc!r}") from exc
    rows = out.to_list() if hasattr(out, "to_list") else [dict(row) for row in out]
    for index, row in enumerate(rows):
        if not isinstance(row.get("_id"), str):
            row["_id"] = str(index)
    return rows

"""Errors of the results store, importable without the database layer."""

from __future__ import annotations


class RunNotFoundError(LookupError):
    """No run, or more than one, matches the id given."""


def run_lookup_error(run_id: str, n_matches: int, url: str) -> RunNotFoundError:
    """The error for a run id (or prefix) that matches no run, or several."""
    if n_matches == 0:
        return RunNotFoundError(f"no run {run_id!r} in the store ({url}); `hyouka runs` lists them")
    return RunNotFoundError(f"run id prefix {run_id!r} matches {n_matches} runs; give more characters")

"""YAML parsing for task, suite, rubric and price files: libyaml's C loader when PyYAML has it.

The C loader reads the same documents as ``yaml.safe_load`` about ten times faster, which
matters because every run parses its task files again.
"""

from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Parse YAML text safely; raises ``yaml.YAMLError`` on bad input."""
    return yaml.load(text, Loader=_LOADER)

"""Errors that name an argument, so each interface can say it in its own words.

The Python API says ``targets=…``; the command line says ``--targets-column …``. An
:class:`ArgumentError` keeps the argument's keyword apart from the message, and
:meth:`ArgumentError.for_cli` spells it as the command's flag.
"""

from __future__ import annotations

from collections.abc import Mapping


class ArgumentError(ValueError):
    """A missing or bad argument of the Python API.

    ``template`` holds ``{keyword}`` placeholders; ``arguments`` maps each keyword to an example
    value (``"…"`` when there is none to give, ``""`` to name the argument alone).
    """

    def __init__(self, template: str, **arguments: str) -> None:
        self.template = template
        self.arguments = arguments
        super().__init__(self._spell({k: f"{k}={v}" if v else k for k, v in arguments.items()}))

    def _spell(self, spelled: Mapping[str, str]) -> str:
        return self.template.format(**spelled) if self.arguments else self.template

    def for_cli(self, flags: Mapping[str, str]) -> str:
        """The message with each keyword as its flag: ``flags`` maps keywords to flags, else ``--keyword``."""
        spelled = {}
        for keyword, example in self.arguments.items():
            flag = flags.get(keyword, "--" + keyword.replace("_", "-"))
            value = example.strip("'")  # a shell takes the example unquoted
            spelled[keyword] = f"{flag} {value}" if value else flag
        return self._spell(spelled)

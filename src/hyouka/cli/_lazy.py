"""The root command group: commands registered by name, each module imported when its command is needed.

``hyouka runs`` imports the module of ``runs`` and nothing of ``run``, ``report`` or ``serve``;
``hyouka --help`` imports every command module (each is small: its heavy imports are inside its
commands) to list the commands with their own short help.

A command module holds its commands in a module-level ``app``: a ``typer.Typer`` (commands and
sub-groups registered on it as usual), or a ``click.Group`` for commands written in plain click
(the read-only ones: Typer builds a pydantic adapter for each option it parses, which costs them
more than their work). A click command runs under the Typer root through :class:`ClickCommand`;
from the console script it runs before Typer is even imported (see :mod:`hyouka.cli`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup


class ClickCommand(TyperCommand):
    """A plain click command under the Typer root: the root finds it by name and hands it its arguments.

    The command parses them itself (its own ``--help``, usage errors and exit codes); its
    parameters are shown here to what inspects the command tree (shell completion, tests).
    """

    def __init__(self, command: Any) -> None:
        super().__init__(
            command.name,
            help=command.help,
            short_help=command.short_help,
            hidden=command.hidden,
            add_help_option=False,
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        )
        self.command = command
        self.params = list(command.params)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.args = list(args)
        return ctx.args

    def invoke(self, ctx: Any) -> Any:
        return self.command.main(args=ctx.args, prog_name=ctx.command_path, standalone_mode=True)

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        """What click completes after ``hyouka <this command> ARGS``: its options and their values."""
        from click.shell_completion import ShellComplete

        return ShellComplete(self.command, {}, ctx.command_path, "").get_completions(list(ctx.args), incomplete)


class _Commands(Mapping[str, Any]):
    """Command name -> command, importing the command's module on first access."""

    def __init__(self, modules: Mapping[str, str]) -> None:
        self._modules = dict(modules)
        self._loaded: dict[str, Any] = {}
        self._groups: dict[str, Mapping[str, Any]] = {}  # module -> its commands

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            module = self._modules[name]
            if module not in self._groups:
                self._groups[module] = _module_commands(module)
            found = self._groups[module].get(name)
            if found is None:
                raise RuntimeError(f"{module} has no command {name!r}, yet hyouka.cli.COMMANDS says it does")
            self._loaded[name] = found
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


def _module_commands(module_name: str) -> Mapping[str, Any]:
    """The commands of a command module's ``app``, by name, ready to run under the Typer root."""
    app = importlib.import_module(module_name).app
    if isinstance(app, typer.Typer):
        return typer.main.get_group(app).commands
    return {name: ClickCommand(command) for name, command in app.commands.items()}


def lazy_group(modules: Mapping[str, str]) -> type[TyperGroup]:
    """A Typer group class whose commands are ``modules`` (command name -> module), imported on demand."""

    class LazyGroup(TyperGroup):
        def __init__(self, *args: Any, commands: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
            if commands:
                raise TypeError(f"register commands in hyouka.cli.COMMANDS, not on the root app: {sorted(commands)}")
            super().__init__(*args, **kwargs)
            self.commands = _Commands(modules)  # type: ignore[assignment]

        def list_commands(self, ctx: Any) -> list[str]:
            return list(self.commands)

        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            # the root's own flags (--help, --install-completion, --show-completion) default to
            # None, and Typer imports pydantic to coerce a None; False means the same to them
            # (not given) and Typer passes a bool flag's bool through as it is
            for param in self.get_params(ctx):
                if getattr(param, "is_flag", False) and param.default is None:
                    param.default = False
            return super().parse_args(ctx, args)

    return LazyGroup

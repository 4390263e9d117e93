"""A typer root standing in for the tealedger app, with one package's commands registered."""

from __future__ import annotations

from collections.abc import Callable

import typer


def cli_root(register: Callable[[typer.Typer], None]) -> typer.Typer:
    """A root app (a callback keeps subcommands) with `register`'s commands."""
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        """Root stands in for the tealedger app (a callback keeps subcommands)."""

    register(root)
    return root

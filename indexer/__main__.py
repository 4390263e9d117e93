"""`python -m indexer index ...`: the index command without the rest of the CLI (used by the
crash tests, which kill it with SIGKILL)."""

from __future__ import annotations

import typer

from indexer.cli import register

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
register(app)


@app.callback()
def _root() -> None:
    """tealedger indexer."""


if __name__ == "__main__":
    app()

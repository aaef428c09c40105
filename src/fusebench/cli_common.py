"""What every ``fusebench`` command shares: the console and the user-error boundary."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import typer
from rich.console import Console

from fusebench.config import ConfigError

console = Console()
USER_ERRORS = (ConfigError, ValueError, FileNotFoundError, KeyError)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Show a user's mistake as one paragraph and exit 2, instead of a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
            console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper

"""What every ``fusebench`` command shares: the console and the user-error boundary."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import typer
from rich.console import Console

from fusebench.errors import ConfigError

console = Console()
USER_ERRORS = (ConfigError, ValueError, OSError, KeyError)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Show a user's mistake as one paragraph and exit 2, instead of a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from fusebench.processes import sigterm_as_interrupt

        try:
            with sigterm_as_interrupt():  # `kill` stops as cleanly as Ctrl-C
                return command(*args, **kwargs)
        except USER_ERRORS as error:
            console.print(f"[bold red]error:[/] {_message(error)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            console.print("[bold yellow]interrupted.[/]", highlight=False)
            raise typer.Exit(code=130) from None

    return wrapper


def _message(error: BaseException) -> str:
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, OSError) and error.strerror and error.filename and len(error.args) > 1:
        return f"{error.strerror}: `{error.filename}`."  # e.g. a config file this user may not read
    return str(error)

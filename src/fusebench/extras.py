"""Optional extras: say which ``pip install`` brings a missing optional package."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from fusebench.errors import ConfigError


def require_modules(modules: Sequence[str], extra: str, what: str) -> None:
    """Raise a one-paragraph ``ConfigError`` naming the ``pip install`` when one of ``modules`` is missing.

    Config validation calls this, so a run that needs an extra fails before anything runs.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        names = ", ".join(f"`{m}`" for m in missing)
        raise ConfigError(
            f"{what} needs the Python package(s) {names}, not installed here; install them with "
            f"`pip install 'fusebench[{extra}]'`."
        )

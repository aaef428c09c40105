"""The command line's error boundary: fusebench's own errors are one paragraph and exit 2, bugs are tracebacks.

A user's mistake (a :class:`~fusebench.errors.FusebenchError`, or a file the operating system
refuses) is explained; any other exception — a ``TypeError``, or a ``ValueError`` from a
library or from fusebench's own code — is a bug and must surface with its traceback, not pass
for a user error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from tests._helpers.runs import tiny_raw
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.cli_common import user_errors
from fusebench.errors import ConfigError, DataError

runner = CliRunner()


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_raw(tmp_path / "runs")))
    return path


def test_a_config_mistake_found_by_the_preflight_is_one_paragraph_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(_config(tmp_path)), "--dry-run", "metrics.primary=acuracy"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ")
    assert "Unknown metric `acuracy` (did you mean `accuracy`?)" in result.output
    assert "Traceback" not in result.output and result.output.strip().count("\n") == 0


@pytest.mark.parametrize(
    "bug",
    [ValueError("a library's check failed"), TypeError("unsupported operand"), KeyError("encoders")],
    ids=["ValueError", "TypeError", "KeyError"],
)
def test_a_bug_inside_a_command_escapes_as_its_own_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bug: Exception
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise bug

    monkeypatch.setattr("fusebench.engine.preflight.preflight", broken)  # `train --dry-run` builds through it
    with pytest.raises(type(bug)) as raised:
        runner.invoke(app, ["train", str(_config(tmp_path)), "--dry-run"], catch_exceptions=False)
    assert raised.value is bug


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("`training.epochs`: expected >= 1, got 0."),
        DataError("`train/image.npy`: expected uint8, got float64."),
        PermissionError(13, "Permission denied", "/data/run"),
    ],
    ids=["ConfigError", "DataError", "OSError"],
)
def test_user_errors_are_explained_with_exit_code_2(error: Exception, capsys: pytest.CaptureFixture[str]) -> None:
    @user_errors
    def command() -> None:
        raise error

    with pytest.raises(typer.Exit) as raised:
        command()
    assert raised.value.exit_code == 2
    expected = "Permission denied: `/data/run`." if isinstance(error, OSError) else str(error)
    assert capsys.readouterr().out.strip() == f"error: {expected}"

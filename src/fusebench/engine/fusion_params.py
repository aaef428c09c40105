"""``model.fusion.params`` checked against the signature of the builder they are passed to.

The params are free-form in the config (each fusion method takes its own), so without this
check a misspelt key or a string where a number belongs surfaces as a ``TypeError`` deep in
model construction. Here the builder's own signature is the schema: every key must be one
of its keyword arguments that the config does not already set, required ones must be
present, and each value must have the argument's annotated type (pydantic, strict).
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from fusebench.config import ConfigError, FusionConfig

#: Arguments each builder gets from the code or from other config keys, never from ``params``.
_LATE_SET: dict[str, str | None] = {"input_dims": None, "hidden_dim": "model.fusion.hidden_dim",
                                    "dropout": "model.fusion.dropout"}
_FEATURE_SET: dict[str, str | None] = {"extractors": None, "num_classes": None,
                                       "hidden_dim": "model.fusion.hidden_dim", "dropout": "model.fusion.dropout"}
_TOKEN_SET: dict[str, str | None] = {"input_shapes": None, "num_classes": None}
_MID_SET: dict[str, str | None] = {**_TOKEN_SET, "encoders": None}  # built from `model.encoders` (encoder_tokens)


def _target(fusion: FusionConfig) -> tuple[Callable[..., Any], Mapping[str, str | None]] | None:
    """The callable ``params`` are passed to, and the arguments set elsewhere; None for an unknown method."""
    if fusion.type == "late":
        from fusebench.models.fusion import _LATE_FUSION_CLASSES

        cls = _LATE_FUSION_CLASSES.get(fusion.method)
        return (cls.__init__, _LATE_SET) if cls is not None else None
    from fusebench.models import registry

    builders: dict[tuple[str, str], tuple[Callable[..., Any], Mapping[str, str | None]]] = {
                ("early", "feature"): (registry.build_feature_early_fusion, _FEATURE_SET),
                ("early", "token"): (registry.build_token_early_fusion, _TOKEN_SET),
                ("mid", "where_to_fuse"): (registry.build_where_to_fuse, _MID_SET)}
    return builders.get((fusion.type, fusion.method))


def check_fusion_params(fusion: FusionConfig) -> None:
    """Raise one paragraph for every unknown, misplaced, missing or mistyped ``model.fusion.params`` key.

    An unknown fusion method is left to the model builder, whose error lists the methods.

    Raises:
        ConfigError: names the method, the keys, what each expects and the valid keys.
    """
    found = _target(fusion)
    if found is None:
        return
    target, elsewhere = found
    where = f"`model.fusion.params` of fusion `{fusion.type}/{fusion.method}`"
    parameters = {name: p for name, p in inspect.signature(target).parameters.items()
                  if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    valid = [name for name in parameters if name not in elsewhere]
    hints = typing.get_type_hints(target)
    problems = []
    for key, value in fusion.params.items():
        if key in elsewhere:
            problems.append(f"`{key}` is set by `{elsewhere[key]}`, not here" if elsewhere[key]
                            else f"`{key}` is set by fusebench from the data")
        elif key not in parameters:
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            problems.append(f"unknown key `{key}`" + (f" (did you mean `{close[0]}`?)" if close else ""))
        elif key in hints:
            try:
                TypeAdapter(hints[key]).validate_python(value, strict=True)
            except ValidationError as error:
                expected = getattr(hints[key], "__name__", None) or str(hints[key]).replace("collections.abc.", "")
                problems.append(f"`{key}` expects {expected}, got {value!r} ({error.errors()[0]['msg']})")
    missing = [name for name in valid if parameters[name].default is inspect.Parameter.empty
               and name not in fusion.params]
    problems += [f"`{name}` is required" for name in missing]
    if problems:
        raise ConfigError(f"Invalid {where}: " + "; ".join(problems) + f". Valid keys: {valid}.")

"""Pydantic's validation report as one paragraph that names the file, each key and the fix.

Shared by every schema fusebench validates (run configs, study specs, dataset
descriptions, ``--set`` options): an unknown key is answered with the closest valid key
of its own section, found by walking the schema along the error's location — through
discriminated unions too (``data`` by ``dataset``, ``model.encoders.<m>`` by ``kind``,
``model.fusion`` by ``type/method``, ``training.strategy.contrastive`` by
``kind/projector``), whose tags the user never writes and the path leaves out.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag, ValidationError

from fusebench.errors import ConfigError

E = TypeVar("E", bound=ConfigError)


def tagged_members(annotation: Any, metadata: Sequence[Any] = ()) -> dict[str, Any] | None:
    """``{tag: member type}`` of a discriminated union (``Annotated[Union[Annotated[X, Tag]...], Discriminator]``)."""
    extra: list[Any] = list(metadata)
    if get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        extra += more
    if not any(isinstance(item, Discriminator) for item in extra):
        return None
    choices = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    members: dict[str, Any] = {}
    for choice in choices:
        inner, tags = (get_args(choice)[0], get_args(choice)[1:]) if get_origin(choice) is Annotated else (choice, ())
        for tag in [*tags, *extra]:
            if isinstance(tag, Tag):
                members[tag.tag] = inner
                break
    return members


def fields_of(node: Any) -> dict[str, tuple[Any, Sequence[Any]]] | None:
    """Field name -> (annotation, metadata) of a pydantic model or dataclass; None for anything else."""
    if isinstance(node, type) and issubclass(node, BaseModel):
        return {name: (f.annotation, f.metadata) for name, f in node.model_fields.items()}
    if isinstance(node, type) and dataclasses.is_dataclass(node):
        return {f.name: (f.type, ()) for f in dataclasses.fields(node)}
    return None


def resolve_location(location: Sequence[str | int], root: type[BaseModel]) -> tuple[list[str], Any]:
    """Walk ``location`` (a pydantic error's ``loc``) from ``root``.

    Returns the user's dotted path (union tags such as ``data.<dataset>`` dropped, as the
    user never writes them) and the type found at its end (None where the walk left the schema).
    """
    node: Any = root
    metadata: Sequence[Any] = ()
    path: list[str] = []
    label_next = False
    for part in location:
        if label_next and isinstance(part, str):  # pydantic names the member of a plain union it tried
            label_next, node = False, None
            continue
        label_next = False
        members = tagged_members(node, metadata) if node is not None else None
        metadata = ()
        if members is not None:
            node = members.get(str(part))
            if node is not None:
                continue  # the tag of a discriminated union
            path.append(str(part))
            continue
        fields = fields_of(node)
        path.append(str(part))
        if fields is not None:
            annotation, metadata = fields.get(str(part), (None, ()))
            if any(isinstance(item, Discriminator) for item in metadata):  # pydantic moved the union's tags here
                annotation, metadata = Annotated.__class_getitem__((annotation, *metadata)), ()  # type: ignore[attr-defined]
            label_next = _plain_union(annotation)
            node = _section_type(annotation)
        elif get_origin(node) in (dict, list):
            node = _section_type(get_args(node)[-1])
        else:
            node = None
    return path, node


def _plain_union(annotation: Any) -> bool:
    """Whether ``annotation`` is a union of two or more types that is not discriminated (``int | list[int]``)."""
    if tagged_members(annotation) is not None:
        return False
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) not in (Union, UnionType):
        return False
    return len([a for a in get_args(annotation) if a is not type(None)]) > 1


def _section_type(annotation: Any) -> Any:
    """Unwrap ``X | None`` to ``X``: the model, dataclass, ``dict``/``list`` or union a key path can descend into."""
    if annotation is None:
        return None
    if tagged_members(annotation) is not None:
        return annotation
    for candidate in (annotation, *get_args(annotation)):
        if fields_of(candidate) is not None or get_origin(candidate) in (dict, list):
            return candidate
        if tagged_members(candidate) is not None:
            return candidate
    return None


def _valid_keys(node: Any) -> list[str]:
    fields = fields_of(node)
    return list(fields) if fields is not None else []


def tag_keys(members: Mapping[str, Any]) -> list[str]:
    """The fields a discriminated union is keyed by, in the tag's order (``type/method`` -> both).

    A member's tag is its fields' ``Literal`` values joined by ``/``.
    """
    for tag, member in members.items():
        parts = tag.split("/")
        keys = []
        for part in parts:
            for name, (annotation, _) in (fields_of(member) or {}).items():
                if get_origin(annotation) is Literal and part in get_args(annotation) and name not in keys:
                    keys.append(name)
                    break
        if len(keys) == len(parts):
            return keys
    return ["type"]


def _union_hint(dotted: str, tag: str, members: Mapping[str, Any]) -> str:
    """Which key of a (possibly composite) union tag is wrong, and the closest registered value."""
    keys, parts = tag_keys(members), tag.split("/")
    if len(keys) != len(parts) or len(parts) == 1:
        close = difflib.get_close_matches(tag, list(members), n=1, cutoff=0.5)
        hint = f"did you mean `{close[0]}`?" if close else f"expected one of {sorted(members)}"
        if keys == ["dataset"]:
            from fusebench.data.registry import broken_entry_points

            hint = broken_entry_points().get(tag) or hint
        return f"`{dotted}.{keys[0]}` is `{tag}`, which is not registered ({hint})"
    known = [t.split("/") for t in members]
    for i, (key, value) in enumerate(zip(keys, parts, strict=True)):  # the first part that fits no member
        fitting = [k for k in known if k[:i] == parts[:i]]
        if value not in {k[i] for k in fitting}:
            choices = sorted({k[i] for k in fitting})
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
            where = "" if i == 0 else " for " + ", ".join(f"`{dotted}.{keys[j]}` `{parts[j]}`" for j in range(i))
            hint = f"did you mean `{close[0]}`?" if close else f"expected one of {choices}"
            elsewhere = [k[:i] for k in known if k[i : i + 1] == [value]]
            if elsewhere:  # e.g. an early-fusion method under the default `type: late`
                hint = "it goes with " + " or ".join(
                    ", ".join(f"`{dotted}.{keys[j]}` `{k[j]}`" for j in range(i)) for k in elsewhere
                )
            return f"`{dotted}.{key}` is `{value}`, which is not registered{where} ({hint})"
    return f"`{dotted}` is `{tag}`, which is not registered (expected one of {sorted(members)})"


def _misspelt_tag_keys(section: Any, members: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, tag key)`` for each key of ``section`` no member has that is close to a tag key.

    A misspelt ``type`` leaves the union on its default tag, which then fails on a key of
    another member; the misspelling is the mistake to name first.
    """
    if not isinstance(section, Mapping):
        return []
    known = {name for member in members.values() for name in _valid_keys(member)}
    found = []
    for key in map(str, section):
        close = difflib.get_close_matches(key, tag_keys(members), n=1, cutoff=0.5) if key not in known else []
        if close:
            found.append((key, close[0]))
    return found


def _got(value: Any) -> str:
    """`` (got 'four')`` for a value; nothing for a whole section, which a cross-key check judged."""
    if isinstance(value, Mapping):
        return ""
    text = repr(value)
    return f" (got {text if len(text) <= 80 else text[:77] + '...'})"


def explain_validation_error(
    error: ValidationError,
    source: str,
    root: type[BaseModel] | None = None,
    kind: str = "config",
    as_type: type[E] = ConfigError,  # type: ignore[assignment]
) -> E:
    """Turn pydantic's report into one paragraph naming the source, the keys and the fix.

    ``root`` is the model that was validated (a run config by default, a study spec too), so
    an unknown key is answered with the closest valid key of its own section; keys inside a
    dataset's options are found through the ``data.dataset`` union. ``as_type`` is the
    error returned (:class:`~fusebench.errors.SpecError` for a study spec).
    """
    if root is None:
        from fusebench.config import RunConfig

        root = RunConfig
    problems: dict[str, list[str]] = {}  # one entry per key; a plain union's members add alternatives
    got: dict[str, str] = {}
    for item in error.errors():
        path, _ = resolve_location(item["loc"], root)
        dotted = ".".join(path) or "(top level)"
        if item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            problems.setdefault(f"unknown key `{dotted}`", []).append(_unknown_key_hint(item["loc"], path, root))
        elif item["type"] == "union_tag_invalid":
            tag = str(item.get("ctx", {}).get("tag"))
            _, union = resolve_location(item["loc"], root)
            members = tagged_members(union) or {}
            for key, close in _misspelt_tag_keys(item.get("input"), members):
                problems.setdefault(f"unknown key `{dotted}.{key}`", []).append(f"(did you mean `{dotted}.{close}`?)")
            problems.setdefault(_union_hint(dotted, tag, members), [])
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.setdefault(f"`{dotted}`:", []).append(message)
            got[f"`{dotted}`:"] = _got(item.get("input"))
    text = "; ".join(
        f"{key} {' or '.join(dict.fromkeys(details))}".strip() + got.get(key, "") for key, details in problems.items()
    )
    return as_type(f"Invalid {kind} {source}: {text}.")


def _unknown_key_hint(location: Sequence[str | int], path: list[str], root: type[BaseModel]) -> str:
    """``(did you mean `a.b`?)`` from the key's own section, else from the section above it; else its keys."""
    _, parent = resolve_location(location[:-1], root)
    valid = _valid_keys(parent)
    close = difflib.get_close_matches(path[-1], valid, n=1, cutoff=0.5)
    if close:
        return f"(did you mean `{'.'.join([*path[:-1], close[0]])}`?)"
    if len(path) > 1:  # e.g. `model.fusion.params.hidden_dim`, which is `model.fusion.hidden_dim`
        _, grandparent = resolve_location(location[:-2], root)
        above = difflib.get_close_matches(path[-1], _valid_keys(grandparent), n=1, cutoff=0.5)
        if above:
            return f"(did you mean `{'.'.join([*path[:-2], above[0]])}`?)"
    return f"(valid keys: {valid})" if valid else "(this section takes no keys)"

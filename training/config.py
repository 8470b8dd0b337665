"""Recipes as YAML files mapped onto nested dataclasses, with `key=value` overrides.

    cfg = load_config(JobConfig, "training/configs/smoke.yaml", ["train.max_steps=50", "model.size=tiny"])

A recipe may start with `extends: other.yaml` (relative to itself): the other file is read first
and this one's keys are merged over it. Override values are parsed as YAML (`1e-4`, `[0.9, 0.95]`,
`null`, `true`), then checked against the field's type. Unknown keys are errors that name the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
EXTENDS = "extends"


class ConfigError(ValueError):
    """A recipe or override that does not fit the config dataclasses; the message says where."""


def read_yaml(path: str | Path) -> dict:
    """A recipe file as a dict, with `extends:` resolved (recursively)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the recipe ({err.strerror})") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    base = data.pop(EXTENDS, None)
    if base is None:
        return data
    return merge(read_yaml(path.parent / base), data)


def merge(base: dict, update: dict) -> dict:
    """`update` over `base`, recursing into mappings present in both."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """`["train.lr=1e-4", ...]` set into a nested dict (new sections are created as needed)."""
    data = dict(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.max_steps=100")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({err})") from err
        node = data
        *parents, leaf = key.strip().split(".")
        for name in parents:
            child = node.get(name)
            node[name] = dict(child) if isinstance(child, dict) else {}
            node = node[name]
        node[leaf] = value
    return data


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """`value` checked (and gently converted: int -> float, list -> tuple, "1e-4" -> float) to `kind`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of {kind}")
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            pairs = enumerate(zip(value, args, strict=True))
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in pairs)
        item = args[0] if args else Any
        return origin(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported config type {kind}")


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass `cls` from a nested dict; missing fields keep their defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; {cls.__name__} has {names}")
    values = {name: _coerce(data[name], hints[name], f"{where}.{name}") for name in names if name in data}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """The dataclass `cls` from a recipe file (or its defaults when `path` is None) plus overrides."""
    data = read_yaml(path) if path is not None else {}
    where = str(path) if path is not None else cls.__name__
    if overrides:
        data = apply_overrides(data, overrides)
        where += " + overrides"
    return from_dict(cls, data, where)


def parse_job_args(argv: Sequence[str] | None, job: type[T], description: str, default: str | None) -> T:
    """A job's config from `--config recipe.yaml` plus `section.field=value` arguments."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=default, help=f"recipe YAML (default {default})")
    parser.add_argument("overrides", nargs="*", help="section.field=value, e.g. train.max_steps=100")
    args = parser.parse_args(argv)
    try:
        return load_config(job, args.config, args.overrides)
    except ConfigError as err:
        parser.error(str(err))


def to_dict(config: Any) -> dict:
    """A config dataclass as plain JSON/YAML-ready values (tuples become lists)."""
    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))

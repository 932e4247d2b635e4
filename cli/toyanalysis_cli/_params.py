"""Command-line options made from the library's parameter objects.

Every field of a :class:`toyanalysis.params.Params` (nested ones flattened)
becomes an option with the field's help and default, so a parameter is
reachable from every command that uses it and its default is written once, in
the library. An option left out means "the object's default"; a bad value is
the library's one-line error with the flag named.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from toyanalysis.errors import ConfigError
from toyanalysis.params import Option, Params

P = TypeVar("P", bound=Params)

_CLICK_TYPES: dict[type, click.ParamType] = {int: click.INT, float: click.FLOAT, str: click.STRING}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _click_type(opt: Option) -> click.ParamType:
    """Choices and integer ranges are checked by click (a usage error, exit status 2);
    every other bound by the parameter object (bad input, exit status 1)."""
    if opt.choices:
        return click.Choice(list(opt.choices))
    if opt.kind is int and opt.low is not None:
        low = int(opt.low) + (1 if opt.low_open else 0)
        high = None
        if opt.high is not None and math.isfinite(opt.high):
            high = int(opt.high) - (1 if opt.high_open else 0)
        return click.IntRange(min=low, max=high)
    return _CLICK_TYPES[opt.kind]


def _click_option(name: str, default: Any, opt: Option) -> Callable:
    kind = _click_type(opt)
    shown = "worked out from the data" if default is None else str(default)
    return click.option(
        flag(name),
        name,
        type=kind,
        default=None,
        metavar="N" if opt.kind is int else None,
        show_default=shown,
        help=opt.help,
    )


def params_options(cls: type[Params], *, exclude: Iterable[str] = ()) -> Callable:
    """A decorator adding one option per leaf parameter of ``cls`` (but ``exclude``)."""
    skip = set(exclude)
    leaves = [(path[-1], default, opt) for path, default, opt in cls.options()]

    def decorate(command: Callable) -> Callable:
        for name, default, opt in reversed(leaves):
            if name not in skip:
                command = _click_option(name, default, opt)(command)
        return command

    return decorate


def params_from(cls: type[P], kwargs: dict[str, Any]) -> P:
    """Take the parameter options out of ``kwargs`` and build the object from them."""
    names = {path[-1] for path, _, _ in cls.options()}
    given = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
    try:
        return cls.from_flat(given)
    except ConfigError as err:
        raise click.ClickException(_with_flag(str(err), names)) from None


def _with_flag(message: str, names: set[str]) -> str:
    match = re.match(r"(\w+) ", message)
    if match and match.group(1) in names:
        return f"{message} ({flag(match.group(1))})"
    return message

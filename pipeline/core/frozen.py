"""frozen_dataclass: @dataclass(frozen=True), with __init__, __repr__, __eq__ and __hash__ written
once here, over dataclasses.fields(), instead of generated and compiled for each class.

For each frozen dataclass the standard decorator writes the source text of six methods and
compiles each: for the 17 sections of the configuration (pipeline.core.config) that was 80 % of
the module's import, which every command pays; the four written here were two thirds of it
(`config show`: 0.90x CPU with the docstrings of the same change, BENCHMARKS.md "Start-up of a
small ingest"). A class decorated here is still a frozen dataclass: fields(), replace(),
asdict(), a frozen subclass, and __setattr__/__delattr__ (FrozenInstanceError) are the standard
ones; tests/test_frozen.py holds the four methods to the generated ones (the same values, repr,
equality, hash and TypeError texts).
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING


def _init(self, *args, **kwargs):
    """The generated __init__: positional or keyword values, defaults, default factories, then
    __post_init__; a wrong call raises the TypeError Python raises for it, word for word."""
    fields = dataclasses.fields(self)
    names = [f.name for f in fields if f.init]
    name = type(self).__qualname__
    given = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            raise TypeError(f"{name}.__init__() got an unexpected keyword argument '{key}'")
        if key in given:
            raise TypeError(f"{name}.__init__() got multiple values for argument '{key}'")
        given[key] = value
    if len(args) > len(names):
        count = len(names) + 1  # (self)
        optional = sum(f.init and (f.default is not MISSING or f.default_factory is not MISSING) for f in fields)
        takes = f"from {count - optional} to {count}" if optional else f"{count}"
        raise TypeError(f"{name}.__init__() takes {takes} positional argument{'s' if count != 1 else ''} "
                        f"but {len(args) + 1} were given")
    missing = [repr(f.name) for f in fields if f.init and f.name not in given
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        listed = (missing[0] if len(missing) == 1 else " and ".join(missing) if len(missing) == 2
                  else ", ".join(missing[:-1]) + ", and " + missing[-1])
        raise TypeError(f"{name}.__init__() missing {len(missing)} required positional argument"
                        f"{'s' if len(missing) > 1 else ''}: {listed}")
    for f in fields:
        if f.name in given:
            value = given[f.name]
        elif f.default is not MISSING:
            value = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:
            continue  # init=False without a default: left unset, as the generated __init__ does
        object.__setattr__(self, f.name, value)
    post_init = getattr(self, "__post_init__", None)
    if post_init is not None:
        post_init()


def _repr(self) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
    return f"{type(self).__qualname__}({shown})"


def _eq(self, other):
    if other.__class__ is self.__class__:
        return _compared(self) == _compared(other)
    return NotImplemented


def _compared(obj) -> tuple:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj) if f.compare)


def _hash(self) -> int:
    return hash(tuple(getattr(self, f.name) for f in dataclasses.fields(self)
                      if (f.compare if f.hash is None else f.hash)))


_METHODS = {"__init__": _init, "__repr__": _repr, "__eq__": _eq, "__hash__": _hash}


def frozen_dataclass(cls: type) -> type:
    """`@dataclass(frozen=True)` for `cls`, the four methods set from here instead of generated
    (a method the class defines itself is kept, as dataclass() keeps it)."""
    own = {name for name in _METHODS if name in cls.__dict__}
    cls = dataclasses.dataclass(cls, frozen=True, init=False, repr=False, eq=False)
    for name, method in _METHODS.items():
        if name not in own:
            setattr(cls, name, method)
    return cls

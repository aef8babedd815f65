"""pipeline.core.frozen against the standard @dataclass(frozen=True): every section of the config,
and a class of every kind of field, behave the same under both (values, repr, ==, hash, errors)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from pipeline.core import config
from pipeline.core.frozen import frozen_dataclass

SECTIONS = [obj for obj in vars(config).values()
            if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and obj.__module__ == config.__name__]


def twin(cls: type) -> type:
    """The same class made by the standard decorator (same name, fields, defaults, flags)."""
    fields = [(f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory, init=f.init,
                                                  repr=f.repr, hash=f.hash, compare=f.compare, metadata=f.metadata))
              for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True)


def outcome(call):
    """What a call gives: its value, or its exception's type and message."""
    try:
        return ("ok", call())
    except Exception as exc:
        return ("error", type(exc), str(exc))


def required(cls) -> dict:
    return {"settings": config.FileSettings()} if cls is config.Config else {}


def test_every_config_section_is_made_by_frozen_dataclass():
    assert len(SECTIONS) == 18   # 17 + RelaySettings ([sender.relays."host:port"])
    for cls in SECTIONS:
        assert cls.__dataclass_params__.frozen
        assert cls.__init__.__module__ == "pipeline.core.frozen", cls


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_a_config_section_behaves_as_the_standard_frozen_dataclass(cls):
    std = twin(cls)
    ours, theirs = cls(**required(cls)), std(**required(cls))
    assert repr(ours) == repr(theirs)
    assert dataclasses.asdict(ours) == dataclasses.asdict(theirs)
    assert outcome(lambda: hash(ours)) == outcome(lambda: hash(theirs))  # (a dict field: TypeError in both)
    assert ours == cls(**required(cls)) and not ours != cls(**required(cls))
    assert ours != theirs and theirs != ours  # another class: never equal
    values = [getattr(ours, f.name) for f in dataclasses.fields(cls)]
    assert repr(cls(*values)) == repr(std(*values))
    for f in dataclasses.fields(cls):  # one field changed: unequal; as keyword and by replace()
        other = object()
        assert cls(**{**required(cls), f.name: other}) != ours
        assert getattr(dataclasses.replace(ours, **{f.name: other}), f.name) is other
        for attempt in (lambda o: setattr(o, f.name, 1), lambda o: delattr(o, f.name)):
            assert outcome(lambda: attempt(ours))[:2] == outcome(lambda: attempt(theirs))[:2] \
                == ("error", dataclasses.FrozenInstanceError)
    # default factories run once per instance, defaults are shared, as the generated __init__ does
    again, theirs_again = cls(**required(cls)), std(**required(cls))
    for f in dataclasses.fields(cls):
        assert (getattr(again, f.name) is getattr(ours, f.name)) == (getattr(theirs_again, f.name) is getattr(theirs, f.name))
    # wrong calls: the same TypeError, word for word
    n = len(dataclasses.fields(cls))
    first = dataclasses.fields(cls)[0].name
    for args, kwargs in (([None] * (n + 1), {}), ([], {"no_such_setting": 1}), ([None], {first: None})):
        assert outcome(lambda: cls(*args, **kwargs)) == outcome(lambda: std(*args, **kwargs))


def test_every_kind_of_field_and_a_post_init():
    def build(decorate, made):
        class Sample:
            a: int
            b: str
            c: list = dataclasses.field(default_factory=list)
            d: int = dataclasses.field(default=4, repr=False)
            e: int = dataclasses.field(default=5, compare=False)
            f: int = dataclasses.field(default=6, hash=False)
            g: int = dataclasses.field(default=7, init=False)

            def __post_init__(self):
                made.append((self.a, self.g))

        return decorate(Sample)

    made_ours, made_std = [], []
    ours, std = build(frozen_dataclass, made_ours), build(dataclasses.dataclass(frozen=True), made_std)
    for args, kwargs in (((1, "x"), {}), ((1,), {"b": "y", "e": 9}), ((), {"a": 2, "b": "z", "c": [1]})):
        assert repr(ours(*args, **kwargs)) == repr(std(*args, **kwargs))
        assert ours(*args, **kwargs) == ours(*args, **{**kwargs, "e": 99})  # e is not compared
    assert ours(1, "x", [], 4, 5, 6).g == 7
    assert hash(ours(1, "x", (), 4, 5, 6)) == hash(std(1, "x", (), 4, 5, 6)) == hash(ours(1, "x", (), 4, 8, 9))
    assert ours(1, "x") != ours(1, "x", d=0) and ours(1, "x") != ours(2, "x")
    assert made_ours[0] == made_std[0] == (1, 7) and {g for _, g in made_ours} == {7}  # after every field is set
    for args, kwargs in (((), {}), ((1,), {}), ((1, "x", [], 1, 2, 3, 4), {}), ((1, "x"), {"g": 1}),
                         ((1,), {"a": 1, "b": "x"}), ((), {"b": "x"}), ((1, 2, 3, 4, 5, 6, 7, 8), {"z": 1})):
        assert outcome(lambda: ours(*args, **kwargs)) == outcome(lambda: std(*args, **kwargs)), (args, kwargs)

    def three_required(decorate):
        class Three:
            x: int
            y: int
            z: int
        return decorate(Three)

    assert outcome(three_required(frozen_dataclass)) == outcome(three_required(dataclasses.dataclass(frozen=True)))

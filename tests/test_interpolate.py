"""Interpolation rendering and context rules, as DVC implements them."""

from __future__ import annotations

import pytest

from pivot.frontends.interpolate import (
    Context,
    ExpressionError,
    MergeConflict,
    MissingKey,
    ReservedKeys,
    VarsAlreadyLoaded,
    dict_to_flags,
    parse_expression,
    to_str,
)


def make(**data):
    ctx = Context()
    ctx.merge(data, "params.yaml")
    return ctx


@pytest.mark.parametrize(
    "value, text",
    [(True, "true"), (False, "false"), (None, "None"), (0.1, "0.1"), (1e-5, "1e-05"), (1000.0, "1000.0"), (7, "7")],
)
def test_to_str(value, text):
    assert to_str(value) == text


@pytest.mark.parametrize(
    "inner, normalised",
    [("a.b", "a.b"), ("a[0].b", "a.0.b"), (" a.b ", " a.b "), ("a[0][1]", "a.0.1"), ("a [ 0 ] . b", "a . 0 . b")],
)
def test_parse_expression(inner, normalised):
    assert parse_expression(inner) == normalised


@pytest.mark.parametrize("inner", ["", "a..b", "a[", ".a", "a.", "a[0]b"])
def test_parse_expression_errors(inner):
    with pytest.raises(ExpressionError, match="ParseException"):
        parse_expression(inner)


def test_whole_value_keeps_type_and_string_renders():
    ctx = make(flag=True, n=3, lr=1e-5, models=[{"name": "cnn"}])
    assert ctx.resolve_str("${flag}") is True
    assert ctx.resolve_str("${n}") == 3
    assert ctx.resolve_str("--lr ${lr} --on ${flag} ${models[0].name}") == "--lr 1e-05 --on true cnn"
    assert ctx.resolve_str("${ models.0.name }") == "cnn"


def test_escape_and_missing_key():
    ctx = make(v=1)
    assert ctx.resolve_str(r"echo \${notvar} ${v}") == "echo ${notvar} 1"
    with pytest.raises(MissingKey, match="Could not find 'models.foobar'"):
        ctx.resolve_str("${models.foobar}")


def test_lists_and_dicts_only_where_dvc_allows_them():
    ctx = make(lst=[1, 2], d={"epochs": 2})
    with pytest.raises(ExpressionError, match="Cannot interpolate data of type 'list'"):
        ctx.resolve("echo ${lst}", "cmd")
    assert ctx.resolve("train ${d}", "cmd") == "train --epochs 2"
    with pytest.raises(ExpressionError, match="type 'dict'"):
        ctx.resolve(["out-${d}"], "outs")


def test_dict_flags_follow_parsing_config():
    data = {"v": True, "q": False, "l": [1, "a b"], "s": "x y", "n": None, "o": {"k": 1}}
    assert dict_to_flags(data, {}) == "--v --l 1 'a b' --s 'x y' --n None --o.k 1"
    assert dict_to_flags(data, {"bool": "boolean_optional", "list": "append"}) == (
        "--v --no-q --l 1 --l 'a b' --s 'x y' --n None --o.k 1"
    )
    with pytest.raises(ExpressionError, match="nested iterable in 'l'"):
        dict_to_flags({"l": [[1]]}, {})


def test_merge_is_recursive_and_never_overrides():
    ctx = make(models={"a": 1})
    ctx.merge({"models": {"b": 2}}, "vars[0]")
    assert ctx.select("models.b") == 2
    with pytest.raises(MergeConflict, match="cannot redefine 'models.a' from 'vars\\[1\\]' as it already exists in 'params.yaml'"):
        ctx.merge({"models": {"a": 3}}, "vars[1]")


def test_clone_does_not_leak_into_parent():
    parent = make(models={"a": 1})
    child = parent.clone()
    child.merge({"models": {"b": 2}}, "s.vars[0]")
    assert child.select("models.b") == 2
    with pytest.raises(MissingKey):
        parent.select("models.b")


def test_non_string_keys_are_dropped():
    ctx = make(years={2021: "a", "y2022": "b"})
    assert ctx.select("years") == {"y2022": "b"}


def test_partial_and_whole_loads():
    files = {"p.yaml": {"a": 1, "b": 2}}
    ctx = Context()
    ctx.merge_file("p.yaml:a", ".", files.__getitem__)
    ctx.merge_file("p.yaml:b", ".", files.__getitem__)
    with pytest.raises(VarsAlreadyLoaded, match="cannot load 'p.yaml' as it's partially loaded already"):
        ctx.merge_file("p.yaml", ".", files.__getitem__)
    whole = Context()
    whole.merge_file("p.yaml", ".", files.__getitem__)
    whole.merge_file("p.yaml", ".", files.__getitem__)  # the same whole file twice is fine
    with pytest.raises(VarsAlreadyLoaded, match="cannot partially load"):
        whole.merge_file("p.yaml:a", ".", files.__getitem__)


def test_reserved_keys_while_iterating():
    ctx = make(x=1)
    previous = ctx.set_temporarily({"item": "m1"})
    with pytest.raises(ReservedKeys, match="attempted to modify reserved key item"):
        ctx.merge({"item": 2}, "build@m1.vars[0]")
    ctx.restore(previous)
    with pytest.raises(MissingKey):
        ctx.select("item")

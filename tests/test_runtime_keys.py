"""Key expressions: names, the session in the key, reading keys back, wildcard matching."""

from __future__ import annotations

import pytest

from clusterstate.runtime.errors import InvalidNameError
from clusterstate.runtime.keys import Keys, Session, matches


def test_keys() -> None:
    k = Keys("lab")
    s = Session(3, "n1")
    assert k.member("n2") == "cs/lab/v1/member/n2"
    assert k.master(s) == "cs/lab/v1/master/3/n1"
    assert k.global_(s) == "cs/lab/v1/s/3/n1/global"
    assert k.ack(s, "n2") == "cs/lab/v1/s/3/n1/ack/n2"
    assert k.events(s) == "cs/lab/v1/s/3/n1/events"
    assert k.member_of(k.member("12D3KooW.x:y_z-1")) == "12D3KooW.x:y_z-1"
    assert k.session_of(k.master(s)) == s
    assert k.session_of(k.member("n1")) is None
    assert k.member_of("cs/other/v1/member/n1") is None
    assert matches(k.masters(), k.master(s))
    assert matches(k.members(), k.member("n1"))
    assert matches(k.progresses(s), k.progress(s, "n4"))
    # A deposed master's session keys do not match the new session's subscriptions.
    assert not matches(k.global_(Session(4, "n2")), k.global_(s))
    assert not matches(k.progresses(Session(4, "n1")), k.progress(s, "n4"))


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("a/*/c", "a/b/c", True),
        ("a/*/c", "a/c", False),
        ("a/**", "a", True),
        ("a/**/d", "a/b/c/d", True),
        ("a/**/d", "a/b/c", False),
        ("a/b", "a/b/c", False),
    ],
)
def test_matches(pattern: str, key: str, expected: bool) -> None:
    assert matches(pattern, key) is expected


@pytest.mark.parametrize("bad", ["", "a/b", "*", "**", "a$b", "a?", "a#b", "a b", "-lead", "x" * 129, "é"])
def test_bad_names_are_typed_errors_naming_the_value(bad: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        Keys(bad)
    assert info.value.value == bad
    assert repr(bad) in str(info.value)
    with pytest.raises(InvalidNameError, match="invalid node id"):
        Keys("ok").member(bad)
    with pytest.raises(InvalidNameError):
        Session(1, bad)

"""Label selector parsing and matching, with cases ported from k8s.io/apimachinery
``pkg/labels/selector_test.go`` (TestSelectorParse, TestSelectorMatches, TestLexer,
TestSetSelectorParser, TestToString, TestRequirementConstructor, TestRequirementSelectorMatching,
TestRequiresExactMatch) and ``pkg/api/validate/content`` label key/value rules."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from core.selectors import (
    EVERYTHING,
    MAX_SELECTOR_LENGTH,
    LabelSelectorError,
    Operator,
    Requirement,
    Selector,
    parse_selector,
    selector_from_labels,
    validate_label_key,
    validate_label_value,
)

EQ, EQ2, NE = Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS
IN, NOTIN, EXISTS, DNE = Operator.IN, Operator.NOT_IN, Operator.EXISTS, Operator.DOES_NOT_EXIST
GT, LT = Operator.GREATER_THAN, Operator.LESS_THAN


def req(key: str, op: str, *values: str) -> Requirement:
    return Requirement(key, op, values)


# TestSelectorParse: good strings print back as themselves once spaces are removed (upstream's
# check), plus set-based forms whose canonical spelling keeps its spaces.
@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("x=a,y=b,z=c", None),
        ("", None),
        ("x!=a,y=b", None),
        ("x=", None),
        ("x= ", None),
        ("x=,z= ", None),
        ("x= ,z= ", None),
        ("!x", None),
        ("x>1", None),
        ("x>1,z<5", None),
        ("x==a", None),
        ("x in (a,b)", "x in (a,b)"),
        ("x notin (a)", "x notin (a)"),
        ("x in(b , a)", "x in (a,b)"),
        ("  x  notin  (  )  ", "x notin ()"),
    ],
)
def test_good_selectors_round_trip(text: str, canonical: str | None) -> None:
    expected = text.replace(" ", "") if canonical is None else canonical
    assert str(parse_selector(text)) == expected
    assert str(parse_selector(expected)) == expected


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        # TestSelectorParse bad strings
        ("x=a||y=b", "'a||y'"),
        ("x==a==b", "'=='"),
        ("!x=a", "'='"),
        ("x<a", "'a'"),
        # TestSetSelectorParser invalid rows
        ("x,,y", "','"),
        (",x,y", "','"),
        ("x nott in (y)", "'nott'"),
        ("a in (xyz),", "end of string"),
        ("a in (xyz)b notin ()", "'b'"),
        ("a in (xyz abc)", "'abc'"),
        ("a notin(", "end of string"),
        ("a (", "'('"),
        ("(", "'('"),
        # more broken shapes: dangling operators, doubled negation, missing parentheses
        ("x in", "end of string"),
        ("x in a", "'a'"),
        ("x in (a", "end of string"),
        ("x in (a,", "end of string"),
        ("x in (a,=)", "'='"),
        ("x in ((a))", "'('"),
        ("x=(a)", "'('"),
        ("x=a b", "'b'"),
        ("=a", "'='"),
        ("!", "end of string"),
        ("!!x", "'!'"),
        ("!x in (a)", "'in'"),
        ("x,", "end of string"),
        ("x<=1", "'='"),
        ("x=>1", "'>'"),
        (")", "')'"),
        # '>' and '<' need an int64 that is also a valid label value
        ("x>", "''"),
        ("x>1.5", "'1.5'"),
        ("x>-1", "'-1'"),
        ("x>+1", "'+1'"),
        ("x<99999999999999999999", "'99999999999999999999'"),
        ("x>(1)", "'('"),
        # invalid keys
        ("-x", "'-x'"),
        ("x-", "'x-'"),
        ("a/b/c", "'a/b/c'"),
        ("/a", "'/a'"),
        ("a/", "'a/'"),
        ("Example.com/a", "'Example.com/a'"),
        ("exa_mple.com/a", "'exa_mple.com/a'"),
        ("x" * 64, "'" + "x" * 64),
        ("x y", "'y'"),
        ("k\u00e9y", "'k\u00e9y'"),
        # invalid values
        ("x=-a", "'-a'"),
        ("x=a_", "'a_'"),
        ("x=a/b", "'a/b'"),
        ("x in (a,b c)", "'c'"),
        ("x in (a, -b)", "'-b'"),
        ("x=" + "v" * 64, "'" + "v" * 64),
        # a NUL byte is part of a token here; upstream would silently stop reading at it
        ("x=a\x00,y=b", "'a\\x00'"),
    ],
)
def test_bad_selectors(text: str, quoted: str) -> None:
    with pytest.raises(LabelSelectorError) as caught:
        parse_selector(text)
    assert quoted in str(caught.value)


def test_length_cap() -> None:
    # the longest accepted input: "xx,x,x,...", exactly at the limit
    longest = "xx" + ",x" * (MAX_SELECTOR_LENGTH // 2 - 1)
    assert len(longest) == MAX_SELECTOR_LENGTH
    assert len(parse_selector(longest).requirements) == MAX_SELECTOR_LENGTH // 2
    with pytest.raises(LabelSelectorError, match="10001 characters"):
        parse_selector("x" * (MAX_SELECTOR_LENGTH + 1))


def test_errors_quote_only_a_bounded_part() -> None:
    with pytest.raises(LabelSelectorError) as caught:
        parse_selector("x=" + "-" * 5000)
    assert len(str(caught.value)) < 1000


# TestSetSelectorParser valid rows (and more): the parsed requirements, sorted by key, values sorted
# and deduplicated, empty list entries standing for the empty value.
@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("", []),
        ("   \t\n ", []),
        ("\rx", [req("x", EXISTS)]),
        (
            "this-is-a-dns.domain.com/key-with-dash",
            [req("this-is-a-dns.domain.com/key-with-dash", EXISTS)],
        ),
        (
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            [req("this-is-another-dns.domain.com/key-with-dash", IN, "so", "what")],
        ),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            [req("0.1.2.domain/99", NOTIN, "10.10.100.1", "tick.tack.clock")],
        ),
        ("foo  in\t (abc)", [req("foo", IN, "abc")]),
        ("x notin\n (abc)", [req("x", NOTIN, "abc")]),
        ("x  notin\t\t(abc,def)", [req("x", NOTIN, "abc", "def")]),
        ("x in (abc,def)", [req("x", IN, "abc", "def")]),
        ("x in (abc,)", [req("x", IN, "", "abc")]),
        ("x in (abc,abc)", [req("x", IN, "abc")]),
        ("x in ()", [req("x", IN, "")]),
        ("x in (a,,)", [req("x", IN, "", "a")]),
        ("x in (a,,,)", [req("x", IN, "", "a")]),
        ("x in (a,,,,,,)", [req("x", IN, "", "a")]),
        ("x in (a,,a,,a,,a,,)", [req("x", IN, "", "a")]),
        ("x in (,)", [req("x", IN, "")]),
        ("x in (,a)", [req("x", IN, "", "a")]),
        ("x in (b,a)", [req("x", IN, "a", "b")]),
        (
            "x notin (abc,,def),bar,z in (),w",
            [req("bar", EXISTS), req("w", EXISTS), req("x", NOTIN, "", "abc", "def"), req("z", IN, "")],
        ),
        ("x,y in (a)", [req("x", EXISTS), req("y", IN, "a")]),
        ("x=a", [req("x", EQ, "a")]),
        ("x>1", [req("x", GT, "1")]),
        ("x<7", [req("x", LT, "7")]),
        ("x>01", [req("x", GT, "01")]),
        ("x=a,y!=b", [req("x", EQ, "a"), req("y", NE, "b")]),
        ("x=a,y!=b,z in (h,i,j)", [req("x", EQ, "a"), req("y", NE, "b"), req("z", IN, "h", "i", "j")]),
        ("x notin ( )", [req("x", NOTIN, "")]),
        ("x notin (, a)", [req("x", NOTIN, "", "a")]),
        ("a ", [req("a", EXISTS)]),
        # 'in' and 'notin' are plain words where a key or value is expected
        ("a in (x,y,notin, z,in)", [req("a", IN, "in", "notin", "x", "y", "z")]),
        ("notin=in", [req("notin", EQ, "in")]),
        ("in in (in)", [req("in", IN, "in")]),
        ("in", [req("in", EXISTS)]),
        ("!notin", [req("notin", DNE)]),
        # tokens need no spaces between them
        ("x in(a)", [req("x", IN, "a")]),
        ("x!=a,!y", [req("x", NE, "a"), req("y", DNE)]),
        ("! x", [req("x", DNE)]),
        ("x = a , y == b", [req("x", EQ, "a"), req("y", EQ2, "b")]),
        # requirements are sorted by key; several on one key keep their order
        ("z=1,a=2,m", [req("a", EQ, "2"), req("m", EXISTS), req("z", EQ, "1")]),
        ("x!=a,x", [req("x", NE, "a"), req("x", EXISTS)]),
        # longest valid key and value
        ("p.example.com/" + "k" * 63 + "=" + "v" * 63, [req("p.example.com/" + "k" * 63, EQ, "v" * 63)]),
        ("a.b_c-d=E.f_G-9", [req("a.b_c-d", EQ, "E.f_G-9")]),
    ],
)
def test_parse_structure(text: str, requirements: list[Requirement]) -> None:
    assert parse_selector(text).requirements == tuple(requirements)


def test_deterministic_order() -> None:
    # TestDeterministicParse
    assert str(parse_selector("x=a,a=x")) == str(parse_selector("a=x,x=a")) == "a=x,x=a"
    assert parse_selector("x=a,a=x") == parse_selector("a=x,x=a")


# TestToString, plus the canonical string of parsed input.
@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        (
            [req("x", IN, "abc", "def"), req("y", NOTIN, "jkl"), req("z", EXISTS)],
            "x in (abc,def),y notin (jkl),z",
        ),
        ([req("x", NOTIN, "abc", "def"), req("y", NE, "jkl"), req("z", DNE)], "x notin (abc,def),y!=jkl,!z"),
        (
            [req("x", NOTIN, "abc"), req("y", IN, "jkl", "mno"), req("z", NOTIN, "")],
            "x notin (abc),y in (jkl,mno),z notin ()",
        ),
        (
            [req("x", EQ, "abc"), req("y", EQ2, "jkl"), req("z", NE, "a"), req("z", EXISTS)],
            "x=abc,y==jkl,z!=a,z",
        ),
        ([req("x", GT, "2"), req("y", LT, "8"), req("z", EXISTS)], "x>2,y<8,z"),
        # values print sorted whatever order they were given in; keys too
        ([req("y", IN, "b", "a", "c"), req("x", EQ, "")], "x=,y in (a,b,c)"),
        ([], ""),
    ],
)
def test_to_string(requirements: list[Requirement], expected: str) -> None:
    selector = Selector(tuple(requirements))
    assert str(selector) == expected
    assert parse_selector(expected) == Selector(
        tuple(Requirement(r.key, r.operator, tuple(sorted(set(r.values)))) for r in requirements)
    )


# TestRequirementConstructor: what validation accepts and refuses, with the part the message must quote.
@pytest.mark.parametrize(
    ("key", "op", "values", "quoted"),
    [
        ("x1", IN, (), "'x1'"),
        ("x2", NOTIN, (), "'x2'"),
        ("x3", IN, ("foo",), None),
        ("x4", NOTIN, ("foo",), None),
        ("x5", EQ, ("bar", "foo"), "'x5'"),
        ("x6", EXISTS, (), None),
        ("x7", DNE, (), None),
        ("x8", EXISTS, ("foo",), "'x8'"),
        ("x9", IN, ("bar",), None),
        ("x10", IN, ("bar",), None),
        ("x11", GT, ("1",), None),
        ("x12", LT, ("6",), None),
        ("x13", GT, (), "'x13'"),
        ("x14", GT, ("bar",), "'bar'"),
        ("x15", LT, ("bar",), "'bar'"),
        ("a" * 254, EXISTS, (), "'" + "a" * 20),
        ("x16", EQ, ("a" * 254,), "'" + "a" * 20),
        ("x17", EQ, ("a b",), "'a b'"),
        ("x18", "unsupportedOp", (), "'unsupportedOp'"),
        # more counts and bounds
        ("x19", NE, (), "'x19'"),
        ("x20", EQ2, ("a", "b"), "'x20'"),
        ("x21", DNE, ("a",), "'x21'"),
        ("x22", LT, ("1", "2"), "'x22'"),
        ("x23", GT, ("9223372036854775807",), None),
        ("x24", GT, ("9223372036854775808",), "'9223372036854775808'"),
        ("x25", EQ, ("",), None),
        ("x26", IN, ("", "a"), None),
        ("x27", EQ, ("a" * 63,), None),
        ("x28", EQ, ("a" * 64,), "'" + "a" * 20),
        ("k" * 63, EXISTS, (), None),
        ("k" * 64, EXISTS, (), "'" + "k" * 20),
        ("", EXISTS, (), "''"),
        ("example.com/" + "k" * 63, EXISTS, (), None),
        ("e" * 253 + "/k", EXISTS, (), None),
        ("e" * 254 + "/k", EXISTS, (), "253"),
        # the operator may be given as its upstream string
        ("x29", "gt", ("5",), None),
        ("x30", "notin", ("a",), None),
        ("x31", ">", ("5",), "'>'"),
    ],
)
def test_requirement_constructor(key: str, op: str, values: tuple[str, ...], quoted: str | None) -> None:
    if quoted is None:
        requirement = Requirement(key, op, values)
        assert requirement.operator == Operator(op)
        assert isinstance(requirement.operator, Operator)
    else:
        with pytest.raises(LabelSelectorError) as caught:
            Requirement(key, op, values)
        assert quoted in str(caught.value)


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("a", True),
        ("A", True),
        ("1", True),
        ("MyName", True),
        ("my.name", True),
        ("123-abc", True),
        ("a_b", True),
        ("example.com/MyName", True),
        ("a-b.c-d/e", True),
        ("_a", False),
        ("a.", False),
        ("a b", False),
        ("", False),
        ("/", False),
        ("example.com/", False),
        ("-example.com/a", False),
        ("example..com/a", False),
        ("a/b/c", False),
        ("a\n", False),
    ],
)
def test_label_key_rules(key: str, valid: bool) -> None:
    assert (validate_label_key(key) == []) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("", True),
        ("a", True),
        ("MyValue", True),
        ("my_value", True),
        ("12345", True),
        ("a.b-c_d", True),
        ("v" * 63, True),
        ("v" * 64, False),
        ("-a", False),
        ("a-", False),
        ("a b", False),
        ("a/b", False),
        ("a\n", False),
        ("\u00e9", False),
    ],
)
def test_label_value_rules(value: str, valid: bool) -> None:
    assert (validate_label_value(value) == []) is valid


# TestSelectorMatches and TestRequirementSelectorMatching, plus the absent-label rules.
@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {"x": "y"}, True),
        ("", {}, True),
        ("x=y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x", {"x": "z"}, True),
        ("!x", {"y": "z"}, True),
        ("x>1", {"x": "2"}, True),
        ("x<1", {"x": "0"}, True),
        ("x=z", {}, False),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x", {"y": "z"}, False),
        ("!x", {"x": "z"}, False),
        ("x>1", {"x": "0"}, False),
        ("x<1", {"x": "2"}, False),
        ("foo=bar", {"foo": "bar", "baz": "blah"}, True),
        ("baz=blah", {"foo": "bar", "baz": "blah"}, True),
        ("foo=bar,baz=blah", {"foo": "bar", "baz": "blah"}, True),
        ("foo=blah", {"foo": "bar", "baz": "blah"}, False),
        ("baz=bar", {"foo": "bar", "baz": "blah"}, False),
        ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
        ("x in (foo),y notin (alpha)", {"x": "foo", "y": "baz"}, True),
        ("x in (foo),y in (alpha)", {"x": "foo", "y": "baz"}, False),
        ("x notin (),y", {"y": ""}, True),
        ("!x,y", {"y": ""}, True),
        ("x notin (),!y", {"y": ""}, False),
        ("x in ()", {"y": "baz"}, False),
        ("z>1", {"z": "2"}, True),
        ("z>1", {"z": "v2"}, False),
        # '!=' and 'notin' match when the label is absent; '=', '==' and 'in' do not
        ("x!=a", {}, True),
        ("x notin (a,b)", {}, True),
        ("x==a", {}, False),
        ("x in (a,b)", {}, False),
        ("x notin (a,b)", {"x": "b"}, False),
        ("x in (a,b)", {"x": "b"}, True),
        ("x in ()", {"x": ""}, True),
        ("x=", {"x": ""}, True),
        ("x=", {}, False),
        ("x!=", {"x": ""}, False),
        # '>' and '<' need the label present and an int64 in it
        ("x>1", {}, False),
        ("x<1", {}, False),
        ("x<1", {"x": "-5"}, True),
        ("x>1", {"x": "+2"}, True),
        ("x>1", {"x": "1"}, False),
        ("x<2", {"x": "1.5"}, False),
        ("x>1", {"x": " 2"}, False),
        ("x>1", {"x": "1_000"}, False),
        ("x>1", {"x": "\u0662"}, False),
        ("x>1", {"x": "9223372036854775808"}, False),
        ("x>1", {"x": "9223372036854775807"}, True),
        ("x<0", {"x": "-9223372036854775808"}, True),
        ("x>007", {"x": "8"}, True),
        # conflicting requirements on one key match nothing
        ("x=a,x=b", {"x": "a"}, False),
        ("x,!x", {"x": "a"}, False),
        ("x,!x", {}, False),
    ],
)
def test_matches(text: str, labels: Mapping[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


def test_empty_selectors() -> None:
    assert parse_selector("").is_empty()
    assert parse_selector(" ").is_empty()
    assert EVERYTHING.is_empty()
    assert EVERYTHING.matches({"x": "y"})
    assert not parse_selector("x").is_empty()
    assert not parse_selector("!x").is_empty()


# TestRequiresExactMatch, as the set of labels a selector pins.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("key in (value)", {"key": "value"}),
        ("key in (value,value2)", {}),
        ("key in (value,value1),key2 in (value2)", {"key2": "value2"}),
        ("key=value", {"key": "value"}),
        ("key==value", {"key": "value"}),
        ("key!=value", {}),
        ("key in (value),key2 in (value2)", {"key": "value", "key2": "value2"}),
        ("key", {}),
        ("!key", {}),
        ("key>1", {}),
        ("key notin (a)", {}),
        ("key=", {"key": ""}),
        ("key in ()", {"key": ""}),
        # pinned by one requirement and merely restricted by another
        ("key,key=value", {"key": "value"}),
        ("key=value,key in (value,other)", {"key": "value"}),
        # the same pin twice is still a pin; two different pins cannot both hold
        ("key=value,key in (value)", {"key": "value"}),
        ("key=a,key=b,other=c", {"other": "c"}),
    ],
)
def test_equality_labels(text: str, expected: dict[str, str]) -> None:
    assert parse_selector(text).equality_labels() == expected


@pytest.mark.parametrize(
    ("text", "keys", "expected"),
    [
        ("cluster=adhoc,queue=etl", {"cluster"}, "cluster=adhoc"),
        ("cluster=adhoc,queue=etl", {"cluster", "queue"}, "cluster=adhoc,queue=etl"),
        ("cluster=adhoc,queue=etl", set(), ""),
        ("cluster=adhoc,!queue", {"queue": "x"}, "!queue"),
        ("", {"cluster"}, ""),
        ("a,b,c in (x)", ["c", "a"], "a,c in (x)"),
    ],
)
def test_restricted_to(text: str, keys: set[str] | dict[str, str] | list[str], expected: str) -> None:
    restricted = parse_selector(text).restricted_to(keys)
    assert isinstance(restricted, Selector)
    assert str(restricted) == expected


def test_restricted_selector_decides_which_sources_can_match() -> None:
    # A source labelled only by cluster can serve "cluster=adhoc,queue=etl" but not "cluster=batch,..."
    source = {"cluster": "adhoc"}
    assert parse_selector("cluster=adhoc,queue=etl").restricted_to(source).matches(source)
    assert not parse_selector("cluster=batch,queue=etl").restricted_to(source).matches(source)
    assert parse_selector("queue=etl").restricted_to(source).matches(source)


def test_values_are_hashable_and_immutable() -> None:
    # the API server caches parsed selectors by their text, so they must hash and never change
    selector = parse_selector("x in (a,b),y")
    assert hash(selector) == hash(parse_selector("y,x in (b,a)"))
    assert {selector: 1}[parse_selector("x in (b,a),y")] == 1
    with pytest.raises(AttributeError):
        selector.requirements = ()  # type: ignore[misc]


def test_selector_from_labels() -> None:
    selector = selector_from_labels({"queue": "etl", "cluster": "adhoc"})
    assert str(selector) == "cluster=adhoc,queue=etl"
    assert selector.matches({"cluster": "adhoc", "queue": "etl", "extra": "x"})
    assert not selector.matches({"cluster": "adhoc"})
    assert selector_from_labels({}).is_empty()
    with pytest.raises(LabelSelectorError):
        selector_from_labels({"cluster": "not valid"})


def test_parse_and_match_many_without_error() -> None:
    # Every canonical string of a small generated family parses back to an equal selector.
    keys = ["a", "b.example.com/c", "in"]
    shapes = ["{k}", "!{k}", "{k}=v", "{k}==v", "{k}!=", "{k} in (v,w)", "{k} notin ()", "{k}>3", "{k}<-0"]
    count = 0
    for first in keys:
        for second in keys:
            for s1 in shapes:
                for s2 in shapes:
                    text = s1.format(k=first) + "," + s2.format(k=second)
                    if "-0" in text:
                        with pytest.raises(LabelSelectorError):
                            parse_selector(text)
                        continue
                    selector = parse_selector(text)
                    assert parse_selector(str(selector)) == selector
                    count += 1
    assert count == len(keys) ** 2 * (len(shapes) - 1) ** 2

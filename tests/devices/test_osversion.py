import itertools

import pytest

from devices.osversion import OSVersion, UnparseableVersion, parse_build, parse_version

ORDERED_VERSIONS = ["10.9", "10.10", "10.12.4", "10.15.7", "11", "11.0.1", "12.7.6", "13.4.1", "13.4.1 (a)",
                    "13.4.1 (c)", "13.5", "14.7.1", "14.7.1 (a)", "14.7.2", "15.0", "15.0.1", "15.1", "26.0"]


@pytest.mark.parametrize("lower,higher", list(itertools.pairwise(ORDERED_VERSIONS)))
def test_versions_order_as_apple_numbers_them(lower, higher):
    assert parse_version(lower) < parse_version(higher)


def test_the_whole_chain_sorts():
    shuffled = list(reversed(ORDERED_VERSIONS))
    assert sorted(shuffled, key=parse_version) == ORDERED_VERSIONS


@pytest.mark.parametrize("a,b", [
    ("15", "15.0"), ("15.0", "15.0.0"), ("14.7.1", "macOS 14.7.1"), ("10.12.4", "Mac OS X 10.12.4"),
    ("14.7.1", "14.7.1 (23H222)"), ("14.7.1 (a)", "14.7.1 (a) (23H222a)"), (" 15.1 ", "15.1"),
])
def test_equivalent_spellings(a, b):
    assert parse_version(a) == parse_version(b)


def test_rsr_sorts_after_its_release_and_before_the_next():
    assert parse_version("14.7.1") < parse_version("14.7.1 (a)") < parse_version("14.7.1 (b)") < parse_version(
        "14.7.2")
    assert parse_version("14.7.1 (a)") == OSVersion(14, 7, 1, 1)
    assert str(parse_version("14.7.1 (b)")) == "14.7.1 (b)"


@pytest.mark.parametrize("text", ["", None, "unknown", "15.1 beta", "fifteen", "14..1", "14.7.1 (ab)", "1.2.3.4.5",
                                  "10.12.4.1", "15.1-RC"])
def test_unparseable_versions_raise(text):
    with pytest.raises(UnparseableVersion):
        parse_version(text)


def test_a_trailing_zero_fourth_part_is_tolerated():
    assert parse_version("14.7.1.0") == parse_version("14.7.1")


ORDERED_BUILDS = ["19H2", "20G1120", "21H1320", "22E252", "22E772610a", "22F66", "22G830", "23H222", "24A348",
                  "24B83", "24B91"]


@pytest.mark.parametrize("lower,higher", list(itertools.pairwise(ORDERED_BUILDS)))
def test_builds_order(lower, higher):
    assert parse_build(lower) < parse_build(higher)


def test_build_numbers_compare_numerically_not_as_text():
    assert parse_build("23H9") < parse_build("23H10")
    assert parse_build("9A1") < parse_build("10A1")


@pytest.mark.parametrize("text", ["", None, "23h222", "H222", "23H", "14.7.1", "23H222ab"])
def test_unparseable_builds_raise(text):
    with pytest.raises(UnparseableVersion):
        parse_build(text)

"""Java's String.hashCode, one string at a time and vectorised, against Java's values."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.java_hash import java_string_hash, java_string_hashes

INT_MIN = -(2**31)


def reference_hash(text):
    """Java's String.hashCode written out: UTF-16 units, h = 31h + u mod 2**32."""
    units = []
    for ch in text:
        cp = ord(ch)
        if cp > 0xFFFF:
            cp -= 0x10000
            units += [0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)]
        else:
            units.append(cp)
    h = 0
    for u in units:
        h = (31 * h + u) % 2**32
    return h - 2**32 if h >= 2**31 else h


@pytest.mark.parametrize("text, expected", [
    ("", 0),
    ("a", 97),
    ("hello", 99162322),
    ("Hello", 69609650),
    ("polygenelubricants", INT_MIN),
    ("été", 227742),
    ("😀", 1772899),
    ("a😀b", 57849694),
    # Nakadi's StringHashTest vectors
    ("<><%?>#<)#%(<*J%H\n\n)R&#89hb678n(*njyih48p3u bn7\t843h 743h yh", -706818463),
    ("vcnvbjfji  b bn    vhfufh47---=--++_)9 u48 4", 1046847700),
    ("❂◥ ✙ ┒bn↿☺ r☺⃐▕   ➀ ❸☋⃑ ├⒦  ❏ ⍘➍⑩Ⓝ☃⍎∆ ┏ ✉ ℛ", -1030241478),
])
def test_java_string_hash_matches_java(text, expected):
    assert java_string_hash(text) == expected


def test_java_string_hash_counts_a_surrogate_pair_as_two_units():
    assert java_string_hash("😀") == 31 * 0xD83D + 0xDE00


@given(st.text(st.characters(blacklist_categories=())))
def test_java_string_hash_matches_reference(text):
    assert java_string_hash(text) == reference_hash(text)



texts = st.text(st.characters(blacklist_categories=()))


@given(st.lists(texts, max_size=40))
def test_java_string_hashes_of_a_batch_equal_one_by_one(batch):
    assert java_string_hashes(batch).tolist() == [java_string_hash(text) for text in batch]


def test_java_string_hashes_of_long_and_empty_strings():
    batch = ["", "x" * 100_000, "polygenelubricants", "", "😀" * 5000] * 3
    assert java_string_hashes(batch).tolist() == [java_string_hash(text) for text in batch]
    assert java_string_hashes([]).tolist() == []


def test_java_string_hashes_of_empty_strings_are_zero():
    assert java_string_hashes([""] * 30).tolist() == [0] * 30


@given(st.lists(texts, min_size=1, max_size=30), st.integers(1, 300))
def test_java_string_hashes_pad_short_strings_without_changing_them(batch, extra):
    # One string much longer than the rest: padded up to it, or hashed one by one.
    batch = [*batch, "\0" * extra + "k" * (extra * 40)]
    assert java_string_hashes(batch).tolist() == [java_string_hash(text) for text in batch]

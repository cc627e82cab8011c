"""Random codes: shapes, uniform letters, and no shared bytes across a fork."""

from __future__ import annotations

import os
import re
from collections import Counter

from pairflow.oauth.codes import (
    BASE62,
    USER_CODE_ALPHABET,
    new_device_code,
    new_pairing_code,
    new_refresh_token,
    new_user_code,
    new_uuid,
    random_bytes,
    random_string,
)


def test_codes_have_their_documented_shapes() -> None:
    assert re.fullmatch(r"[A-Za-z0-9]{12}", new_pairing_code())
    assert re.fullmatch(r"[A-Z]{8}", new_user_code()) and set(new_user_code()) <= set(USER_CODE_ALPHABET)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", new_device_code())
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", new_refresh_token())
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", new_uuid())


def test_values_do_not_repeat() -> None:
    drawn = [new_refresh_token() for _ in range(5000)] + [new_pairing_code() for _ in range(5000)]
    assert len(set(drawn)) == len(drawn)


def test_letters_are_uniform() -> None:
    # 62 letters, 124,000 draws: each expected 2,000 times. Modulo bias (256 % 62 = 8, without
    # rejection) would give the first 8 letters about 2,250; a fair draw stays within ±200.
    counts = Counter(random_string(124_000))
    assert set(counts) == set(BASE62)
    assert all(1800 < counts[letter] < 2200 for letter in BASE62), counts.most_common(3) + counts.most_common()[-3:]


def test_a_forked_child_never_reuses_the_parents_bytes() -> None:
    random_bytes(1)  # the parent now holds read-ahead bytes a child would inherit
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what it draws next, then leave at once
        os.write(write, random_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32
    assert child != random_bytes(32)  # without the reset both would be the next 32 buffered bytes

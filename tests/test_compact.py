"""crawler.compact.IdMap against a dict, across its merges."""

from __future__ import annotations

import random

from crawler.compact import IdMap


def test_idmap_agrees_with_a_dict_across_merges() -> None:
    rng = random.Random(7)
    ids = IdMap(merge_every=100)
    model: dict[int, int] = {}
    for _ in range(5_000):
        key = rng.randrange(20200101000000000, 20260101000000000, 1_000_000_000_000)
        value = rng.randrange(-2**63, 2**63)
        ids[key] = value
        model[key] = value
        probe = rng.randrange(20200101000000000, 20260101000000000, 1_000_000_000_000)
        assert ids.get(probe) == model.get(probe)
        assert (probe in ids) == (probe in model)
    assert len(ids) == len(model)
    assert list(ids.items()) == sorted(model.items())


def test_idmap_of_keys_is_a_set() -> None:
    ids = IdMap.of_keys([5, 3, 5, 9])
    assert len(ids) == 3 and 3 in ids and 9 in ids and 4 not in ids and 10 not in ids
    ids[4] = 1
    assert 4 in ids and len(ids) == 4
    assert list(ids.items()) == [(3, 0), (4, 1), (5, 0), (9, 0)]

"""operate / operate_ordered / increment / append / prepend with the official Python client.

Expectations follow the official client's tests (test_operate.py, test_operate_ordered.py,
test_increment.py): without respond-all-ops only read operations produce results, operate() returns
one entry per bin, operate_ordered() returns (bin, value) tuples in operation order, and a numeric
operation on a bin of another type fails with 12 (BinIncompatibleType).
"""

import aerospike
import pytest
from aerospike import exception as e
from aerospike_helpers.operations import operations as op

NS = "test"


def test_operate_increment_append_prepend_read_write(client, set_name):
    key = (NS, set_name, "ops")
    client.put(key, {"n": 10, "s": "abc", "b": b"\x01"})
    ops = [
        op.increment("n", 5),
        op.append("s", "xy"),
        op.prepend("s", "<"),
        op.append("b", b"\x02"),
        op.write("w", "written"),
        op.read("n"),
        op.read("s"),
        op.read("w"),
    ]
    k, meta, bins = client.operate(key, ops)
    assert bins == {"n": 15, "s": "<abcxy", "w": "written"}
    assert meta["gen"] == 2
    assert k[3] == aerospike.calc_digest(NS, set_name, "ops")
    _, _, stored = client.get(key)
    assert stored == {"n": 15, "s": "<abcxy", "b": b"\x01\x02", "w": "written"}


def test_operate_write_only_returns_no_bins(client, set_name):
    key = (NS, set_name, "write-only")
    _, meta, bins = client.operate(key, [op.write("a", 1), op.increment("c", 2)])
    assert bins == {}
    assert meta["gen"] == 1
    _, _, stored = client.get(key)
    assert stored == {"a": 1, "c": 2}


def test_operate_creates_missing_record_and_bins(client, set_name):
    key = (NS, set_name, "created")
    _, _, bins = client.operate(key, [op.increment("n", 3), op.append("s", "x"), op.read("n"), op.read("s")])
    assert bins == {"n": 3, "s": "x"}


def test_operate_float_increment(client, set_name):
    key = (NS, set_name, "float")
    client.put(key, {"f": 6.25})
    _, _, bins = client.operate(key, [op.increment("f", 1.5), op.read("f")])
    assert bins == {"f": 7.75}


def test_operate_touch(client, set_name):
    key = (NS, set_name, "touch")
    client.put(key, {"a": 1})
    _, meta, bins = client.operate(key, [op.touch(1200), op.read("a")])
    assert bins == {"a": 1}
    _, meta = client.exists(key)
    assert meta["gen"] == 2
    assert 1100 < meta["ttl"] <= 1200
    # TTL passed in meta applies to the touch too (test_operate.py: test_pos_operate_touch_with_meta).
    client.operate(key, [op.touch()], meta={"ttl": 600})
    _, meta = client.exists(key)
    assert 500 < meta["ttl"] <= 600


def test_operate_read_of_missing_record(client, set_name):
    with pytest.raises(e.RecordNotFound):
        client.operate((NS, set_name, "missing"), [op.read("a")])


def test_operate_ordered(client, set_name):
    key = (NS, set_name, "ordered")
    client.put(key, {"name": "name1", "age": 1})
    ops = [
        op.append("name", "aa"),
        op.read("name"),
        op.increment("age", 3),
        op.read("age"),
    ]
    _, meta, bins = client.operate_ordered(key, ops)
    assert bins == [("name", "name1aa"), ("age", 4)]
    assert meta["gen"] == 2
    # Reads listed before writes still come back in request order.
    _, _, bins = client.operate_ordered(key, [op.read("age"), op.read("name"), op.prepend("name", "x")])
    assert bins == [("age", 4), ("name", "name1aa")]
    _, _, stored = client.get(key)
    assert stored == {"name": "xname1aa", "age": 4}


def test_increment_helper(client, set_name):
    key = (NS, set_name, "incr")
    client.put(key, {"age": 1, "name": "name1"})
    assert client.increment(key, "age", 5) == 0
    client.increment(key, "age", -10)
    client.append(key, "name", "-end")
    client.prepend(key, "name", "start-")
    _, meta, bins = client.get(key)
    assert bins == {"age": -4, "name": "start-name1-end"}
    assert meta["gen"] == 5


def test_increment_on_string_bin_is_incompatible(client, set_name):
    key = (NS, set_name, "incompatible")
    client.put(key, {"name": "name1", "age": 1, "f": 1.5})
    with pytest.raises(e.BinIncompatibleType) as info:
        client.increment(key, "name", 1)
    assert info.value.code == 12
    with pytest.raises(e.BinIncompatibleType):
        client.operate(key, [op.increment("name", 1), op.read("name")])
    # An integer bin incremented by a float, and a float bin by an integer (test_increment.py).
    with pytest.raises(e.BinIncompatibleType):
        client.increment(key, "age", 1.5)
    with pytest.raises(e.BinIncompatibleType):
        client.increment(key, "f", 1)
    # Appending a string to an integer bin (doc §5.2: type must match the existing bin).
    with pytest.raises(e.BinIncompatibleType):
        client.append(key, "age", "x")
    # Nothing was changed by the failed operations.
    _, meta, bins = client.get(key)
    assert bins == {"name": "name1", "age": 1, "f": 1.5}
    assert meta["gen"] == 1


def test_failed_operate_applies_nothing(client, set_name):
    key = (NS, set_name, "atomic")
    client.put(key, {"n": 1, "s": "str"})
    with pytest.raises(e.BinIncompatibleType):
        client.operate(key, [op.increment("n", 1), op.increment("s", 1)])
    _, meta, bins = client.get(key)
    assert bins == {"n": 1, "s": "str"}
    assert meta["gen"] == 1


def test_operate_delete(client, set_name):
    key = (NS, set_name, "delete")
    client.put(key, {"a": 1})
    client.operate(key, [op.delete()])
    with pytest.raises(e.RecordNotFound):
        client.get(key)

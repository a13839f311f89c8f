"""Batch commands with the official Python client 19.x (batch_read, batch_write, batch_operate,
batch_remove; get_many/exists_many are gone from this version).

Expectations follow the official client's tests (test_batch_read.py, test_batch_write.py,
test_batch_operate.py, test_batch_remove.py): results come back in key order, each with its own
result code; a found record is (key, meta, bins); a missing one has result 2 and no record.
"""

import aerospike
import pytest
from aerospike import exception as e
from aerospike_helpers.batch import records as br
from aerospike_helpers.operations import operations as op

NS = "test"


@pytest.fixture
def records(client, set_name):
    keys = [(NS, set_name, i) for i in range(10)]
    for i, key in enumerate(keys):
        client.put(key, {"count": i, "name": f"name{i}", "list": [i, 1, 2]})
    return keys


def test_batch_read_all_bins(client, set_name, records):
    missing = (NS, set_name, "missing")
    keys = records[:5] + [missing] + records[5:]
    res = client.batch_read(keys)
    assert len(res.batch_records) == len(keys)
    for i, rec in enumerate(res.batch_records):
        assert rec.key[:3] == keys[i]
        if keys[i] == missing:
            assert rec.result == 2
            assert rec.record is None
            continue
        n = keys[i][2]
        assert rec.result == 0
        k, meta, bins = rec.record
        assert k[:3] == keys[i]
        assert k[3] == aerospike.calc_digest(*keys[i])
        assert meta["gen"] == 1
        assert bins == {"count": n, "name": f"name{n}", "list": [n, 1, 2]}


def test_batch_read_selected_bins(client, records):
    res = client.batch_read(records, ["count", "nope"])
    assert res.result == 0
    for i, rec in enumerate(res.batch_records):
        assert rec.result == 0
        assert rec.record[2] == {"count": i}


def test_batch_read_no_bins_is_an_existence_check(client, set_name, records):
    keys = records[:3] + [(NS, set_name, "missing")]
    res = client.batch_read(keys, [])
    assert [r.result for r in res.batch_records] == [0, 0, 0, 2]
    for rec in res.batch_records[:3]:
        assert len(rec.record) == 2  # (key, meta), no bins
        assert rec.record[1]["gen"] == 1


def test_batch_read_many_keys(client, set_name):
    keys = [(NS, set_name, f"k{i}") for i in range(300)]
    for i, key in enumerate(keys[::2]):
        client.put(key, {"i": i})
    res = client.batch_read(keys)
    for i, rec in enumerate(res.batch_records):
        if i % 2 == 0:
            assert rec.result == 0 and rec.record[2] == {"i": i // 2}
        else:
            assert rec.result == 2 and rec.record is None


def test_batch_read_with_ops(client, records):
    batch = br.BatchRecords([br.Read(key, [op.read("name")]) for key in records[:3]])
    res = client.batch_write(batch)
    assert [r.result for r in res.batch_records] == [0, 0, 0]
    assert [r.record[2] for r in res.batch_records] == [{"name": "name0"}, {"name": "name1"}, {"name": "name2"}]


def test_batch_write_mixed(client, set_name, records):
    new_key = (NS, set_name, "new")
    batch = br.BatchRecords(
        [
            br.Write(records[0], [op.write("new", 10), op.read("new")]),
            br.Write(records[1], [op.increment("count", 100), op.read("count")]),
            br.Write(new_key, [op.write("a", "x"), op.read("a")]),
            br.Read(records[2], ops=None, read_all_bins=True),
            br.Remove(records[3]),
            br.Remove((NS, set_name, "never-written")),
        ]
    )
    res = client.batch_write(batch)
    results = [r.result for r in res.batch_records]
    assert results == [0, 0, 0, 0, 0, 2]
    assert res.batch_records[0].record[2] == {"new": 10}
    assert res.batch_records[1].record[2] == {"count": 101}
    assert res.batch_records[2].record[2] == {"a": "x"}
    assert res.batch_records[3].record[2] == {"count": 2, "name": "name2", "list": [2, 1, 2]}
    assert res.batch_records[4].record[2] == {}

    assert client.get(records[0])[2]["new"] == 10
    assert client.get(records[1])[2]["count"] == 101
    assert client.get(new_key)[2] == {"a": "x"}
    with pytest.raises(e.RecordNotFound):
        client.get(records[3])


def test_batch_write_create_only_policy(client, set_name, records):
    batch = br.BatchRecords(
        [
            br.Write(records[0], [op.write("x", 1)], policy={"exists": aerospike.POLICY_EXISTS_CREATE}),
            br.Write((NS, set_name, "fresh"), [op.write("x", 1)], policy={"exists": aerospike.POLICY_EXISTS_CREATE}),
        ]
    )
    res = client.batch_write(batch)
    assert [r.result for r in res.batch_records] == [5, 0]
    assert "x" not in client.get(records[0])[2]
    assert client.get((NS, set_name, "fresh"))[2] == {"x": 1}


def test_batch_operate(client, set_name, records):
    keys = records[:4] + [(NS, set_name, "op-new")]
    res = client.batch_operate(keys, [op.increment("count", 10), op.read("count")])
    assert [r.result for r in res.batch_records] == [0] * 5
    assert [r.record[2]["count"] for r in res.batch_records] == [10, 11, 12, 13, 10]
    for r in res.batch_records:
        assert r.record[0][:3] in keys


def test_batch_operate_read_of_missing_record(client, set_name):
    res = client.batch_operate([(NS, set_name, 99)], [op.read("name")])
    assert res.batch_records[0].result == 2


def test_batch_operate_incompatible_type_per_record(client, set_name, records):
    client.put(records[0], {"count": "not a number"})
    res = client.batch_operate(records[:2], [op.increment("count", 1), op.read("count")])
    assert [r.result for r in res.batch_records] == [12, 0]
    assert res.batch_records[1].record[2] == {"count": 2}


def test_batch_remove(client, set_name, records):
    keys = records[:3] + [(NS, set_name, "missing")]
    res = client.batch_remove(keys)
    assert [r.result for r in res.batch_records] == [0, 0, 0, 2]
    for rec in res.batch_records[:3]:
        assert rec.key[:3] in keys
        assert rec.record[2] == {}
    for key in records[:3]:
        _, meta = client.exists(key)
        assert meta is None
    _, meta = client.exists(records[3])
    assert meta is not None


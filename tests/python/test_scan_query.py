"""Scans, queries without a where clause, and truncate, with the official Python client.

Expectations follow the official client's tests (test_scan.py, test_query.py, test_truncate.py,
test_batch_write.py): a scan or query of a set returns each record of the set once as
(key, meta, bins), the key's user part is None unless the record was written with
POLICY_KEY_SEND, and truncate removes a set's records and leaves other sets alone.
"""

import time

import aerospike
import pytest
from aerospike import exception as e

NS = "test"
N = 50


@pytest.fixture
def populated(client, set_name):
    keys = [(NS, set_name, i) for i in range(N)]
    for i, key in enumerate(keys):
        client.put(key, {"i": i, "name": f"name{i}", "tags": [i, "t"]})
    return keys


def _by_i(records):
    return {bins["i"]: (key, meta, bins) for key, meta, bins in records}


def _check_records(records, set_name):
    assert len(records) == N, f"expected {N} records, got {len(records)}"
    by_i = _by_i(records)
    assert sorted(by_i) == list(range(N)), "every record exactly once"
    for i, (key, meta, bins) in by_i.items():
        assert key[0] == NS and key[1] == set_name
        assert key[2] is None  # not written with POLICY_KEY_SEND
        assert key[3] == aerospike.calc_digest(NS, set_name, i)
        assert meta["gen"] == 1
        assert bins == {"i": i, "name": f"name{i}", "tags": [i, "t"]}


def test_scan_foreach(client, set_name, populated):
    records = []
    client.scan(NS, set_name).foreach(lambda rec: records.append(rec))
    _check_records(records, set_name)


def test_scan_results(client, set_name, populated):
    _check_records(client.scan(NS, set_name).results(), set_name)


def test_query_results_without_where(client, set_name, populated):
    _check_records(client.query(NS, set_name).results(), set_name)


def test_query_foreach_without_where(client, set_name, populated):
    records = []
    client.query(NS, set_name).foreach(lambda rec: records.append(rec))
    _check_records(records, set_name)


def test_scan_select_bins(client, set_name, populated):
    scan = client.scan(NS, set_name)
    scan.select("name")
    records = scan.results()
    assert len(records) == N
    assert sorted(bins["name"] for _, _, bins in records) == sorted(f"name{i}" for i in range(N))
    assert all(set(bins) == {"name"} for _, _, bins in records)


def test_query_select_bins(client, set_name, populated):
    query = client.query(NS, set_name)
    query.select("i")
    records = query.results()
    assert sorted(bins["i"] for _, _, bins in records) == list(range(N))
    assert all(set(bins) == {"i"} for _, _, bins in records)


def test_scan_returns_stored_user_keys(client, set_name):
    client.put((NS, set_name, "sent"), {"v": 1}, policy={"key": aerospike.POLICY_KEY_SEND})
    client.put((NS, set_name, 7), {"v": 2}, policy={"key": aerospike.POLICY_KEY_SEND})
    client.put((NS, set_name, "not-sent"), {"v": 3})
    keys = {bins["v"]: key for key, _, bins in client.scan(NS, set_name).results()}
    assert keys[1][2] == "sent"
    assert keys[2][2] == 7
    assert keys[3][2] is None
    assert keys[3][3] == aerospike.calc_digest(NS, set_name, "not-sent")


def test_scan_of_empty_set(client, set_name):
    assert client.scan(NS, set_name).results() == []
    assert client.query(NS, set_name).results() == []


def test_scan_stopped_early_by_callback(client, set_name, populated):
    seen = []

    def first_three(rec):
        seen.append(rec)
        if len(seen) >= 3:
            return False  # stops the scan; the client drops the stream

    client.scan(NS, set_name).foreach(first_three)
    assert len(seen) == 3
    # The server is fine after a client walked away mid-stream.
    _check_records(client.scan(NS, set_name).results(), set_name)


def test_scan_sees_only_its_set(client, set_name, populated):
    other = set_name[:50] + "_other"
    client.put((NS, other, "x"), {"i": 999})
    records = client.scan(NS, set_name).results()
    assert 999 not in _by_i(records)
    other_records = client.scan(NS, other).results()
    assert [bins for _, _, bins in other_records] == [{"i": 999}]


def test_scan_whole_namespace_includes_the_set(client, set_name, populated):
    # scan(ns, None) covers the whole namespace (Scan docstring), so it holds at least this set.
    records = [r for r in client.scan(NS, None).results() if r[0][1] == set_name]
    _check_records(records, set_name)


def test_scan_unknown_namespace(client):
    with pytest.raises(e.AerospikeError):
        client.scan("no_such_namespace", "demo").results()


def _wait_until(predicate, limit_s=10.0):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_truncate_set(client, set_name, populated):
    other = set_name[:50] + "_keep"
    kept = [(NS, other, i) for i in range(5)]
    for key in kept:
        client.put(key, {"k": 1})
    assert client.truncate(NS, set_name, 0) == 0
    assert _wait_until(lambda: client.scan(NS, set_name).results() == []), "set not emptied within 10 s"
    for key in populated:
        with pytest.raises(e.RecordNotFound):
            client.get(key)
    for key in kept:
        _, meta = client.exists(key)
        assert meta is not None, "truncate of one set removed a record of another set"
    # Records written after the truncate are kept.
    client.put(populated[0], {"i": 0, "again": True})
    _, meta, bins = client.get(populated[0])
    assert bins == {"i": 0, "again": True}
    assert meta["gen"] == 1


def test_truncate_with_past_cutoff_keeps_newer_records(client, set_name, populated):
    # Records last updated after the cutoff survive (test_truncate.py, created-threshold cases).
    cutoff_ns = (int(time.time()) - 3600) * 10**9
    assert client.truncate(NS, set_name, cutoff_ns) == 0
    time.sleep(1)
    _check_records(client.scan(NS, set_name).results(), set_name)

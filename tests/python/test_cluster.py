"""A cluster of three real shoald processes through the official Python client (C client inside).

The client is given one seed and must find the other two nodes itself (`peers-clear-std`), send
each request straight to the partition's master from the `replicas` maps (so no node ever proxies),
and read, batch-read and scan every record exactly once although every record is stored twice
(replication factor 2). After one node is killed with SIGKILL and the two survivors settle
(`cluster-stable:size=2`), every record must still be readable, and each survivor must hold a copy
of every record (two copies over two nodes).

The tests run in file order and share one cluster (module fixture `cluster3` in conftest.py): the
kill comes last.
"""

import time

import aerospike
import pytest

from conftest import CLIENT_POLICIES, connect_client, info, info_pairs

NS = "test"
SET = "cluster"
N = 500
REPLICATION_FACTOR = 2


def _bins(i):
    return {"i": i, "s": f"value-{i}"}


def _ns_stat(node, name):
    value = info_pairs(node.port, f"namespace/{NS}").get(name)
    assert value is not None, f"node on port {node.port} did not report namespace/{NS} {name}"
    return int(value)


def _assert_no_migrations(node, key):
    """A node of a cluster that answered `cluster-stable` with `key` has no migration left."""
    ns = info_pairs(node.port, f"namespace/{NS}")
    remaining = {k: ns.get(k) for k in ("migrate_tx_partitions_remaining", "migrate_rx_partitions_remaining")}
    stable = info(node.port, "cluster-stable")
    assert remaining == {k: "0" for k in remaining}, (
        f"node on port {node.port}: `cluster-stable` answered {key} (now {stable}), "
        f"yet namespace/{NS} reports {remaining}"
    )


def _wait_for_nodes(client, ports, limit_s=10.0):
    """Waits until the client's node list is exactly the service ports `ports`; returns it."""
    deadline = time.monotonic() + limit_s
    while True:
        seen = sorted(port for _host, port in client.get_nodes())
        if seen == sorted(ports) or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster_client(cluster3):
    first = cluster3.nodes[0]
    c = connect_client(cluster3.nodes, first.port, policies=CLIENT_POLICIES)
    yield c
    c.close()


@pytest.fixture(scope="module")
def keys(cluster_client):
    """N records written through the client: ("test", "cluster", i) -> {"i": i, "s": "value-i"}."""
    keys = [(NS, SET, i) for i in range(N)]
    for i, key in enumerate(keys):
        cluster_client.put(key, _bins(i))
    return keys


def test_one_seed_is_enough_to_find_every_node(cluster3, cluster_client):
    ports = [n.port for n in cluster3.nodes]
    assert _wait_for_nodes(cluster_client, ports) == sorted(ports)
    assert all(host == "127.0.0.1" for host, _port in cluster_client.get_nodes())
    names = {n["node_name"] for n in cluster_client.get_node_names()}
    assert len(names) == 3, f"three distinct node ids: {names}"
    # Every node agrees on the membership.
    stats = [info_pairs(n.port, "statistics") for n in cluster3.nodes]
    assert [s.get("cluster_size") for s in stats] == ["3", "3", "3"]
    assert len({s.get("cluster_key") for s in stats}) == 1, [s.get("cluster_key") for s in stats]


def test_puts_then_gets_are_all_right(cluster_client, keys):
    for i, key in enumerate(keys):
        k, meta, bins = cluster_client.get(key)
        # The user key is not stored (no POLICY_KEY_SEND): the reply names the record by digest.
        assert k[:2] == key[:2]
        assert k[3] == aerospike.calc_digest(*key)
        assert meta["gen"] == 1, f"record {i} written once"
        assert bins == _bins(i)


def test_every_record_is_stored_twice_spread_over_the_nodes(cluster3, keys):
    objects = {n.port: _ns_stat(n, "objects") for n in cluster3.nodes}
    assert sum(objects.values()) == REPLICATION_FACTOR * N, f"copies per node: {objects}"
    for port, count in objects.items():
        # A node holds at most one copy of a record; with 4096 partitions spread over three nodes
        # each holds about two thirds of the records.
        assert 0 < count <= N, f"node on port {port} holds {count} records: {objects}"
        assert count >= N // 3, f"node on port {port} holds only {count} records: {objects}"
    for n in cluster3.nodes:
        _assert_no_migrations(n, cluster3.stable_key)


def test_batch_read_returns_every_record_once(cluster_client, keys):
    res = cluster_client.batch_read(keys)
    assert res.result == 0
    assert len(res.batch_records) == N
    seen = set()
    for key, rec in zip(keys, res.batch_records):
        assert rec.key[:3] == key
        assert rec.result == 0, f"batch read of {key} failed with {rec.result}"
        _k, meta, bins = rec.record
        assert meta["gen"] == 1
        assert bins == _bins(key[2])
        seen.add(bins["i"])
    assert seen == set(range(N))


def _check_once(records, what):
    ids = [bins["i"] for _key, _meta, bins in records]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"{what} returned records more than once: {duplicates[:20]}"
    assert sorted(ids) == list(range(N)), f"{what} returned {len(ids)} records, missing {sorted(set(range(N)) - set(ids))[:20]}"
    for key, _meta, bins in records:
        assert key[3] == aerospike.calc_digest(NS, SET, bins["i"])
        assert bins == _bins(bins["i"])


def test_scan_returns_every_record_once(cluster_client, keys):
    _check_once(cluster_client.scan(NS, SET).results(), "scan")


def test_partition_queries_return_every_record_once(cluster_client, keys):
    query = cluster_client.query(NS, SET)
    _check_once(query.results({"partition_filter": {"begin": 0, "count": 4096}}), "query of all partitions")
    # Two halves of the partition space: disjoint, and together every record once.
    low = cluster_client.query(NS, SET).results({"partition_filter": {"begin": 0, "count": 2048}})
    high = cluster_client.query(NS, SET).results({"partition_filter": {"begin": 2048, "count": 2048}})
    assert low and high, f"both halves hold records: {len(low)} + {len(high)}"
    _check_once(low + high, "queries of partitions 0-2047 and 2048-4095")


def test_the_client_routed_every_request_to_the_master(cluster3, keys):
    """After the puts, gets, batch reads, scans and queries above: no node forwarded a request to
    another (the client had the right partition map), and the client used every node."""
    writes = {n.port: _ns_stat(n, "client_write_success") for n in cluster3.nodes}
    for n in cluster3.nodes:
        assert _ns_stat(n, "client_proxy_complete") == 0, f"node on port {n.port} proxied requests"
        assert writes[n.port] > 0, f"node on port {n.port} was master for none of the {N} writes: {writes}"
    # Each client write was executed once, on its master (replica copies are not client writes).
    assert sum(writes.values()) == N, f"client writes per node: {writes}"


def test_every_key_survives_a_node_kill(cluster3, cluster_client, keys):
    victim = cluster3.nodes[1]
    cluster3.kill(victim)
    key, took = cluster3.wait_stable(2, limit_s=40.0)
    print(f"two survivors stable with key {key} {took:.1f} s after the kill")
    survivors = cluster3.alive()
    assert [info_pairs(n.port, "statistics").get("cluster_size") for n in survivors] == ["2", "2"]
    seen = _wait_for_nodes(cluster_client, [n.port for n in survivors])
    assert seen == sorted(n.port for n in survivors), f"the client still lists {seen}"

    for i, k in enumerate(keys):
        _key, meta, bins = cluster_client.get(k)
        assert bins == _bins(i), f"record {i} after the kill"
        assert meta["gen"] == 1
    res = cluster_client.batch_read(keys)
    assert [r.result for r in res.batch_records] == [0] * N
    # Two copies over two nodes: each survivor holds every record, and a stable cluster has
    # nothing left to migrate.
    for n in survivors:
        assert _ns_stat(n, "objects") == N, f"node on port {n.port} after the kill"
        _assert_no_migrations(n, key)

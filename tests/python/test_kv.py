"""Single-record commands with the official Python client: what a real Aerospike server returns.

Expectations follow the official client's own tests (aerospike/aerospike-client-python,
test/new_tests/test_get_put.py, test_exists.py, test_touch.py, test_remove.py, test_select.py,
test_geospatial.py) and shared/docs/aerospike-protocol.md.
"""

import time

import aerospike
import pytest
from aerospike import exception as e

NS = "test"
# Python's meta["ttl"] for a record that never expires: the C client turns void time 0 into
# (uint32_t)-1 (cf_server_void_time_to_ttl), i.e. aerospike.TTL_NEVER_EXPIRE.
NEVER = aerospike.TTL_NEVER_EXPIRE


def test_put_get_every_type(client, set_name):
    key = (NS, set_name, "all-types")
    bins = {
        "int": 42,
        "neg": -7,
        "i64max": 2**63 - 1,
        "i64min": -(2**63),
        "float": 3.5,
        "negf": -0.125,
        "str": "héllo wörld 🐟",
        "empty": "",
        "bytes": b"\x00\x01\xfe\xff",
        "true": True,
        "false": False,
        "list": [1, "two", 3.0, b"\x04", [5], {"six": 6}, True, None],
        "map": {"a": 1, "b": [1, 2], "c": {"x": "y"}, 7: "int key"},
        "nested": {"l": [{"deep": [1, {"deeper": [True, 2.5, "s"]}]}]},
        "emptylist": [],
        "emptymap": {},
    }
    assert client.put(key, bins) == 0
    (k, meta, got) = client.get(key)
    assert got == bins
    assert type(got["true"]) is bool and type(got["false"]) is bool
    assert type(got["int"]) is int and type(got["float"]) is float
    assert isinstance(got["bytes"], (bytes, bytearray))
    # Without POLICY_KEY_SEND the key comes back as (ns, set, None, digest).
    assert k == (NS, set_name, None, aerospike.calc_digest(NS, set_name, "all-types"))
    assert meta["gen"] == 1
    assert meta["ttl"] == NEVER  # namespace default-ttl 0


@pytest.mark.parametrize("user_key", [7, -1, "k1", bytearray(b"\x00blob\xff")])
def test_key_types(client, set_name, user_key):
    key = (NS, set_name, user_key)
    client.put(key, {"v": repr(user_key)})
    k, _, bins = client.get(key)
    assert bins == {"v": repr(user_key)}
    assert k[3] == aerospike.calc_digest(NS, set_name, user_key)


def test_digest_only_key(client, set_name):
    digest = aerospike.calc_digest(NS, set_name, "by-digest")
    client.put((NS, set_name, "by-digest"), {"a": 1})
    k, _, bins = client.get((NS, set_name, None, digest))
    assert bins == {"a": 1}
    assert k == (NS, set_name, None, digest)


def test_geojson_round_trip(client, set_name):
    key = (NS, set_name, "geo")
    point = {"type": "Point", "coordinates": [-122.0, 37.5]}
    polygon = {
        "type": "Polygon",
        "coordinates": [[[-122.5, 37.0], [-121.0, 37.0], [-121.0, 38.08], [-122.5, 38.08], [-122.5, 37.0]]],
    }
    client.put(key, {"loc": aerospike.GeoJSON(point), "area": aerospike.GeoJSON(polygon), "n": 1})
    _, _, bins = client.get(key)
    assert isinstance(bins["loc"], aerospike.GeoJSON)
    assert bins["loc"].unwrap() == point
    assert bins["area"].unwrap() == polygon
    assert bins["n"] == 1


def test_large_value_round_trip(client, set_name):
    key = (NS, set_name, "large")
    blob = bytes(range(256)) * 2048  # 512 KiB
    text = "x" * 200_000
    client.put(key, {"blob": blob, "text": text})
    _, _, bins = client.get(key)
    assert bytes(bins["blob"]) == blob
    assert bins["text"] == text


def test_record_too_big(client, set_name):
    # The namespace's max record size is 1 MiB (Aerospike 7+ default); a 2 MiB bin is refused with
    # result 13 RECORD_TOO_BIG (doc §7) and nothing is stored.
    key = (NS, set_name, "too-big")
    with pytest.raises(e.RecordTooBig):
        client.put(key, {"blob": b"\x00" * (2 * 1024 * 1024)})
    with pytest.raises(e.RecordNotFound):
        client.get(key)


def test_select_bins(client, set_name):
    key = (NS, set_name, "select")
    client.put(key, {"a": 1, "b": "two", "c": [3]})
    _, meta, bins = client.select(key, ["a", "c"])
    assert bins == {"a": 1, "c": [3]}
    assert meta["gen"] == 1
    # Missing bins are left out (test_select.py: existent and non-existent bins).
    _, _, bins = client.select(key, ["b", "nope"])
    assert bins == {"b": "two"}
    _, _, bins = client.select(key, ["nope1", "nope2"])
    assert bins == {}
    with pytest.raises(e.RecordNotFound):
        client.select((NS, set_name, "missing"), ["a"])


def test_exists(client, set_name):
    key = (NS, set_name, "exists")
    k, meta = client.exists(key)
    assert meta is None  # not-found is not an exception for exists()
    assert k[3] == aerospike.calc_digest(NS, set_name, "exists")
    client.put(key, {"a": 1})
    client.put(key, {"a": 2})
    _, meta = client.exists(key)
    assert meta == {"gen": 2, "ttl": NEVER}


def test_get_missing_raises_record_not_found(client, set_name):
    with pytest.raises(e.RecordNotFound) as info:
        client.get((NS, set_name, "never-written"))
    assert info.value.code == 2


def test_remove(client, set_name):
    key = (NS, set_name, "remove")
    client.put(key, {"a": 1})
    assert client.remove(key) == 0
    with pytest.raises(e.RecordNotFound):
        client.get(key)
    _, meta = client.exists(key)
    assert meta is None
    with pytest.raises(e.RecordNotFound) as info:
        client.remove(key)
    assert info.value.code == 2
    # A removed record can be written again and starts over at generation 1.
    client.put(key, {"b": 2})
    _, meta, bins = client.get(key)
    assert bins == {"b": 2}
    assert meta["gen"] == 1


def test_remove_bin(client, set_name):
    key = (NS, set_name, "remove-bin")
    client.put(key, {"a": 1, "b": 2})
    client.remove_bin(key, ["a"])
    _, meta, bins = client.get(key)
    assert bins == {"b": 2}
    assert meta["gen"] == 2
    # Writing NULL to a bin deletes it (doc §5.2); a record left without bins is deleted.
    client.put(key, {"b": None})
    with pytest.raises(e.RecordNotFound):
        client.get(key)


def test_touch(client, set_name):
    key = (NS, set_name, "touch")
    client.put(key, {"a": 1})
    assert client.touch(key, 1000) == 0
    _, meta, bins = client.get(key)
    assert bins == {"a": 1}
    assert meta["gen"] == 2
    assert 990 <= meta["ttl"] <= 1000
    with pytest.raises(e.RecordNotFound) as info:
        client.touch((NS, set_name, "touch-missing"), 100)
    assert info.value.code == 2


def test_update_merges_bins(client, set_name):
    key = (NS, set_name, "merge")
    client.put(key, {"a": 1, "b": 2})
    client.put(key, {"b": 3, "c": 4})
    _, meta, bins = client.get(key)
    assert bins == {"a": 1, "b": 3, "c": 4}
    assert meta["gen"] == 2


def test_create_only_policy(client, set_name):
    key = (NS, set_name, "create-only")
    create = {"exists": aerospike.POLICY_EXISTS_CREATE}
    assert client.put(key, {"name": "John"}, policy=create) == 0
    with pytest.raises(e.RecordExistsError) as info:
        client.put(key, {"name": "Smith"}, policy=create)
    assert info.value.code == 5
    _, meta, bins = client.get(key)
    assert bins == {"name": "John"}
    assert meta["gen"] == 1


def test_replace_and_update_only_policies(client, set_name):
    key = (NS, set_name, "replace")
    with pytest.raises(e.RecordNotFound):
        client.put(key, {"a": 1}, policy={"exists": aerospike.POLICY_EXISTS_REPLACE})
    with pytest.raises(e.RecordNotFound):
        client.put(key, {"a": 1}, policy={"exists": aerospike.POLICY_EXISTS_UPDATE})
    client.put(key, {"a": 1, "b": 2}, policy={"exists": aerospike.POLICY_EXISTS_CREATE_OR_REPLACE})
    client.put(key, {"c": 3}, policy={"exists": aerospike.POLICY_EXISTS_CREATE_OR_REPLACE})
    _, _, bins = client.get(key)
    assert bins == {"c": 3}
    client.put(key, {"d": 4}, policy={"exists": aerospike.POLICY_EXISTS_REPLACE})
    _, _, bins = client.get(key)
    assert bins == {"d": 4}
    client.put(key, {"e": 5}, policy={"exists": aerospike.POLICY_EXISTS_UPDATE})
    _, meta, bins = client.get(key)
    assert bins == {"d": 4, "e": 5}
    assert meta["gen"] == 4


def test_generation_policy(client, set_name):
    key = (NS, set_name, "gen")
    client.put(key, {"name": "John"})
    client.put(key, {"name": "John"})
    _, meta = client.exists(key)
    assert meta["gen"] == 2

    eq = {"gen": aerospike.POLICY_GEN_EQ}
    with pytest.raises(e.RecordGenerationError) as info:
        client.put(key, {"name": "Smith"}, meta={"gen": 10}, policy=eq)
    assert info.value.code == 3
    with pytest.raises(e.RecordGenerationError):
        client.put(key, {"name": "Smith"}, meta={"gen": 1}, policy=eq)
    _, meta, bins = client.get(key)
    assert bins == {"name": "John"}
    assert meta["gen"] == 2

    assert client.put(key, {"name": "Smith"}, meta={"gen": 2}, policy=eq) == 0
    _, meta, bins = client.get(key)
    assert bins == {"name": "Smith"}
    assert meta["gen"] == 3

    gt = {"gen": aerospike.POLICY_GEN_GT}
    with pytest.raises(e.RecordGenerationError):
        client.put(key, {"name": "Jones"}, meta={"gen": 3}, policy=gt)
    assert client.put(key, {"name": "Jones"}, meta={"gen": 4}, policy=gt) == 0
    _, meta, bins = client.get(key)
    assert bins == {"name": "Jones"}
    assert meta["gen"] == 4

    # The same check guards remove.
    with pytest.raises(e.RecordGenerationError):
        client.remove(key, meta={"gen": 1}, policy=eq)
    assert client.remove(key, meta={"gen": 4}, policy=eq) == 0


def test_ttl_expires(client, set_name):
    key = (NS, set_name, "ttl")
    client.put(key, {"a": 1}, meta={"ttl": 2})
    _, meta = client.exists(key)
    assert meta is not None, "a record with ttl 2 must be readable right after the write"
    assert 1 <= meta["ttl"] <= 2
    # A real server hides a record once its void time has passed (reads check it), and nsup
    # (period 1 s here) removes it. Poll with a bound instead of sleeping a fixed time.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, meta = client.exists(key)
        if meta is None:
            break
        time.sleep(0.2)
    assert meta is None, "the record with ttl 2 was still there 10 s later"
    with pytest.raises(e.RecordNotFound):
        client.get(key)


def test_ttl_values(client, set_name):
    key = (NS, set_name, "ttl-values")
    client.put(key, {"a": 1}, meta={"ttl": 1000})
    _, meta = client.exists(key)
    assert 990 <= meta["ttl"] <= 1000
    # TTL_DONT_UPDATE keeps the record's expiry on an update.
    client.put(key, {"a": 2}, meta={"ttl": aerospike.TTL_DONT_UPDATE})
    _, meta = client.exists(key)
    assert 990 <= meta["ttl"] <= 1000
    client.put(key, {"a": 3}, meta={"ttl": aerospike.TTL_NEVER_EXPIRE})
    _, meta = client.exists(key)
    assert meta["ttl"] == NEVER
    # TTL_NAMESPACE_DEFAULT (0) = the namespace default-ttl, 0 here = never expire.
    client.put(key, {"a": 4}, meta={"ttl": aerospike.TTL_NAMESPACE_DEFAULT})
    _, meta, bins = client.get(key)
    assert meta["ttl"] == NEVER
    assert bins == {"a": 4}


@pytest.mark.parametrize("op", ["get", "put", "exists", "remove"])
def test_unknown_namespace(client, op):
    key = ("no_such_namespace", "demo", 1)
    with pytest.raises(e.NamespaceNotFound) as info:
        if op == "get":
            client.get(key)
        elif op == "put":
            client.put(key, {"a": 1})
        elif op == "exists":
            client.exists(key)
        else:
            client.remove(key)
    assert info.value.code == 20

"""Info commands through the official Python client.

The client strips the echoed command from info_all() values (src/main/client/info.c,
get_formatted_info_response: everything after the first tab) and returns the raw reply from
info_single_node(). Reply formats: shared/docs/aerospike-protocol.md §2.3.
"""

import re

import pytest
from aerospike import exception as e

NS = "test"


def _single_node(client):
    nodes = client.info_all("node")
    assert len(nodes) == 1, f"one node expected, got {nodes}"
    (name, (err, value)), = nodes.items()
    assert err is None
    return name, value


def test_node_names(client, shoald):
    name, value = _single_node(client)
    assert value == name + "\n"
    assert re.fullmatch(r"[0-9A-F]{1,16}", name), f"node id is upper-case hex (doc §2.3), got {name!r}"
    nodes = client.get_node_names()
    assert nodes == [{"address": "127.0.0.1", "port": shoald.port, "node_name": name}]


def test_info_all_namespaces(client):
    info = client.info_all("namespaces")
    assert len(info) == 1
    (err, value), = info.values()
    assert err is None
    assert value == NS + "\n"


def test_info_single_node(client):
    name, _ = _single_node(client)
    assert client.info_single_node("namespaces", name) == "namespaces\ttest\n"
    build = client.info_single_node("build", name)
    assert re.fullmatch(r"build\t\d+\.\d+\.\d+\.\d+\S*\n", build), build


def test_info_several_commands_in_one_request(client):
    name, _ = _single_node(client)
    reply = client.info_single_node("node\nnamespaces\nbuild\n", name)
    lines = reply.split("\n")
    assert lines[-1] == ""
    assert [l.split("\t", 1)[0] for l in lines[:-1]] == ["node", "namespaces", "build"]
    assert lines[0] == f"node\t{name}"
    assert lines[1] == "namespaces\ttest"


def test_info_namespace_statistics(client, set_name):
    client.put((NS, set_name, 1), {"a": 1})
    client.put((NS, set_name, 2), {"a": 2})
    (err, value), = client.info_all(f"namespace/{NS}").values()
    assert err is None
    stats = dict(kv.split("=", 1) for kv in value.strip().split(";") if "=" in kv)
    assert int(stats["objects"]) >= 2


def test_info_sets(client, set_name):
    for i in range(3):
        client.put((NS, set_name, i), {"a": i})
    (err, value), = client.info_all(f"sets/{NS}/{set_name}").values()
    assert err is None
    assert "objects=3:" in value, value
    (err, value), = client.info_all("sets").values()
    assert f"ns={NS}:set={set_name}:objects=3:" in value, value


def test_info_unknown_command_is_an_invalid_request(client):
    # A real server (>= 7.1) answers `ERROR:4:unrecognized command`, which the client raises as
    # InvalidRequest (test_info_all.py: test_info_all_for_invalid_request).
    with pytest.raises(e.InvalidRequest):
        client.info_all("fake_request_string_not_real")

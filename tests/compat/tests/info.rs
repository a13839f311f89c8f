//! Info commands through the official client (`Node::info` / `Client::info`).
//!
//! Facts relied on: docs/client-compat.md §2.4 (answers of a real CE 8.0.0.15 node: `node` is
//! the hex node id, `build` is `a.b.c.d`, `features` lists pscans/batch-any/..., `replicas` is
//! `test:0,1,<512-byte all-ones bitmap in base64>` on a single node, an unknown command answers
//! `ERROR:4:unrecognized command`, `sets` lists `ns=..:set=..:objects=N:...;`, `namespace/<ns>`
//! is a `k=v;` list with `objects=`), docs/aerospike-protocol.md §2.1/§2.3 (each requested
//! command echoed in order; `cluster-name` is the literal `null` when none is configured;
//! `partition-generation` never -1 once serving).

mod common;

use aerospike::{as_bin, as_key, AdminPolicy, WritePolicy};
use common::{connect, run, TestServer, NS};
use std::collections::HashMap;

/// `k=v;k=v` (or `k=v:k=v` with `sep = ':'`) into a map.
fn pairs(text: &str, sep: char) -> HashMap<String, String> {
    text.split(sep)
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn info1(client: &aerospike::Client, cmd: &str) -> String {
    let node = client.random_node().expect("a node");
    let answer = node
        .info(&AdminPolicy::default(), &[cmd])
        .await
        .unwrap_or_else(|e| panic!("info {cmd}: {e}"));
    answer
        .get(cmd)
        .unwrap_or_else(|| panic!("answer to {cmd} lacks its own name: {answer:?}"))
        .clone()
}

#[test]
fn node_and_build() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let names = client.node_names();
        assert_eq!(names.len(), 1, "single node cluster");
        let node_id = info1(&client, "node").await;
        assert_eq!(
            node_id, names[0],
            "node id must match the name the client uses"
        );
        assert!(
            !node_id.is_empty()
                && node_id.len() <= 16
                && node_id
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()),
            "node id must be upper-case hex: {node_id:?}"
        );

        let build = info1(&client, "build").await;
        let parts: Vec<u64> = build
            .split('.')
            .take(4)
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or_else(|_| panic!("build {build:?} is not a.b.c.d"))
            })
            .collect();
        assert_eq!(parts.len(), 4, "build {build:?} is not a.b.c.d");
        assert!(
            parts.as_slice() >= [4u64, 9, 0, 3].as_slice(),
            "build {build:?} is below the clients' minimum 4.9.0.3"
        );
    });
}

#[test]
fn several_commands_in_one_request_answer_in_order() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let node = client.random_node().expect("node");
        let cmds = [
            "partition-generation",
            "node",
            "namespaces",
            "build",
            "cluster-name",
        ];
        let answer = node
            .info(&AdminPolicy::default(), &cmds)
            .await
            .expect("info");
        let keys: Vec<&str> = answer.keys().map(String::as_str).collect();
        assert_eq!(
            keys, cmds,
            "answers must echo the commands in request order"
        );
        let generation: i64 = answer["partition-generation"]
            .parse()
            .expect("partition-generation is an integer");
        assert!(generation >= 0, "partition-generation {generation}");
        assert_eq!(answer["namespaces"], NS);
        assert_eq!(answer["cluster-name"], "null", "no cluster name configured");
    });
}

#[test]
fn namespaces_lists_every_configured_namespace() {
    let server = TestServer::start_with(
        "[[namespace]]\nname = \"test\"\nnsup-period = 1\n\n\
         [[namespace]]\nname = \"bar\"\nnsup-period = 1\n",
    );
    run(async {
        let client = connect(&server).await;
        let answer = info1(&client, "namespaces").await;
        let mut names: Vec<&str> = answer.split(';').collect();
        names.sort_unstable();
        assert_eq!(names, vec!["bar", "test"]);

        let replicas = info1(&client, "replicas").await;
        let mut namespaces: Vec<&str> = replicas
            .split(';')
            .map(|e| e.split(':').next().expect("ns"))
            .collect();
        namespaces.sort_unstable();
        assert_eq!(namespaces, vec!["bar", "test"], "replicas: {replicas}");
    });
}

#[test]
fn namespace_statistics_count_objects() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        for i in 0..7i64 {
            client
                .put(&wp, &as_key!(NS, "demo", i), &[as_bin!("a", i)])
                .await
                .expect("put");
        }
        for i in 0..3i64 {
            client
                .put(&wp, &as_key!(NS, "other", i), &[as_bin!("a", i)])
                .await
                .expect("put");
        }
        client
            .delete(&wp, &as_key!(NS, "other", 0))
            .await
            .expect("delete");

        let ns = pairs(&info1(&client, &format!("namespace/{NS}")).await, ';');
        assert_eq!(
            ns.get("objects").map(String::as_str),
            Some("9"),
            "namespace/test: {ns:?}"
        );

        let sets = info1(&client, "sets").await;
        let entries: Vec<HashMap<String, String>> = sets
            .split(';')
            .filter(|e| !e.is_empty())
            .map(|e| pairs(e, ':'))
            .collect();
        let find = |set: &str| {
            entries
                .iter()
                .find(|e| {
                    e.get("ns").map(String::as_str) == Some(NS)
                        && e.get("set").map(String::as_str) == Some(set)
                })
                .unwrap_or_else(|| panic!("set {set} missing from `sets`: {sets}"))
                .clone()
        };
        assert_eq!(find("demo").get("objects").map(String::as_str), Some("7"));
        assert_eq!(find("other").get("objects").map(String::as_str), Some("2"));

        let stats = pairs(&info1(&client, "statistics").await, ';');
        assert_eq!(
            stats.get("cluster_size").map(String::as_str),
            Some("1"),
            "statistics: {stats:?}"
        );
    });
}

#[test]
fn replicas_and_features_describe_a_single_node() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let replicas = info1(&client, "replicas").await;
        let (ns, rest) = replicas.split_once(':').expect("ns:...");
        assert_eq!(ns, NS);
        let fields: Vec<&str> = rest.split(',').collect();
        assert_eq!(fields[0], "0", "AP namespaces report regime 0");
        assert_eq!(fields[1], "1", "one node holds one copy: {replicas}");
        assert_eq!(fields.len(), 3, "{replicas}");
        let all_partitions = format!("{}//8=", "/".repeat(680));
        assert_eq!(
            fields[2], all_partitions,
            "this node masters all 4096 partitions"
        );

        let features = info1(&client, "features").await;
        let tokens: Vec<&str> = features.split(';').collect();
        for needed in [
            "pscans",
            "batch-any",
            "pquery",
            "query-show",
            "replicas",
            "peers",
        ] {
            assert!(
                tokens.contains(&needed),
                "features lacks {needed}: {features}"
            );
        }
    });
}

#[test]
fn unknown_command_answers_error_4() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        assert_eq!(
            info1(&client, "no-such-command").await,
            "ERROR:4:unrecognized command"
        );
        // The connection is still good for the next request.
        let node_id = info1(&client, "node").await;
        assert_eq!(node_id, client.node_names()[0]);
    });
}

#[test]
fn client_info_goes_to_a_node() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let answer = client
            .info(&AdminPolicy::default(), &["node", "namespaces"])
            .await
            .expect("client.info");
        assert_eq!(answer.get("node"), Some(&client.node_names()[0]));
        assert_eq!(answer.get("namespaces").map(String::as_str), Some(NS));
    });
}

//! List and map (CDT) operations through the official client's `operations::lists` and
//! `operations::maps`, asserting what a real Aerospike server answers.
//!
//! Facts come from the official clients' suites run against real servers: the Rust client's
//! `tests/src/cdt_list.rs` (the `["0", 9, 8, 7, 1, 2.1, -1]` walk-through, wildcard matching,
//! value ranges with an open end, ordered-list creation in a map context) and
//! `tests/src/cdt_map.rs` (the `a..e => 1..5` walk-through, relative index/rank ranges, nested
//! get by key), plus the server's `particle_list.c` / `particle_map.c` for error codes:
//! add-unique duplicates are ELEMENT_EXISTS (24), map create-only / update-only violations are
//! 24 / 23, out-of-bounds single-index ops and inserts into ordered lists are
//! OP_NOT_APPLICABLE (26), and a list op on a map bin is BIN_TYPE_ERROR (12).

mod common;

use aerospike::operations::cdt_context::{ctx_list_index, ctx_map_key};
use aerospike::operations::maps::MapOrder;
use aerospike::operations::{self, lists, maps};
use aerospike::{
    as_bin, as_key, as_list, as_map, as_val, Bins, Key, ListOrderType, ListPolicy, ListReturnType,
    ListSortFlags, ListWriteFlags, MapPolicy, MapReturnType, MapWriteFlags, ReadPolicy, ResultCode,
    Value, WritePolicy,
};
use common::{assert_server_error, connect, int, run, TestServer, NS};

/// The one bin every test uses.
const BIN: &str = "bin";

async fn op1(client: &aerospike::Client, key: &Key, op: aerospike::operations::Operation) -> Value {
    let rec = client
        .operate(&WritePolicy::default(), key, &[op])
        .await
        .expect("operate");
    rec.bins.get(BIN).cloned().unwrap_or(Value::Nil)
}

async fn reset_list(client: &aerospike::Client, key: &Key) {
    client
        .put(
            &WritePolicy::default(),
            key,
            &[as_bin!(BIN, as_list!("0", 9, 8, 7, 1, 2.1f64, -1))],
        )
        .await
        .expect("put list");
}

async fn read_bin(client: &aerospike::Client, key: &Key) -> Value {
    let rec = client
        .get(&ReadPolicy::default(), key, Bins::All)
        .await
        .expect("get");
    rec.bins.get(BIN).cloned().unwrap_or(Value::Nil)
}

#[test]
fn list_walkthrough_matches_the_official_suite() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "cdt", "list-walk");
        let wp = WritePolicy::default();
        let lp = ListPolicy::default();
        client
            .put(&wp, &key, &[as_bin!(BIN, as_list!("0", 1, 2.1f64))])
            .await
            .expect("put");
        assert_eq!(op1(&client, &key, lists::size(BIN)).await, int(3));

        let rec = client
            .operate(
                &wp,
                &key,
                &[
                    lists::insert_items(&lp, BIN, 1, vec![as_val!(9), as_val!(8), as_val!(7)]),
                    operations::get_bin(BIN),
                ],
            )
            .await
            .expect("insert_items");
        assert_eq!(
            rec.bins.get(BIN),
            Some(&Value::MultiResult(vec![
                int(6),
                as_list!("0", 9, 8, 7, 1, 2.1f64)
            ]))
        );
        assert_eq!(op1(&client, &key, lists::pop(BIN, 0)).await, as_val!("0"));
        assert_eq!(
            op1(&client, &key, lists::pop_range(BIN, 0, 2)).await,
            as_list!(9, 8)
        );
        assert_eq!(
            op1(&client, &key, lists::pop_range_from(BIN, 1)).await,
            as_list!(1, 2.1f64)
        );
        assert_eq!(read_bin(&client, &key).await, as_list!(7));

        reset_list(&client, &key).await;
        assert_eq!(
            op1(&client, &key, lists::increment(&lp, BIN, 1, 4)).await,
            int(13)
        );
        assert_eq!(op1(&client, &key, lists::remove(BIN, 1)).await, int(1));
        assert_eq!(
            op1(&client, &key, lists::remove_range(BIN, 1, 2)).await,
            int(2)
        );
        assert_eq!(
            op1(&client, &key, lists::remove_range_from(BIN, -1)).await,
            int(1)
        );
        assert_eq!(read_bin(&client, &key).await, as_list!("0", 1, 2.1f64));
        op1(&client, &key, lists::set(BIN, -1, as_val!(2))).await;
        assert_eq!(read_bin(&client, &key).await, as_list!("0", 1, 2));

        reset_list(&client, &key).await;
        assert_eq!(op1(&client, &key, lists::trim(BIN, 1, 1)).await, int(6));
        assert_eq!(read_bin(&client, &key).await, as_list!(9));

        reset_list(&client, &key).await;
        assert_eq!(op1(&client, &key, lists::get(BIN, 1)).await, int(9));
        assert_eq!(
            op1(&client, &key, lists::get_range(BIN, 1, -1)).await,
            as_list!(9, 8, 7, 1, 2.1f64, -1)
        );
        assert_eq!(
            op1(&client, &key, lists::get_range_from(BIN, 2)).await,
            as_list!(8, 7, 1, 2.1f64, -1)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_value(BIN, as_val!(9), ListReturnType::COUNT)
            )
            .await,
            int(1)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_value_list(
                    BIN,
                    vec![as_val!(8), as_val!(7)],
                    ListReturnType::COUNT
                )
            )
            .await,
            int(2)
        );

        reset_list(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_value_range(BIN, ListReturnType::COUNT, as_val!(7), as_val!(9))
            )
            .await,
            int(2)
        );

        reset_list(&client, &key).await;
        op1(&client, &key, lists::sort(BIN, ListSortFlags::DEFAULT)).await;
        assert_eq!(
            read_bin(&client, &key).await,
            as_list!(-1, 1, 7, 8, 9, "0", 2.1f64)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_index(BIN, 1, ListReturnType::VALUES)
            )
            .await,
            int(1)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_index_range(BIN, 4, ListReturnType::VALUES)
            )
            .await,
            as_list!("0", 2.1f64)
        );

        reset_list(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_index_range_count(BIN, 0, 2, ListReturnType::VALUES)
            )
            .await,
            as_list!("0", 9)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_rank(BIN, 2, ListReturnType::VALUES)
            )
            .await,
            int(7)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_rank_range(BIN, 2, ListReturnType::VALUES)
            )
            .await,
            as_list!(8, 2.1f64)
        );

        reset_list(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_rank_range_count(BIN, 2, 2, ListReturnType::VALUES)
            )
            .await,
            as_list!(8, 7)
        );

        reset_list(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_value_relative_rank_range(
                    BIN,
                    ListReturnType::VALUES,
                    as_val!(1),
                    1
                )
            )
            .await,
            as_list!(7, 8, 9, "0", 2.1f64)
        );

        reset_list(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_value_relative_rank_range_count(
                    BIN,
                    ListReturnType::VALUES,
                    as_val!(1),
                    1,
                    2
                )
            )
            .await,
            as_list!(8, 7)
        );

        reset_list(&client, &key).await;
        let reads: Vec<(aerospike::operations::Operation, Value)> = vec![
            (
                lists::get_by_value_relative_rank_range_count(
                    BIN,
                    as_val!(1),
                    2,
                    2,
                    ListReturnType::VALUES,
                ),
                as_list!(8, 9),
            ),
            (
                lists::get_by_value(BIN, as_val!(1), ListReturnType::COUNT),
                int(1),
            ),
            (
                lists::get_by_value_list(
                    BIN,
                    vec![as_val!(1), as_val!("0")],
                    ListReturnType::COUNT,
                ),
                int(2),
            ),
            (
                lists::get_by_value_range(BIN, as_val!(1), as_val!(9), ListReturnType::COUNT),
                int(3),
            ),
            (lists::get_by_index(BIN, 3, ListReturnType::VALUES), int(7)),
            (
                lists::get_by_index_range(BIN, 3, ListReturnType::VALUES),
                as_list!(7, 1, 2.1f64, -1),
            ),
            (
                lists::get_by_index_range_count(BIN, 0, 2, ListReturnType::VALUES),
                as_list!("0", 9),
            ),
            (lists::get_by_rank(BIN, 2, ListReturnType::VALUES), int(7)),
            (
                lists::get_by_rank_range(BIN, 4, ListReturnType::VALUES),
                as_list!(9, "0", 2.1f64),
            ),
            (
                lists::get_by_rank_range_count(BIN, 2, 2, ListReturnType::VALUES),
                as_list!(8, 7),
            ),
            (
                lists::get_by_value_relative_rank_range(BIN, as_val!(1), 2, ListReturnType::VALUES),
                as_list!(8, 9, "0", 2.1f64),
            ),
        ];
        for (op, want) in reads {
            let what = format!("{op:?}");
            assert_eq!(op1(&client, &key, op).await, want, "{what}");
        }
    });
}

#[test]
fn list_value_ranges_wildcards_and_return_types() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "cdt", "list-range");
        client
            .put(&wp, &key, &[as_bin!(BIN, as_list!(7, 6, 5, 8, 9, 10))])
            .await
            .expect("put");
        let rec = client
            .operate(
                &wp,
                &key,
                &[
                    lists::get_by_value_range(BIN, as_val!(7), as_val!(9), ListReturnType::VALUES),
                    lists::get_by_value_range(BIN, as_val!(7), Value::Nil, ListReturnType::VALUES),
                    lists::get_by_value_range(BIN, as_val!(7), Value::Nil, ListReturnType::INDEX),
                    lists::get_by_value_range(BIN, as_val!(7), Value::Nil, ListReturnType::RANK),
                    lists::get_by_value_range(BIN, Value::Nil, as_val!(9), ListReturnType::VALUES),
                ],
            )
            .await
            .expect("ranges");
        assert_eq!(
            rec.bins.get(BIN),
            Some(&Value::MultiResult(vec![
                as_list!(7, 8),
                as_list!(7, 8, 9, 10),
                as_list!(0, 3, 4, 5),
                as_list!(2, 3, 4, 5),
                as_list!(7, 6, 5, 8),
            ]))
        );
        assert_eq!(
            op1(
                &client,
                &key,
                lists::remove_by_value_range(BIN, ListReturnType::INDEX, as_val!(7), Value::Nil)
            )
            .await,
            as_list!(0, 3, 4, 5)
        );
        assert_eq!(read_bin(&client, &key).await, as_list!(6, 5));

        // Inverted selection and exists.
        assert_eq!(
            op1(
                &client,
                &key,
                lists::get_by_index_range_count(BIN, 0, 1, ListReturnType::VALUES.inverted())
            )
            .await,
            as_list!(5)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                lists::get_by_value(BIN, as_val!(6), ListReturnType::EXISTS)
            )
            .await,
            Value::Bool(true)
        );

        // Wildcard: [Jim, *] matches the Jim entry.
        let key = as_key!(NS, "cdt", "list-wild");
        let lp = ListPolicy::default();
        let rec = client
            .operate(
                &wp,
                &key,
                &[
                    lists::append_items(
                        &lp,
                        BIN,
                        vec![
                            as_list!("John", 55),
                            as_list!("Jim", 95),
                            as_list!("Joe", 80),
                        ],
                    ),
                    lists::get_by_value(
                        BIN,
                        as_list!(Value::from("Jim"), Value::Wildcard),
                        ListReturnType::VALUES,
                    ),
                ],
            )
            .await
            .expect("wildcard");
        assert_eq!(
            rec.bins.get(BIN),
            Some(&Value::MultiResult(vec![
                int(3),
                as_list!(as_list!("Jim", 95))
            ]))
        );
    });
}

#[test]
fn list_write_flags_order_and_errors() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "cdt", "list-flags");
        let unique = ListPolicy::new(ListOrderType::Unordered, ListWriteFlags::ADD_UNIQUE);
        op1(
            &client,
            &key,
            lists::append_items(&unique, BIN, vec![as_val!(1), as_val!(2)]),
        )
        .await;
        assert_server_error(
            client
                .operate(&wp, &key, &[lists::append(&unique, BIN, as_val!(2))])
                .await,
            ResultCode::ElementExists,
            "add-unique duplicate",
        );
        let unique_no_fail = ListPolicy::new(
            ListOrderType::Unordered,
            ListWriteFlags::ADD_UNIQUE | ListWriteFlags::NO_FAIL | ListWriteFlags::PARTIAL,
        );
        assert_eq!(
            op1(
                &client,
                &key,
                lists::append_items(&unique_no_fail, BIN, vec![as_val!(2), as_val!(3)])
            )
            .await,
            int(3)
        );
        let bounded = ListPolicy::new(ListOrderType::Unordered, ListWriteFlags::INSERT_BOUNDED);
        assert_server_error(
            client
                .operate(&wp, &key, &[lists::insert(&bounded, BIN, 10, as_val!(0))])
                .await,
            ResultCode::OpNotApplicable,
            "bounded insert past the end",
        );
        assert_server_error(
            client.operate(&wp, &key, &[lists::get(BIN, 10)]).await,
            ResultCode::OpNotApplicable,
            "get past the end",
        );
        // Unbounded insert past the end pads with nils.
        op1(
            &client,
            &key,
            lists::insert(&ListPolicy::default(), BIN, 5, as_val!(9)),
        )
        .await;
        assert_eq!(
            read_bin(&client, &key).await,
            as_list!(1, 2, 3, Value::Nil, Value::Nil, 9)
        );

        // Ordered list: appends land in order; create via policy on a missing bin.
        let key = as_key!(NS, "cdt", "list-ordered");
        let ordered = ListPolicy::new(ListOrderType::Ordered, ListWriteFlags::DEFAULT);
        let rec = client
            .operate(
                &wp,
                &key,
                &[
                    lists::append(&ordered, BIN, as_val!(3)),
                    lists::append(&ordered, BIN, as_val!(1)),
                    lists::append(&ordered, BIN, as_val!(2)),
                    operations::get_bin(BIN),
                ],
            )
            .await
            .expect("ordered appends");
        assert_eq!(
            rec.bins.get(BIN),
            Some(&Value::MultiResult(vec![
                int(1),
                int(2),
                int(3),
                as_list!(1, 2, 3)
            ]))
        );
        assert_server_error(
            client
                .operate(
                    &wp,
                    &key,
                    &[lists::insert(&ListPolicy::default(), BIN, 0, as_val!(0))],
                )
                .await,
            ResultCode::OpNotApplicable,
            "insert into an ordered list",
        );
        // set_order on an unordered list sorts it.
        let key = as_key!(NS, "cdt", "list-set-order");
        op1(
            &client,
            &key,
            lists::append_items(
                &ListPolicy::default(),
                BIN,
                vec![as_val!(3), as_val!(1), as_val!(2)],
            ),
        )
        .await;
        op1(&client, &key, lists::set_order(BIN, ListOrderType::Ordered)).await;
        assert_eq!(read_bin(&client, &key).await, as_list!(1, 2, 3));

        // A list op on a map bin, and on a string bin, is a bin type error.
        let key = as_key!(NS, "cdt", "list-on-map");
        client
            .put(&wp, &key, &[as_bin!(BIN, as_map!("a" => 1))])
            .await
            .expect("put map");
        assert_server_error(
            client.operate(&wp, &key, &[lists::size(BIN)]).await,
            ResultCode::BinTypeError,
            "list size on a map",
        );
        client
            .put(&wp, &key, &[as_bin!(BIN, "text")])
            .await
            .expect("put string");
        assert_server_error(
            client.operate(&wp, &key, &[maps::size(BIN)]).await,
            ResultCode::BinTypeError,
            "map size on a string",
        );
    });
}

async fn reset_map(client: &aerospike::Client, key: &Key) {
    client
        .put(
            &WritePolicy::default(),
            key,
            &[as_bin!(
                BIN,
                as_map!("a" => 1, "b" => 2, "c" => 3, "d" => 4, "e" => 5)
            )],
        )
        .await
        .expect("put map");
}

#[test]
fn map_walkthrough_matches_the_official_suite() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let mp = MapPolicy::default();
        let key = as_key!(NS, "cdt", "map-walk");
        client
            .put(&wp, &key, &[as_bin!(BIN, as_map!("a" => 1, "b" => 2))])
            .await
            .expect("put");
        assert_eq!(
            op1(&client, &key, maps::put(&mp, BIN, as_val!("c"), as_val!(3))).await,
            int(3)
        );
        assert_eq!(op1(&client, &key, maps::size(BIN)).await, int(3));
        assert_eq!(
            read_bin(&client, &key).await,
            as_map!("a" => 1, "b" => 2, "c" => 3)
        );
        let mut items = std::collections::HashMap::new();
        items.insert(as_val!("d"), as_val!(4));
        items.insert(as_val!("e"), as_val!(5));
        assert_eq!(
            op1(&client, &key, maps::put_items(&mp, BIN, items)).await,
            int(5)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_key(BIN, as_val!("e"), MapReturnType::VALUE)
            )
            .await,
            int(5)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::increment_value(&mp, BIN, as_val!("a"), as_val!(19))
            )
            .await,
            int(20)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::decrement_value(&mp, BIN, as_val!("a"), as_val!(10))
            )
            .await,
            int(10)
        );
        let rec = client
            .operate(
                &wp,
                &key,
                &[
                    maps::decrement_value(&mp, BIN, as_val!("a"), as_val!(5)),
                    maps::increment_value(&mp, BIN, as_val!("a"), as_val!(7)),
                ],
            )
            .await
            .expect("dec/inc");
        assert_eq!(
            rec.bins.get(BIN),
            Some(&Value::MultiResult(vec![int(5), int(12)]))
        );
        assert_eq!(op1(&client, &key, maps::clear(BIN)).await, Value::Nil);
        assert_eq!(op1(&client, &key, maps::size(BIN)).await, int(0));

        reset_map(&client, &key).await;
        let reads: Vec<(aerospike::operations::Operation, Value)> = vec![
            (maps::get_by_index(BIN, 0, MapReturnType::VALUE), int(1)),
            (
                maps::get_by_index_range(BIN, 1, 2, MapReturnType::VALUE),
                as_list!(2, 3),
            ),
            (
                maps::get_by_index_range_from(BIN, 3, MapReturnType::VALUE),
                as_list!(4, 5),
            ),
            (
                maps::get_by_value(BIN, as_val!(5), MapReturnType::INDEX),
                as_list!(4),
            ),
            (
                maps::get_by_value_range(BIN, as_val!(3), as_val!(5), MapReturnType::COUNT),
                int(2),
            ),
            (maps::get_by_rank(BIN, 2, MapReturnType::VALUE), int(3)),
            (
                maps::get_by_rank_range(BIN, 2, 3, MapReturnType::VALUE),
                as_list!(3, 4, 5),
            ),
            (
                maps::get_by_rank_range_from(BIN, 2, MapReturnType::COUNT),
                int(3),
            ),
            (
                maps::get_by_key(BIN, as_val!("b"), MapReturnType::VALUE),
                int(2),
            ),
            (
                maps::get_by_key_range(BIN, as_val!("b"), as_val!("d"), MapReturnType::COUNT),
                int(2),
            ),
            (
                maps::get_by_key_list(BIN, vec![as_val!("b"), as_val!("d")], MapReturnType::COUNT),
                int(2),
            ),
            (
                maps::get_by_value_list(BIN, vec![as_val!(2), as_val!(3)], MapReturnType::COUNT),
                int(2),
            ),
            (
                maps::get_by_key_relative_index_range(BIN, as_val!("a"), 1, MapReturnType::VALUE),
                as_list!(2, 3, 4, 5),
            ),
            (
                maps::get_by_key_relative_index_range_count(
                    BIN,
                    as_val!("a"),
                    1,
                    2,
                    MapReturnType::VALUE,
                ),
                as_list!(2, 3),
            ),
            (
                maps::get_by_value_relative_rank_range(BIN, as_val!(2), 1, MapReturnType::VALUE),
                as_list!(3, 4, 5),
            ),
            (
                maps::get_by_value_relative_rank_range_count(
                    BIN,
                    as_val!(2),
                    1,
                    1,
                    MapReturnType::VALUE,
                ),
                as_list!(3),
            ),
            (
                maps::get_by_key_range(BIN, as_val!("d"), Value::Nil, MapReturnType::ORDERED_MAP),
                as_map!("d" => 4, "e" => 5),
            ),
            (
                maps::get_by_key(BIN, as_val!("zz"), MapReturnType::EXISTS),
                Value::Bool(false),
            ),
        ];
        for (op, want) in reads {
            let what = format!("{op:?}");
            assert_eq!(op1(&client, &key, op).await, want, "{what}");
        }
        // An unordered map answers a key interval in storage order (`particle_map.c` builds
        // it from a mask), and the client wrote this map in hash order: compare as a set.
        let keys = op1(
            &client,
            &key,
            maps::get_by_key_range(BIN, as_val!("b"), as_val!("d"), MapReturnType::KEY),
        )
        .await;
        let Value::List(mut keys) = keys else {
            panic!("keys: {keys:?}")
        };
        keys.sort_by_key(|k| k.to_string());
        assert_eq!(keys, vec![as_val!("b"), as_val!("c")]);

        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_key_list(
                    BIN,
                    vec![as_val!("b"), as_val!("d")],
                    MapReturnType::COUNT
                )
            )
            .await,
            int(2)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_key_range(BIN, as_val!("a"), as_val!("c"), MapReturnType::COUNT)
            )
            .await,
            int(1)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_value(BIN, as_val!(5), MapReturnType::COUNT)
            )
            .await,
            int(1)
        );
        assert_eq!(read_bin(&client, &key).await, as_map!("c" => 3));

        reset_map(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_value_list(BIN, vec![as_val!(4), as_val!(5)], MapReturnType::COUNT)
            )
            .await,
            int(2)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_value_range(BIN, as_val!(1), as_val!(3), MapReturnType::COUNT)
            )
            .await,
            int(2)
        );

        reset_map(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_index(BIN, 1, MapReturnType::VALUE)
            )
            .await,
            int(2)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_index_range(BIN, 1, 2, MapReturnType::VALUE)
            )
            .await,
            as_list!(3, 4)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_index_range_from(BIN, 1, MapReturnType::VALUE)
            )
            .await,
            as_list!(5)
        );

        reset_map(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_rank(BIN, 1, MapReturnType::VALUE)
            )
            .await,
            int(2)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_rank_range(BIN, 1, 2, MapReturnType::VALUE)
            )
            .await,
            as_list!(3, 4)
        );

        reset_map(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_rank_range_from(BIN, 3, MapReturnType::VALUE)
            )
            .await,
            as_list!(4, 5)
        );

        reset_map(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_key_relative_index_range(
                    BIN,
                    as_val!("b"),
                    2,
                    MapReturnType::VALUE
                )
            )
            .await,
            as_list!(4, 5)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_key_relative_index_range_count(
                    BIN,
                    as_val!("c"),
                    0,
                    2,
                    MapReturnType::VALUE
                )
            )
            .await,
            as_list!(3)
        );

        reset_map(&client, &key).await;
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_value_relative_rank_range_count(
                    BIN,
                    as_val!(3),
                    2,
                    2,
                    MapReturnType::VALUE
                )
            )
            .await,
            as_list!(5)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_value_relative_rank_range(BIN, as_val!(2), 1, MapReturnType::VALUE)
            )
            .await,
            as_list!(3, 4)
        );

        // Nested get by key through a map-key context.
        reset_map(&client, &key).await;
        op1(
            &client,
            &key,
            maps::put(
                &mp,
                BIN,
                as_val!("ctxtest"),
                as_map!("x" => 7, "y" => 8, "z" => 9),
            ),
        )
        .await;
        assert_eq!(
            op1(
                &client,
                &key,
                maps::get_by_key(BIN, as_val!("y"), MapReturnType::VALUE)
                    .context(vec![ctx_map_key(as_val!("ctxtest"))])
            )
            .await,
            int(8)
        );
    });
}

#[test]
fn map_write_flags_order_and_contexts() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "cdt", "map-flags");
        let create_only = MapPolicy::new(MapOrder::Unordered, MapWriteFlags::CREATE_ONLY);
        let update_only = MapPolicy::new(MapOrder::Unordered, MapWriteFlags::UPDATE_ONLY);
        op1(
            &client,
            &key,
            maps::put(&create_only, BIN, as_val!("a"), as_val!(1)),
        )
        .await;
        assert_server_error(
            client
                .operate(
                    &wp,
                    &key,
                    &[maps::put(&create_only, BIN, as_val!("a"), as_val!(2))],
                )
                .await,
            ResultCode::ElementExists,
            "create-only on an existing key",
        );
        assert_server_error(
            client
                .operate(
                    &wp,
                    &key,
                    &[maps::put(&update_only, BIN, as_val!("b"), as_val!(2))],
                )
                .await,
            ResultCode::ElementNotFound,
            "update-only on a missing key",
        );
        let update_no_fail = MapPolicy::new(
            MapOrder::Unordered,
            MapWriteFlags::UPDATE_ONLY | MapWriteFlags::NO_FAIL,
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::put(&update_no_fail, BIN, as_val!("b"), as_val!(2))
            )
            .await,
            int(1)
        );

        // A key-ordered map is returned sorted (and decoded as a sorted map).
        let key = as_key!(NS, "cdt", "map-ordered");
        let ordered = MapPolicy::new(MapOrder::KeyOrdered, MapWriteFlags::DEFAULT);
        for (k, v) in [("c", 3), ("a", 1), ("b", 2)] {
            op1(
                &client,
                &key,
                maps::put(&ordered, BIN, as_val!(k), as_val!(v)),
            )
            .await;
        }
        let got = read_bin(&client, &key).await;
        assert!(matches!(got, Value::SortedMap(_)), "{got:?}");
        assert_eq!(got, as_map!("a" => 1, "b" => 2, "c" => 3));
        assert_eq!(
            op1(
                &client,
                &key,
                maps::get_by_index(BIN, -1, MapReturnType::KEY)
            )
            .await,
            as_val!("c")
        );

        // Return types: key-value keeps pair order (the client decodes it as a key-value
        // list), inverted selects the complement, reverse rank counts from the top.
        assert_eq!(
            op1(
                &client,
                &key,
                maps::get_by_index_range(BIN, 0, 2, MapReturnType::KEY_VALUE)
            )
            .await,
            Value::KeyValueList(vec![(as_val!("a"), int(1)), (as_val!("b"), int(2))])
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::get_by_index_range(BIN, 0, 1, MapReturnType::KEY.inverted())
            )
            .await,
            as_list!("b", "c")
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::get_by_key(BIN, as_val!("a"), MapReturnType::REVERSE_RANK)
            )
            .await,
            int(2)
        );
        assert_eq!(
            op1(
                &client,
                &key,
                maps::remove_by_value_range(
                    BIN,
                    as_val!(2),
                    Value::Nil,
                    MapReturnType::ORDERED_MAP
                )
            )
            .await,
            as_map!("b" => 2, "c" => 3)
        );
        assert_eq!(read_bin(&client, &key).await, as_map!("a" => 1));

        // Lists inside maps, created on demand through a create context.
        let key = as_key!(NS, "cdt", "map-ctx");
        op1(
            &client,
            &key,
            maps::put(&MapPolicy::default(), BIN, as_val!("key1"), as_val!(1)),
        )
        .await;
        let ctx = vec![ctx_map_key(as_val!("sub"))];
        let lp = ListPolicy::default();
        let rec = client
            .operate(
                &wp,
                &key,
                &[
                    lists::create(BIN, ListOrderType::Ordered, false).context(ctx.clone()),
                    lists::append(&lp, BIN, as_val!(3)).context(ctx.clone()),
                    lists::append(&lp, BIN, as_val!(1)).context(ctx.clone()),
                    lists::get_range_from(BIN, 0).context(ctx.clone()),
                ],
            )
            .await
            .expect("nested create");
        // The create (a set-type op) has no result; under RESPOND_ALL_OPS the server still
        // answers a NULL slot for it (`write.c`, CDT_MODIFY branch), which client 3.0 keeps in
        // an operate's MultiResult. The client suite's own expectation omits that slot.
        assert_eq!(
            rec.bins.get(BIN),
            Some(&Value::MultiResult(vec![
                Value::Nil,
                int(1),
                int(2),
                as_list!(1, 3)
            ]))
        );
        // A context pointing at a missing key without create is not applicable.
        assert_server_error(
            client
                .operate(
                    &wp,
                    &key,
                    &[lists::append(&lp, BIN, as_val!(1))
                        .context(vec![ctx_map_key(as_val!("nope"))])],
                )
                .await,
            ResultCode::OpNotApplicable,
            "context on a missing key",
        );
        // A list index context on a list of lists.
        let key = as_key!(NS, "cdt", "list-ctx");
        client
            .put(
                &wp,
                &key,
                &[as_bin!(BIN, as_list!(as_list!(1, 2), as_list!(3)))],
            )
            .await
            .expect("put");
        assert_eq!(
            op1(
                &client,
                &key,
                lists::append(&lp, BIN, as_val!(4)).context(vec![ctx_list_index(1)])
            )
            .await,
            int(2)
        );
        assert_eq!(
            read_bin(&client, &key).await,
            as_list!(as_list!(1, 2), as_list!(3, 4))
        );
    });
}

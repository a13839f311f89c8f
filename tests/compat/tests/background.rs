//! Background operations: `query_operate` applies write ops to every record of a set on the
//! server; the returned task polls `query-show` until the job is done.

mod common;

use aerospike::task::Task;
use aerospike::{as_bin, as_key, operations, Bins, ReadPolicy, Statement, Value, WritePolicy};
use common::{connect, run, TestServer, NS};

#[test]
fn query_operate_updates_every_record_of_the_set_and_only_that_set() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        for i in 0..300i64 {
            client
                .put(&wp, &as_key!(NS, "bg", i), &[as_bin!("n", i)])
                .await
                .expect("put");
        }
        client
            .put(&wp, &as_key!(NS, "other", 1), &[as_bin!("n", 1)])
            .await
            .expect("put other");
        let mut st = Statement::new(NS, "bg", Bins::All);
        st.set_operations([
            operations::put(&as_bin!("tag", "done")),
            operations::add(&as_bin!("n", 1000)),
        ]);
        let task = client.query_operate(&wp, st).await.expect("start job");
        task.wait_till_complete(None).await.expect("job completes");
        for i in 0..300i64 {
            let r = client
                .get(&ReadPolicy::default(), &as_key!(NS, "bg", i), Bins::All)
                .await
                .expect("get");
            assert_eq!(r.bins.get("n"), Some(&Value::Int(i + 1000)));
            assert_eq!(r.bins.get("tag"), Some(&Value::from("done")));
        }
        let other = client
            .get(&ReadPolicy::default(), &as_key!(NS, "other", 1), Bins::All)
            .await
            .expect("get other");
        assert_eq!(other.bins.get("n"), Some(&Value::Int(1)));
        assert!(other.bins.get("tag").is_none());
    });
}

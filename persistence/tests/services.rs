//! Smoke test of the service chain: real Redis and the MongoDB wire server
//! that `scripts/test.sh` starts, reached from Rust over real sockets.

use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};
use tessera_persistence::services;

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[tokio::test]
async fn redis_round_trips_a_value() {
    let url = services::redis_url().unwrap_or_else(|e| panic!("{e}"));
    let client = redis::Client::open(url.as_str()).expect("valid redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable");
    let key = unique("tessera:smoke");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("hello")
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    let back: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(back, "hello");
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn mongodb_round_trips_a_document() {
    let uri = services::mongodb_uri().unwrap_or_else(|e| panic!("{e}"));
    let client = mongodb::Client::with_uri_str(&uri)
        .await
        .expect("valid mongodb uri");
    let collection = client
        .database("tessera_smoke")
        .collection::<Document>(&unique("smoke"));
    collection
        .insert_one(doc! { "_id": 7, "name": "tessera", "level": 3 })
        .await
        .expect("mongodb reachable");
    collection
        .update_one(doc! { "_id": 7 }, doc! { "$set": { "level": 4 } })
        .await
        .unwrap();
    let found: Vec<Document> = collection
        .find(doc! { "_id": 7 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].get_i32("level").unwrap(), 4);
    collection.drop().await.unwrap();
}

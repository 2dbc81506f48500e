//! The confirm-mode publisher (src/platform/amqp.rs) against the real RabbitMQ: a closed publish channel is
//! reopened once by the publisher's reconnect task, and no publish waits behind another caller's future.

use std::time::Duration;

use futures_util::FutureExt;
use kafka_component::platform::amqp::{self, AmqpError, Outgoing, Publisher};
use kafka_component::settings::{AmqpSettings, Env, Settings};
use lapin::options::{ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::json;

use crate::harness::*;

fn amqp_settings(rb: &Rabbit, extra: &[(&str, &str)]) -> AmqpSettings {
    let mut env = rb.env("http://127.0.0.1:9", "produce");
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Settings::from_env(&Env::from_pairs(env))
        .unwrap()
        .amqp
        .unwrap()
}

fn data(rb: &Rabbit, n: &str) -> Outgoing {
    Outgoing::new(
        rb.rk("data"),
        serde_json::to_vec(&json!({ "n": n })).unwrap(),
        FieldTable::default(),
    )
}

/// The exchange of `rb` again, with the data queue bound.
async fn redeclare(rb: &Rabbit) {
    let conn = Connection::connect(&rb.addr, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        rb.exchange().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        rb.q("data").into(),
        rb.exchange().into(),
        rb.rk("data").into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

/// PROTOCOL.md 10.47 and the "mutex held across a reconnect" issue: the broker closes the publish channel
/// (a publish to an exchange that does not exist). A publish that found the channel closed is then parked
/// (polled once, never again): with the channel behind a mutex held across the reconnect, that parked future
/// would hold the lock and every other publish would wait for good. Here the other publishes go through
/// within seconds, the publisher reconnects exactly once for all of them, and one caller's sends stay in order.
#[tokio::test]
async fn a_closed_channel_is_reopened_once_and_no_publish_waits_behind_a_parked_one() {
    let rb = Rabbit::setup("publisher").await;
    // One retry (100 ms later), so the publish into the missing exchange gives up quickly.
    let settings = amqp_settings(&rb, &[("ELASTICIO_AMQP_PUBLISH_RETRY_ATTEMPTS", "1")]);
    let conn = amqp::connect(&settings, "write").await.unwrap();
    let publisher = Publisher::new(conn, &settings).await.unwrap();
    publisher.publish(data(&rb, "before")).await.unwrap();
    assert_eq!(publisher.reconnects(), 0);

    // The broker closes the channel of a publish to a missing exchange (404); so does the retry on the
    // reopened channel.
    rb.ch
        .exchange_delete(rb.exchange().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    let failed = publisher.publish(data(&rb, "lost")).await;
    assert!(
        matches!(failed, Err(AmqpError::NotConfirmed { attempts: 2, .. })),
        "{failed:?}"
    );
    let base = publisher.reconnects();
    assert_eq!(base, 1, "the retry reopened the channel once");
    redeclare(&rb).await;

    // The channel is closed again. This publish asks for a reconnect and is then never polled until the end.
    let mut parked = Box::pin(publisher.publish(data(&rb, "parked")));
    let early = (&mut parked).now_or_never();
    let others = futures_util::future::join_all(
        (0..5).map(|i| publisher.publish(data(&rb, &format!("other{i}")))),
    );
    let others = tokio::time::timeout(Duration::from_secs(15), others)
        .await
        .expect("publishes waited behind the parked one");
    assert!(others.iter().all(Result::is_ok), "{others:?}");
    match early {
        Some(result) => result.unwrap(),
        None => tokio::time::timeout(Duration::from_secs(15), parked)
            .await
            .expect("the parked publish never finished")
            .unwrap(),
    }
    assert_eq!(
        publisher.reconnects(),
        base + 1,
        "one reconnect for every publish that found the channel closed"
    );

    // One caller's sends reach the channel in call order, confirms awaited afterwards.
    let mut confirming = Vec::new();
    for i in 0..3 {
        confirming.push(publisher.send(data(&rb, &format!("seq{i}"))).await);
    }
    for c in confirming {
        c.wait().await.unwrap();
    }

    let got = rb.take("data", 10, Duration::from_secs(10)).await;
    let names: Vec<String> = got
        .iter()
        .map(|g| g.json()["n"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert_eq!(names[0], "before");
    assert!(!names.contains(&"lost".to_owned()));
    let mut middle = names[1..7].to_vec();
    middle.sort();
    assert_eq!(
        middle,
        ["other0", "other1", "other2", "other3", "other4", "parked"]
    );
    assert_eq!(names[7..], ["seq0", "seq1", "seq2"]);
    publisher.close().await;
    assert_eq!(publisher.reconnects(), base + 1);
    rb.teardown().await;
}

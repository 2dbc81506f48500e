//! One integration-test binary (each extra binary re-links librdkafka). Needs RabbitMQ at `AMQP_ADDR`
//! (default amqp://guest:guest@127.0.0.1:5672/%2f); `scripts/test.sh` starts what is needed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::let_underscore_must_use,
    missing_debug_implementations,
    dead_code
)]

mod bad_input;
mod consume;
mod consume_dlt;
mod consume_observe;
mod consume_stall;
mod consume_subscribe;
mod fatal;
mod harness;
mod local;
mod msk_iam;
mod oauth;
mod platform_tls;
mod produce;
mod produce_emit;
mod produce_eos;
mod props;
mod props_input;
mod protocol;
mod publisher;
mod real_kafka;
mod runtime;
mod secrets;
mod verify;

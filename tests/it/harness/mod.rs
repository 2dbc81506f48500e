//! Test harness, by role: `rabbit` (a uniquely named AMQP topology on the real RabbitMQ), `worker` (a fake
//! platform API and the worker binary as a child process with captured output), `kafka` (topics, records,
//! offsets on the shared Apache Kafka broker), `brokers` (Kafka brokers of a test's own), `assertions`
//! (checks of emitted messages), `wait` (waiting on observable state with a deadline).

mod assertions;
mod brokers;
mod kafka;
mod rabbit;
mod wait;
mod worker;

pub use assertions::*;
pub use brokers::*;
pub use kafka::*;
pub use rabbit::*;
pub use wait::*;
pub use worker::*;

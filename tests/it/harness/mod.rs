//! Test harness, one file per role:
//! - `rabbit`: a uniquely named AMQP topology per test on the real RabbitMQ; `rabbitmqctl`: what only the
//!   broker's tooling shows (unacknowledged deliveries, a consumer's prefetch);
//! - `worker`: a fake platform API and the worker binary as a child process with captured output, and the one
//!   setup path for workers (`step_env`, `spawn_ready`, `start_step`, `start_worker`, `service_env`);
//! - `kafka`: records on the shared Apache Kafka broker; `topics`; `groups` (committed offsets, members and
//!   assignment); `brokers`: Kafka brokers of a test's own, to kill and restart;
//! - `assertions`: checks of emitted messages;
//! - `proxy`: a loopback TCP proxy in front of a broker that can go silent (the stall watchdog's fault);
//! - `wait`: waiting on observable state with a deadline (the suites' only poll interval).

mod assertions;
mod brokers;
mod groups;
mod kafka;
mod proxy;
mod rabbit;
mod rabbitmqctl;
mod topics;
mod wait;
mod worker;

pub use assertions::*;
pub use brokers::*;
pub use groups::*;
pub use kafka::*;
#[allow(unused_imports)]
// the fault suite compiles this harness too and has no use for the proxy
pub use proxy::*;
pub use rabbit::*;
pub use topics::*;
pub use wait::*;
pub use worker::*;

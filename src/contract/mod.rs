//! The contract between the runtimes (the platform worker, the local runner) and the functions (Produce,
//! Consume): what a call receives ([`Execution`]), how it emits ([`Emitter`]) and how it fails
//! ([`FunctionError`]). Both sides depend on this module; it depends on neither.

mod emit;
mod error;
mod execution;
pub mod json;
mod message;

pub use emit::{Confirm, Emit, EmitError, EmitFuture, Emitter, Progress};
pub use error::{Action, Fault, FunctionError, error_chain};
pub use execution::{Execution, ExecutionIds, Fatal, Function, Resolve};
pub use message::{Decimal, RawMessage, new_message};

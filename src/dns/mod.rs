//! The DNS side: wire format, answers, and the UDP and TCP servers.

pub mod engine;
pub mod server;
pub mod wire;

pub use engine::{Outcome, Transport, respond};

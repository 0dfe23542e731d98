//! The DNS side: wire format, answers, and the UDP and TCP servers.

#[cfg(target_os = "linux")]
pub mod batch;
pub mod engine;
pub mod ratelimit;
pub mod server;
pub mod wire;

pub use engine::{Outcome, Transport, respond};

#[cfg(test)]
mod tests_conformance;

//! Accepting TCP connections.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// The next connection on `listener`. An accept error (EMFILE and the like: the
/// listener's connection limit is meant to keep it from happening) is logged as
/// "`what` accept error", and accepting goes on 50 ms later, once descriptors may have
/// come back.
pub(crate) async fn accept(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(s) => return s,
            Err(e) => {
                tracing::warn!(error = %e, "{what} accept error");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

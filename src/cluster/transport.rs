//! chitchat's `Transport` over one UDP socket, every datagram sealed (see [`seal`]).
//!
//! chitchat 0.11 keeps `ChitchatMessage`'s (de)serialisation and the `Transport`/`Socket`
//! traits public; this is the whole of the integration. A datagram that does not open,
//! or opens to something that is not a gossip message, is counted by reason and dropped;
//! the receive loop goes on.
//!
//! [`seal`]: super::seal

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use async_trait::async_trait;
use chitchat::transport::{Socket, Transport};
use chitchat::{ChitchatMessage, Deserializable, Serializable};

use super::seal::{ClusterKey, Opener, Reject, RejectCounters, Sealer};

/// The largest UDP payload (IPv4); a sealed message over it is not sent (and counted).
pub const MAX_DATAGRAM: usize = 65_507;

/// Opens sealed UDP sockets for chitchat.
pub struct SealedUdpTransport {
    key: ClusterKey,
    node: String,
    session: u64,
    counters: Arc<RejectCounters>,
}

impl SealedUdpTransport {
    pub fn new(key: ClusterKey, node: &str, session: u64, counters: Arc<RejectCounters>) -> Self {
        Self {
            key,
            node: node.to_owned(),
            session,
            counters,
        }
    }
}

#[async_trait]
impl Transport for SealedUdpTransport {
    async fn open(&self, listen: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = tokio::net::UdpSocket::bind(listen)
            .await
            .with_context(|| format!("cannot bind the cluster gossip socket {listen}/udp"))?;
        Ok(Box::new(SealedUdpSocket {
            socket,
            sealer: Sealer::new(&self.key, &self.node, self.session),
            opener: Arc::new(Mutex::new(Opener::new(&self.key, &self.node, self.session))),
            counters: self.counters.clone(),
            plain: Vec::with_capacity(MAX_DATAGRAM),
            sealed: Vec::with_capacity(MAX_DATAGRAM + 128),
            recv: vec![0u8; MAX_DATAGRAM + 1].into_boxed_slice(),
        }))
    }
}

struct SealedUdpSocket {
    socket: tokio::net::UdpSocket,
    sealer: Sealer,
    opener: Arc<Mutex<Opener>>,
    counters: Arc<RejectCounters>,
    plain: Vec<u8>,
    sealed: Vec<u8>,
    recv: Box<[u8]>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::OutOfMemory
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[async_trait]
impl Socket for SealedUdpSocket {
    async fn send(&mut self, to: SocketAddr, msg: ChitchatMessage) -> anyhow::Result<()> {
        self.plain.clear();
        msg.serialize(&mut self.plain);
        self.sealer.seal(&self.plain, &mut self.sealed);
        if self.sealed.len() > MAX_DATAGRAM {
            // chitchat sizes its deltas for a bare UDP payload; with the envelope a full one
            // does not fit. The peer asks again next round and gets the next part.
            self.counters.count_oversize();
            tracing::debug!(len = self.sealed.len(), %to, "sealed gossip message too large, not sent");
            return Ok(());
        }
        match self.socket.send_to(&self.sealed, to).await {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot send gossip to {to}")),
        }
    }

    async fn recv(&mut self) -> anyhow::Result<(SocketAddr, ChitchatMessage)> {
        loop {
            let (len, from) = match self.socket.recv_from(&mut self.recv).await {
                Ok(r) => r,
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(e).context("the cluster gossip socket failed"),
            };
            let datagram = &mut self.recv[..len];
            let opened = {
                let mut opener = self.opener.lock().unwrap_or_else(|p| p.into_inner());
                opener.open(datagram, now_ms()).map(|o| o.payload.to_vec())
            };
            let payload = match opened {
                Ok(p) => p,
                Err(r) => {
                    self.counters.count(r);
                    tracing::debug!(%from, reason = %r, "cluster datagram dropped");
                    continue;
                }
            };
            let mut buf = payload.as_slice();
            match ChitchatMessage::deserialize(&mut buf) {
                Ok(msg) => return Ok((from, msg)),
                Err(_) => {
                    self.counters.count(Reject::Undecodable);
                    tracing::debug!(%from, "cluster datagram opened but is not a gossip message");
                }
            }
        }
    }
}

//! chitchat's `Transport` over one UDP socket, every datagram sealed (see [`seal`]).
//!
//! chitchat 0.11 keeps `ChitchatMessage`'s (de)serialisation and the `Transport`/`Socket`
//! traits public; this is the whole of the integration. A datagram that does not open,
//! or opens to something that is not a gossip message, is counted by reason and dropped;
//! the receive loop goes on.
//!
//! [`seal`]: super::seal

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use async_trait::async_trait;
use chitchat::transport::{Socket, Transport};
use chitchat::{ChitchatMessage, Deserializable, Serializable};

use super::seal::{self, ClusterKey, Opener, Reject, RejectCounters, Sealer};

/// The largest UDP payload (IPv4). chitchat fills messages up to it; one that does not fit
/// with the envelope is sent in parts.
pub const MAX_DATAGRAM: usize = 65_507;
/// Messages whose parts are being put together, at most; the oldest is dropped first.
const MAX_PENDING: usize = 16;
/// Parts of a message that are not all here after this long are dropped (milliseconds).
const PART_TIMEOUT_MS: u64 = 5_000;

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
            pending: HashMap::new(),
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
    pending: HashMap<PartsKey, Parts>,
}

/// A message in parts: sender, session, sequence number of its first part.
type PartsKey = (String, u64, u64);

/// The parts of one message received so far, and when the first arrived (ms).
struct Parts {
    since_ms: u64,
    parts: Vec<Option<Vec<u8>>>,
}

/// One opened part.
struct Part {
    sender: String,
    session: u64,
    seq: u64,
    index: u8,
    count: u8,
    payload: Vec<u8>,
}

impl SealedUdpSocket {
    async fn send_datagram(&self, to: SocketAddr) -> anyhow::Result<()> {
        match self.socket.send_to(&self.sealed, to).await {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot send gossip to {to}")),
        }
    }

    /// Takes in one part; returns the whole message once every part is here.
    fn put_together(&mut self, part: Part, now: u64) -> Option<Vec<u8>> {
        self.pending
            .retain(|_, p| now.saturating_sub(p.since_ms) <= PART_TIMEOUT_MS);
        let first = part.seq.checked_sub(u64::from(part.index))?;
        let key = (part.sender, part.session, first);
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.since_ms)
                .map(|(k, _)| k.clone())?;
            self.pending.remove(&oldest);
        }
        let count = usize::from(part.count);
        let entry = self.pending.entry(key.clone()).or_insert_with(|| Parts {
            since_ms: now,
            parts: vec![None; count],
        });
        if entry.parts.len() != count {
            return None;
        }
        entry.parts[usize::from(part.index)] = Some(part.payload);
        if entry.parts.iter().any(Option::is_none) {
            return None;
        }
        let done = self.pending.remove(&key)?;
        Some(done.parts.into_iter().flatten().flatten().collect())
    }
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
        let room = MAX_DATAGRAM - self.sealer.overhead();
        if self.plain.len() <= room {
            self.sealer.seal(&self.plain, &mut self.sealed);
            return self.send_datagram(to).await;
        }
        // chitchat sizes its messages for a bare UDP payload; with the envelope a full one
        // does not fit, so it goes in parts.
        let count = self.plain.len().div_ceil(room);
        if count > usize::from(seal::MAX_PARTS) {
            self.counters.count_oversize();
            return Ok(());
        }
        let plain = std::mem::take(&mut self.plain);
        let mut result = Ok(());
        for (i, chunk) in plain.chunks(room).enumerate() {
            self.sealer
                .seal_part(chunk, i as u8, count as u8, &mut self.sealed);
            result = result.and(self.send_datagram(to).await);
        }
        self.plain = plain;
        result
    }

    async fn recv(&mut self) -> anyhow::Result<(SocketAddr, ChitchatMessage)> {
        loop {
            let (len, from) = match self.socket.recv_from(&mut self.recv).await {
                Ok(r) => r,
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(e).context("the cluster gossip socket failed"),
            };
            let datagram = &mut self.recv[..len];
            let now = now_ms();
            let opened = {
                let mut opener = self.opener.lock().unwrap_or_else(|p| p.into_inner());
                opener.open(datagram, now).map(|o| Part {
                    sender: o.sender.to_owned(),
                    session: o.session,
                    seq: o.seq,
                    index: o.part_index,
                    count: o.part_count,
                    payload: o.payload.to_vec(),
                })
            };
            let payload = match opened {
                Ok(part) if part.count == 1 => part.payload,
                Ok(part) => match self.put_together(part, now) {
                    Some(whole) => whole,
                    None => continue,
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (
        Box<dyn Socket>,
        Box<dyn Socket>,
        SocketAddr,
        Arc<RejectCounters>,
    ) {
        let key = ClusterKey::from_bytes([3; 32]);
        let a_addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        // Bind to learn free ports, then open the transports there.
        let pa = std::net::UdpSocket::bind(a_addr)
            .unwrap()
            .local_addr()
            .unwrap();
        let pb = std::net::UdpSocket::bind(a_addr)
            .unwrap()
            .local_addr()
            .unwrap();
        let counters = Arc::new(RejectCounters::default());
        let a = SealedUdpTransport::new(key.clone(), "a", 1, Arc::new(RejectCounters::default()))
            .open(pa)
            .await
            .unwrap();
        let b = SealedUdpTransport::new(key, "b", 1, counters.clone())
            .open(pb)
            .await
            .unwrap();
        (a, b, pb, counters)
    }

    #[tokio::test]
    async fn messages_too_large_for_one_datagram_go_in_parts() {
        let (mut a, mut b, to, counters) = pair().await;
        for len in [10, 65_400, 65_530] {
            let msg = || ChitchatMessage::Syn {
                cluster_id: "x".repeat(len),
                digest: Default::default(),
            };
            a.send(to, msg()).await.unwrap();
            let (_, got) = tokio::time::timeout(std::time::Duration::from_secs(5), b.recv())
                .await
                .expect("received within 5 s")
                .unwrap();
            assert_eq!(got, msg(), "length {len}");
        }
        assert_eq!(counters.total(), 0);
    }

    #[tokio::test]
    async fn garbage_is_counted_and_the_next_message_still_arrives() {
        let (mut a, mut b, to, counters) = pair().await;
        let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        raw.send_to(b"junk", to).unwrap();
        raw.send_to(
            b"SPG\x01 but not sealed by anyone we know, long enough to try",
            to,
        )
        .unwrap();
        a.send(to, ChitchatMessage::BadCluster).await.unwrap();
        let (_, got) = tokio::time::timeout(std::time::Duration::from_secs(5), b.recv())
            .await
            .expect("received within 5 s")
            .unwrap();
        assert_eq!(got, ChitchatMessage::BadCluster);
        assert_eq!(counters.get(Reject::NotOurs), 1);
        assert_eq!(counters.get(Reject::Forged), 1);
    }
}

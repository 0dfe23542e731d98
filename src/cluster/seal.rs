//! The envelope of every cluster datagram: ChaCha20-Poly1305 (from `ring`) under the
//! shared cluster key, with a random 96-bit nonce, the sender's node name and a per-boot
//! session and sequence number inside, so that a datagram that is not ours, is cut,
//! forged or replayed is dropped and counted — never a panic.
//!
//! ```text
//! "SPG" | version (1) | nonce (12) | sealed( name_len (1) | name | session (8) | seq (8) | part (1) | payload ) | tag (16)
//! ```
//!
//! `part` is `index << 4 | count`: 1 (`0 << 4 | 1`) for a message in one datagram; a
//! message too large for one datagram with the envelope goes in up to 15 parts with
//! consecutive sequence numbers, put together by the transport.
//!
//! The 4-byte header and the nonce are the associated data. Replay protection keeps, per
//! sender name, the newest session seen and a window of the last [`WINDOW`] sequence
//! numbers: an older session or a sequence number seen (or older than the window) is a
//! replay. Sessions are the boot time in milliseconds (and random low bits), so a
//! restarted node's new session is newer; a sender silent for [`FORGET_AFTER_MS`] is
//! forgotten, so that a node whose clock stepped back before its restart is heard again.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

const MAGIC: &[u8; 3] = b"SPG";
const VERSION: u8 = 1;
const HEADER: usize = 4;
const NONCE: usize = 12;
const TAG: usize = 16;
/// Longest node name (bytes).
pub const MAX_NAME: usize = 64;
/// Sequence numbers accepted out of order, behind the newest.
pub const WINDOW: u64 = 128;
/// A sender silent this long is forgotten (milliseconds).
pub const FORGET_AFTER_MS: u64 = 10 * 60 * 1000;
/// Senders remembered at most; the longest silent is forgotten first.
const MAX_SENDERS: usize = 4096;
/// Bytes a sealed datagram adds to its payload, at most.
pub const OVERHEAD: usize = HEADER + NONCE + 1 + MAX_NAME + 8 + 8 + 1 + TAG;
/// Most parts one message may be sealed in.
pub const MAX_PARTS: u8 = 15;

/// The shared cluster key: 32 bytes.
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterKey({})", self.fingerprint())
    }
}

/// Why a cluster key cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("is not base64")]
    NotBase64,
    #[error("holds {0} bytes after base64, not 32")]
    Length(usize),
    #[error("cannot read {} ({source})", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{} {reason}", path.display())]
    File {
        path: std::path::PathBuf,
        reason: Box<KeyError>,
    },
}

impl ClusterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads the key file's text: 32 bytes in base64 (standard alphabet, padding
    /// optional), surrounding white space ignored.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        let bytes = STANDARD
            .decode(t)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t))
            .map_err(|_| KeyError::NotBase64)?;
        let n = bytes.len();
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length(n))?;
        Ok(Self(bytes))
    }

    /// Reads a key file (see [`ClusterKey::from_base64`]).
    pub fn load(path: &std::path::Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_base64(&text).map_err(|e| KeyError::File {
            path: path.to_owned(),
            reason: Box::new(e),
        })
    }

    /// The key's 32 bytes.
    pub fn bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The key used without `key_file` (loopback clusters only): public, so it gives the
    /// same framing and checks but no secrecy.
    pub fn insecure_default() -> Self {
        Self(*b"signpost-cluster-no-key-file----")
    }

    /// A random key, base64, as `key_file` wants it.
    pub fn generate_base64() -> String {
        let mut k = [0u8; 32];
        SystemRandom::new()
            .fill(&mut k)
            .expect("the system random source works");
        STANDARD.encode(k)
    }

    /// A short public fingerprint (16 hex digits of SHA-256 over a label and the key):
    /// the gossip cluster id, so nodes with different keys never join one another.
    pub fn fingerprint(&self) -> String {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"signpost cluster key fingerprint\0");
        ctx.update(&self.0);
        let d = ctx.finish();
        d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &self.0).expect("32-byte key"))
    }
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    /// Not a signpost cluster datagram (magic or version).
    NotOurs,
    /// Shorter than its header, nonce and tag.
    Truncated,
    /// Did not open under our key: forged, corrupted, or another cluster's key.
    Forged,
    /// Opened, but the inside is not well formed.
    Malformed,
    /// A session older than the sender's newest, or a sequence number already seen.
    Replayed,
    /// Opened, but claims this node's own name from another session (two nodes share a
    /// name).
    OwnName,
    /// Opened, but the gossip message inside does not decode.
    Undecodable,
}

impl Reject {
    pub const ALL: [Reject; 7] = [
        Reject::NotOurs,
        Reject::Truncated,
        Reject::Forged,
        Reject::Malformed,
        Reject::Replayed,
        Reject::OwnName,
        Reject::Undecodable,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::NotOurs => "not_ours",
            Reject::Truncated => "truncated",
            Reject::Forged => "forged",
            Reject::Malformed => "malformed",
            Reject::Replayed => "replayed",
            Reject::OwnName => "own_name",
            Reject::Undecodable => "undecodable",
        }
    }

    fn index(self) -> usize {
        Reject::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Dropped datagrams, by reason (and sealed datagrams too large to send).
#[derive(Debug, Default)]
pub struct RejectCounters {
    by_reason: [AtomicU64; 7],
    oversize_sends: AtomicU64,
}

impl RejectCounters {
    pub fn count(&self, r: Reject) {
        self.by_reason[r.index()].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("signpost_cluster_rejected_datagrams_total", "reason" => r.as_str())
            .increment(1);
    }

    pub fn get(&self, r: Reject) -> u64 {
        self.by_reason[r.index()].load(Ordering::Relaxed)
    }

    /// Every reason with its count.
    pub fn snapshot(&self) -> Vec<(Reject, u64)> {
        Reject::ALL.iter().map(|r| (*r, self.get(*r))).collect()
    }

    pub fn total(&self) -> u64 {
        Reject::ALL.iter().map(|r| self.get(*r)).sum()
    }

    pub(crate) fn count_oversize(&self) {
        self.oversize_sends.fetch_add(1, Ordering::Relaxed);
    }

    /// Gossip messages that, sealed, were over the largest UDP datagram and not sent.
    pub fn oversize_sends(&self) -> u64 {
        self.oversize_sends.load(Ordering::Relaxed)
    }
}

/// Seals this node's datagrams.
pub struct Sealer {
    key: LessSafeKey,
    name: Vec<u8>,
    session: u64,
    seq: u64,
    rng: SystemRandom,
}

impl Sealer {
    /// `name` is this node's name (at most [`MAX_NAME`] bytes); `session` identifies this
    /// boot and must grow from one boot to the next (see [`new_session`]).
    pub fn new(key: &ClusterKey, name: &str, session: u64) -> Self {
        assert!(
            !name.is_empty() && name.len() <= MAX_NAME,
            "node name of 1 to {MAX_NAME} bytes"
        );
        Self {
            key: key.aead(),
            name: name.as_bytes().to_vec(),
            session,
            seq: 0,
            rng: SystemRandom::new(),
        }
    }

    /// Bytes the envelope adds to a payload for this node.
    pub fn overhead(&self) -> usize {
        HEADER + NONCE + 1 + self.name.len() + 8 + 8 + 1 + TAG
    }

    /// Writes the sealed datagram for a whole message `payload` to `out` (cleared first).
    pub fn seal(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        self.seal_part(payload, 0, 1, out);
    }

    /// Writes the sealed datagram for part `index` of `count` (1 to [`MAX_PARTS`]) of a
    /// message; the parts of one message must be sealed one after the other.
    pub fn seal_part(&mut self, payload: &[u8], index: u8, count: u8, out: &mut Vec<u8>) {
        assert!(
            (1..=MAX_PARTS).contains(&count) && index < count,
            "part {index} of {count}"
        );
        let mut nonce = [0u8; NONCE];
        self.rng
            .fill(&mut nonce)
            .expect("the system random source works");
        self.seq += 1;
        out.clear();
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let body = out.len();
        out.push(self.name.len() as u8);
        out.extend_from_slice(&self.name);
        out.extend_from_slice(&self.session.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.push(index << 4 | count);
        out.extend_from_slice(payload);
        let (head, inner) = out.split_at_mut(body);
        let (nonce, aad) = nonce_and_aad(nonce, head);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, aad, inner)
            .expect("ChaCha20-Poly1305 seals any length a datagram has");
        out.extend_from_slice(tag.as_ref());
    }
}

/// The datagram's nonce, and its header (magic, version, nonce) as the associated data.
fn nonce_and_aad(nonce: [u8; NONCE], head: &[u8]) -> (Nonce, Aad<&[u8]>) {
    (Nonce::assume_unique_for_key(nonce), Aad::from(head))
}

/// A session id for this boot: wall-clock milliseconds in the high bits, random low bits.
pub fn new_session(wall_ms: u64) -> u64 {
    let mut r = [0u8; 2];
    let _ = SystemRandom::new().fill(&mut r);
    (wall_ms << 16) | u64::from(u16::from_be_bytes(r))
}

struct SenderState {
    session: u64,
    /// Newest sequence number accepted.
    top: u64,
    /// Bit i set: `top - i` was accepted.
    seen: u128,
    last_ms: u64,
}

/// Opens datagrams from the peers and keeps the replay windows.
pub struct Opener {
    key: LessSafeKey,
    own_name: Vec<u8>,
    own_session: u64,
    senders: HashMap<Vec<u8>, SenderState>,
}

/// An opened datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    pub sender: &'a str,
    pub session: u64,
    pub seq: u64,
    /// Which part of its message this is (0 for a whole message).
    pub part_index: u8,
    /// How many parts its message has (1 for a whole message).
    pub part_count: u8,
    pub payload: &'a [u8],
}

impl Opener {
    pub fn new(key: &ClusterKey, own_name: &str, own_session: u64) -> Self {
        Self {
            key: key.aead(),
            own_name: own_name.as_bytes().to_vec(),
            own_session,
            senders: HashMap::new(),
        }
    }

    /// Opens `datagram` in place at wall time `now_ms`; the payload borrows from it.
    pub fn open<'a>(&mut self, datagram: &'a mut [u8], now_ms: u64) -> Result<Opened<'a>, Reject> {
        let n = datagram.len().min(MAGIC.len());
        if datagram.is_empty() || datagram[..n] != MAGIC[..n] {
            return Err(Reject::NotOurs);
        }
        if datagram.len() < HEADER {
            return Err(Reject::Truncated);
        }
        if datagram[3] != VERSION {
            return Err(Reject::NotOurs);
        }
        if datagram.len() < HEADER + NONCE + TAG + 1 + 1 + 17 {
            return Err(Reject::Truncated);
        }
        let (head, sealed) = datagram.split_at_mut(HEADER + NONCE);
        let nonce: [u8; NONCE] = head[HEADER..].try_into().map_err(|_| Reject::Truncated)?;
        let (nonce, aad) = nonce_and_aad(nonce, head);
        let plain = self
            .key
            .open_in_place(nonce, aad, sealed)
            .map_err(|_| Reject::Forged)?;
        let plain: &'a [u8] = plain;
        let name_len = *plain.first().ok_or(Reject::Malformed)? as usize;
        if name_len == 0 || name_len > MAX_NAME || plain.len() < 1 + name_len + 17 {
            return Err(Reject::Malformed);
        }
        let name = &plain[1..1 + name_len];
        let sender = std::str::from_utf8(name).map_err(|_| Reject::Malformed)?;
        let at = 1 + name_len;
        let session = u64::from_be_bytes(
            plain[at..at + 8]
                .try_into()
                .map_err(|_| Reject::Malformed)?,
        );
        let seq = u64::from_be_bytes(
            plain[at + 8..at + 16]
                .try_into()
                .map_err(|_| Reject::Malformed)?,
        );
        if name == self.own_name.as_slice() {
            // Our own datagram looped back is as good as a replay; another session with our
            // name is a second node with this name.
            return Err(if session == self.own_session {
                Reject::Replayed
            } else {
                Reject::OwnName
            });
        }
        let part = plain[at + 16];
        let (part_index, part_count) = (part >> 4, part & 0x0f);
        if part_count == 0 || part_index >= part_count {
            return Err(Reject::Malformed);
        }
        self.check_replay(name, session, seq, now_ms)?;
        Ok(Opened {
            sender,
            session,
            seq,
            part_index,
            part_count,
            payload: &plain[at + 17..],
        })
    }

    fn check_replay(
        &mut self,
        name: &[u8],
        session: u64,
        seq: u64,
        now_ms: u64,
    ) -> Result<(), Reject> {
        if let Some(s) = self.senders.get_mut(name) {
            let forgotten = now_ms.saturating_sub(s.last_ms) > FORGET_AFTER_MS;
            if session < s.session && !forgotten {
                return Err(Reject::Replayed);
            }
            if session != s.session {
                *s = SenderState {
                    session,
                    top: seq,
                    seen: 1,
                    last_ms: now_ms,
                };
                return Ok(());
            }
            if seq > s.top {
                let shift = seq - s.top;
                s.seen = if shift >= 128 { 0 } else { s.seen << shift };
                s.seen |= 1;
                s.top = seq;
            } else {
                let back = s.top - seq;
                if back >= WINDOW || s.seen & (1u128 << back) != 0 {
                    return Err(Reject::Replayed);
                }
                s.seen |= 1u128 << back;
            }
            s.last_ms = now_ms;
            return Ok(());
        }
        if self.senders.len() >= MAX_SENDERS
            && let Some(oldest) = self
                .senders
                .iter()
                .min_by_key(|(_, s)| s.last_ms)
                .map(|(k, _)| k.clone())
        {
            self.senders.remove(&oldest);
        }
        self.senders.insert(
            name.to_vec(),
            SenderState {
                session,
                top: seq,
                seen: 1,
                last_ms: now_ms,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn key(b: u8) -> ClusterKey {
        ClusterKey::from_bytes([b; 32])
    }

    fn sealed(s: &mut Sealer, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        s.seal(payload, &mut out);
        out
    }

    /// Asserts that a fresh opener under key 1 refuses `d` for one of `reasons`.
    fn assert_refused(mut d: Vec<u8>, reasons: &[Reject], what: &dyn std::fmt::Debug) {
        let r = Opener::new(&key(1), "hub-b", 1).open(&mut d, 0).map(|_| ());
        assert!(r.is_err_and(|e| reasons.contains(&e)), "{what:?}: {r:?}");
    }

    #[test]
    fn opens_what_it_sealed_with_the_sender_inside() {
        let mut s = Sealer::new(&key(1), "hub-a", 77);
        let mut o = Opener::new(&key(1), "hub-b", 5);
        let mut d = sealed(&mut s, b"hello gossip");
        assert!(d.len() <= b"hello gossip".len() + OVERHEAD);
        let got = o.open(&mut d, 0).unwrap();
        assert_eq!(got.sender, "hub-a");
        assert_eq!((got.session, got.seq), (77, 1));
        assert_eq!((got.part_index, got.part_count), (0, 1));
        assert_eq!(got.payload, b"hello gossip");
        // An empty payload is fine too.
        let mut d = sealed(&mut s, b"");
        assert_eq!(o.open(&mut d, 0).unwrap().payload, b"");
    }

    #[test]
    fn another_key_is_forged() {
        let mut s = Sealer::new(&key(1), "hub-a", 1);
        let mut o = Opener::new(&key(2), "hub-b", 1);
        let mut d = sealed(&mut s, b"x");
        assert_eq!(o.open(&mut d, 0), Err(Reject::Forged));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let mut s = Sealer::new(&key(1), "hub-a", 1);
        let d = sealed(&mut s, b"payload");
        for i in 0..d.len() * 8 {
            let mut bad = d.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert_refused(bad, &[Reject::Forged, Reject::NotOurs], &("bit", i));
        }
    }

    #[test]
    fn every_truncation_is_dropped() {
        let mut s = Sealer::new(&key(1), "hub-a", 1);
        let d = sealed(&mut s, b"payload");
        for len in 0..d.len() {
            let reasons = [Reject::Truncated, Reject::Forged, Reject::NotOurs];
            assert_refused(d[..len].to_vec(), &reasons, &("len", len));
        }
        let mut o = Opener::new(&key(1), "hub-b", 1);
        assert_eq!(o.open(&mut d[..10].to_vec(), 0), Err(Reject::Truncated));
        assert_eq!(o.open(&mut b"SP".to_vec(), 0), Err(Reject::Truncated));
        assert_eq!(o.open(&mut b"junk".to_vec(), 0), Err(Reject::NotOurs));
        assert_eq!(o.open(&mut Vec::new(), 0), Err(Reject::NotOurs));
    }

    #[test]
    fn replays_are_dropped_and_reordering_within_the_window_is_not() {
        let mut s = Sealer::new(&key(1), "hub-a", 10);
        let mut o = Opener::new(&key(1), "hub-b", 1);
        let d: Vec<Vec<u8>> = (0..200).map(|_| sealed(&mut s, b"m")).collect();
        // 5 arrives first, then 1..4 late: all accepted once.
        assert!(o.open(&mut d[4].clone(), 0).is_ok());
        for (i, m) in d.iter().enumerate().take(4) {
            assert!(o.open(&mut m.clone(), 0).is_ok(), "{i}");
        }
        for (i, m) in d.iter().enumerate().take(5) {
            assert_eq!(o.open(&mut m.clone(), 0), Err(Reject::Replayed), "{i}");
        }
        // Far ahead: what fell out of the window is a replay.
        assert!(o.open(&mut d[199].clone(), 0).is_ok());
        assert_eq!(o.open(&mut d[10].clone(), 0), Err(Reject::Replayed));
        assert!(o.open(&mut d[199 - 100].clone(), 0).is_ok());
    }

    #[test]
    fn a_new_session_is_taken_and_an_old_one_is_a_replay_until_forgotten() {
        let mut old = Sealer::new(&key(1), "hub-a", 100);
        let mut new = Sealer::new(&key(1), "hub-a", 200);
        let mut o = Opener::new(&key(1), "hub-b", 1);
        let old1 = sealed(&mut old, b"o");
        assert!(o.open(&mut old1.clone(), 0).is_ok());
        assert!(o.open(&mut sealed(&mut new, b"n"), 1).is_ok());
        assert_eq!(
            o.open(&mut sealed(&mut old, b"o"), 2),
            Err(Reject::Replayed)
        );
        // A sender silent for long is forgotten.
        assert!(
            o.open(&mut sealed(&mut old, b"o"), 2 + FORGET_AFTER_MS + 1)
                .is_ok()
        );
    }

    #[test]
    fn our_own_name_is_refused() {
        let mut me = Sealer::new(&key(1), "hub-a", 7);
        let mut twin = Sealer::new(&key(1), "hub-a", 8);
        let mut o = Opener::new(&key(1), "hub-a", 7);
        assert_eq!(o.open(&mut sealed(&mut me, b"x"), 0), Err(Reject::Replayed));
        assert_eq!(
            o.open(&mut sealed(&mut twin, b"x"), 0),
            Err(Reject::OwnName)
        );
    }

    /// Random bytes, and random bytes behind our header, never open and never panic.
    #[test]
    fn random_garbage_is_dropped() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed);
        let mut o = Opener::new(&key(1), "hub-b", 1);
        let counters = RejectCounters::default();
        for i in 0..20_000 {
            let len = rng.random_range(0..300);
            let mut d: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if i % 2 == 0 && d.len() >= 4 {
                d[..3].copy_from_slice(MAGIC);
                d[3] = VERSION;
            }
            match o.open(&mut d, 0) {
                Ok(x) => panic!("random bytes opened: {x:?}"),
                Err(r) => counters.count(r),
            }
        }
        assert_eq!(counters.total(), 20_000);
        assert!(counters.get(Reject::Forged) > 5_000);
        assert!(counters.get(Reject::NotOurs) > 5_000);
    }

    /// A datagram sealed under the right key whose inside is not well formed is refused.
    #[test]
    fn a_well_sealed_bad_inside_is_malformed() {
        let k = key(1);
        let aead = k.aead();
        let with_part = |part: u8| {
            let mut v = vec![1u8, b'x'];
            v.extend_from_slice(&[0; 16]);
            v.push(part);
            v
        };
        for inner in [
            vec![],
            vec![0u8; 20],
            vec![200u8; 30],
            {
                let mut v = vec![3u8, 0xff, 0xfe, 0xfd];
                v.extend_from_slice(&[0; 17]);
                v
            },
            with_part(0x00),
            with_part(0x22),
            with_part(0xf3),
        ] {
            let mut d = MAGIC.to_vec();
            d.push(VERSION);
            d.extend_from_slice(&[9u8; NONCE]);
            let mut body = inner.clone();
            let tag = aead
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([9u8; NONCE]),
                    Aad::from(&d[..]),
                    &mut body,
                )
                .unwrap();
            d.extend_from_slice(&body);
            d.extend_from_slice(tag.as_ref());
            assert_refused(d, &[Reject::Malformed, Reject::Truncated], &inner);
        }
    }

    #[test]
    fn keys_read_from_base64_and_fingerprints_differ() {
        let text = ClusterKey::generate_base64();
        let k = ClusterKey::from_base64(&format!("  {text}\n")).unwrap();
        assert_eq!(k.fingerprint().len(), 16);
        assert_ne!(k.fingerprint(), key(1).fingerprint());
        assert!(
            ClusterKey::from_base64("c2hvcnQ=")
                .unwrap_err()
                .to_string()
                .contains("holds 5 bytes")
        );
        assert!(
            ClusterKey::from_base64("not base64!")
                .unwrap_err()
                .to_string()
                .contains("base64")
        );
        assert!(!format!("{k:?}").contains(&text));
    }
}

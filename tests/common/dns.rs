//! DNS messages for the tests and benches, built and read with hickory-proto: the one
//! query builder ([`query`], [`with_edns`], [`with_ecs`]) and raw header reads. No I/O:
//! `bench/fixture.rs` includes it too.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};

/// A query for `name` and `rtype`, random ID, RD clear, no EDNS.
pub(crate) fn query(name: &str, rtype: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = false;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m
}

/// `m` with an OPT record: version, UDP payload size.
pub(crate) fn with_edns(mut m: Message, version: u8, payload: u16) -> Message {
    let mut e = Edns::new();
    e.set_version(version);
    e.set_max_payload(payload);
    m.set_edns(e);
    m
}

/// `m` with an OPT record (version 0, payload 1232) carrying ECS `addr/prefix`.
pub(crate) fn with_ecs(m: Message, addr: IpAddr, prefix: u8) -> Message {
    let mut m = with_edns(m, 0, 1232);
    if let Some(e) = m.edns.as_mut() {
        e.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(addr, prefix, 0)));
    }
    m
}

/// The addresses of the A records in `m`'s answer section, in order.
pub(crate) fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// The fixed header of a DNS message, read straight from the bytes (hickory would
/// normalise some of what the tests check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) id: u16,
    /// A response.
    pub(crate) qr: bool,
    pub(crate) opcode: u8,
    /// Authoritative answer.
    pub(crate) aa: bool,
    /// Truncated.
    pub(crate) tc: bool,
    /// Recursion desired, and available.
    pub(crate) rd: bool,
    pub(crate) ra: bool,
    /// The low 4 bits of the rcode (the rest is in the OPT record).
    pub(crate) rcode_low: u8,
    /// Record counts: QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT (see [`QD`], [`AN`], [`NS`],
    /// [`AR`]).
    pub(crate) counts: [u16; 4],
}

/// Indexes of [`Header::counts`]: question, answer, authority and additional sections.
pub(crate) const QD: usize = 0;
pub(crate) const AN: usize = 1;
pub(crate) const NS: usize = 2;
pub(crate) const AR: usize = 3;

impl Header {
    pub(crate) fn read(p: &[u8]) -> Header {
        assert!(p.len() >= 12, "message shorter than a header: {p:?}");
        let u16_at = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
        Header {
            id: u16_at(0),
            qr: p[2] & 0x80 != 0,
            opcode: (p[2] >> 3) & 0xF,
            aa: p[2] & 0x04 != 0,
            tc: p[2] & 0x02 != 0,
            rd: p[2] & 0x01 != 0,
            ra: p[3] & 0x80 != 0,
            rcode_low: p[3] & 0xF,
            counts: [4, 6, 8, 10].map(u16_at),
        }
    }
}

/// The question section of a message with one question, as bytes.
pub(crate) fn question_bytes(p: &[u8]) -> &[u8] {
    let mut i = 12;
    while p[i] != 0 {
        assert!(p[i] < 64, "compressed or extended label in a question");
        i += 1 + usize::from(p[i]);
    }
    &p[12..i + 1 + 4]
}

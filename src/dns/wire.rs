//! DNS messages on the wire: reading a query in place and writing an answer into a reused
//! buffer, with name compression. Nothing here allocates per query.

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::base::{Rcode, Rtype};
use crate::zone::name::MAX_NAME;

pub const HEADER_LEN: usize = 12;

/// EDNS option codes.
const OPT_NSID: u16 = 3;
const OPT_ECS: u16 = 8;
const OPT_EDE: u16 = 15;

/// An Extended DNS Error (RFC 8914): info code and extra text.
pub type Ede = (u16, &'static str);

/// Bytes the OPT record of an answer takes (RFC 6891 §6.1.2 plus its options).
pub fn opt_len(ecs: Option<ClientSubnet>, nsid: Option<&[u8]>, ede: Option<Ede>) -> usize {
    11 + ecs.map_or(0, |cs| 8 + usize::from(cs.source_prefix).div_ceil(8))
        + nsid.map_or(0, |n| 4 + n.len())
        + ede.map_or(0, |(_, t)| 6 + t.len())
}

/// Largest UDP payload signpost advertises and uses (DNS flag day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// EDNS Client Subnet (RFC 7871) as sent by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientSubnet {
    pub addr: IpAddr,
    pub source_prefix: u8,
}

/// The OPT record of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    pub ecs: Option<ClientSubnet>,
    /// The client asked for the server's identity (RFC 5001).
    pub nsid: bool,
}

/// A parsed query. The question name is kept twice, as sent (echoed in the answer) and
/// lowercased (the lookup key).
pub struct Query {
    pub id: u16,
    pub opcode: u8,
    pub rd: bool,
    pub cd: bool,
    pub qname_sent: [u8; MAX_NAME],
    pub qname_lower: [u8; MAX_NAME],
    pub qname_len: usize,
    pub qtype: Rtype,
    pub qclass: u16,
    pub edns: Option<Edns>,
}

impl Query {
    pub fn qname(&self) -> &[u8] {
        &self.qname_lower[..self.qname_len]
    }
}

/// Why a query could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not worth an answer: shorter than a header, or a response.
    Drop,
    /// Readable header, unreadable or invalid rest.
    FormErr,
    /// An opcode other than QUERY.
    NotImp,
}

struct Reader<'p> {
    p: &'p [u8],
    pos: usize,
}

impl<'p> Reader<'p> {
    fn u8(&mut self) -> Result<u8, ParseError> {
        let b = *self.p.get(self.pos).ok_or(ParseError::FormErr)?;
        self.pos += 1;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16, ParseError> {
        Ok(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
    fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from(self.u16()?) << 16 | u32::from(self.u16()?))
    }
    fn bytes(&mut self, n: usize) -> Result<&'p [u8], ParseError> {
        let s = self
            .p
            .get(self.pos..self.pos + n)
            .ok_or(ParseError::FormErr)?;
        self.pos += n;
        Ok(s)
    }

    /// Skips a (possibly compressed) name.
    fn skip_name(&mut self) -> Result<(), ParseError> {
        loop {
            let len = self.u8()?;
            match len & 0xC0 {
                0x00 if len == 0 => return Ok(()),
                0x00 => {
                    self.bytes(len as usize)?;
                }
                0xC0 => {
                    self.u8()?;
                    return Ok(());
                }
                _ => return Err(ParseError::FormErr),
            }
        }
    }

    /// Reads a name, following compression pointers (each must point backwards, so loops
    /// are impossible), into `sent` (original case) and `lower`.
    fn name(
        &mut self,
        sent: &mut [u8; MAX_NAME],
        lower: &mut [u8; MAX_NAME],
    ) -> Result<usize, ParseError> {
        let mut out = 0usize;
        let mut at = self.pos;
        let mut jumped = false;
        let mut limit = at; // pointers must point before the current label
        loop {
            let len = *self.p.get(at).ok_or(ParseError::FormErr)?;
            match len & 0xC0 {
                0x00 => {
                    let len = len as usize;
                    if out + 1 + len > MAX_NAME {
                        return Err(ParseError::FormErr);
                    }
                    let label = self
                        .p
                        .get(at + 1..at + 1 + len)
                        .ok_or(ParseError::FormErr)?;
                    sent[out] = len as u8;
                    lower[out] = len as u8;
                    // One pass for both copies (labels are short: a byte loop beats a
                    // `memcpy` call per label).
                    let dst = sent[out + 1..out + 1 + len]
                        .iter_mut()
                        .zip(&mut lower[out + 1..out + 1 + len]);
                    for ((s, l), &b) in dst.zip(label) {
                        *s = b;
                        *l = b.to_ascii_lowercase();
                    }
                    out += 1 + len;
                    at += 1 + len;
                    if len == 0 {
                        if !jumped {
                            self.pos = at;
                        }
                        return Ok(out);
                    }
                }
                0xC0 => {
                    let b2 = *self.p.get(at + 1).ok_or(ParseError::FormErr)?;
                    let target = (usize::from(len & 0x3F) << 8) | usize::from(b2);
                    if target >= limit {
                        return Err(ParseError::FormErr);
                    }
                    if !jumped {
                        self.pos = at + 2;
                        jumped = true;
                    }
                    limit = target;
                    at = target;
                }
                _ => return Err(ParseError::FormErr),
            }
        }
    }
}

/// Reads a query. On `FormErr`/`NotImp` the ID (and whatever else could be read) is in
/// the returned partial query so that the error answer can be addressed.
pub fn parse_query(p: &[u8], q: &mut Query) -> Result<(), ParseError> {
    if p.len() < HEADER_LEN {
        return Err(ParseError::Drop);
    }
    q.id = u16::from_be_bytes([p[0], p[1]]);
    let flags = u16::from_be_bytes([p[2], p[3]]);
    if flags & 0x8000 != 0 {
        return Err(ParseError::Drop);
    }
    q.opcode = ((flags >> 11) & 0xF) as u8;
    q.rd = flags & 0x0100 != 0;
    q.cd = flags & 0x0010 != 0;
    q.qname_len = 0;
    q.edns = None;
    let qd = u16::from_be_bytes([p[4], p[5]]);
    let an = u16::from_be_bytes([p[6], p[7]]);
    let ns = u16::from_be_bytes([p[8], p[9]]);
    let ar = u16::from_be_bytes([p[10], p[11]]);
    if q.opcode != 0 {
        return Err(ParseError::NotImp);
    }
    let mut r = Reader { p, pos: HEADER_LEN };
    // Every question is read (the first one kept) and every record is walked even when
    // the message is already known to be wrong, so that an OPT in it is seen and the
    // FORMERR carries one (RFC 6891 §7).
    let mut bad = qd != 1;
    for i in 0..qd {
        if i == 0 {
            let len = r.name(&mut q.qname_sent, &mut q.qname_lower)?;
            q.qtype = Rtype(r.u16()?);
            q.qclass = r.u16()?;
            q.qname_len = len;
        } else {
            r.skip_name()?;
            r.bytes(4)?;
        }
    }
    for _ in 0..(u32::from(an) + u32::from(ns)) {
        r.skip_name()?;
        let t = Rtype(r.u16()?);
        r.bytes(6)?;
        let rdlen = r.u16()? as usize;
        r.bytes(rdlen)?;
        // OPT and TSIG only ever belong in the additional section (RFC 6891 §6.1.1,
        // RFC 8945 §5.1).
        bad |= t == Rtype::OPT || t == Rtype::TSIG;
    }
    for i in 0..ar {
        let name_at = r.pos;
        r.skip_name()?;
        let t = Rtype(r.u16()?);
        let class = r.u16()?;
        let ttl = r.u32()?;
        let rdlen = r.u16()? as usize;
        let rdata = r.bytes(rdlen)?;
        if t == Rtype::TSIG {
            // RFC 8945 §5.1: the last record, class ANY, TTL 0, well-formed RDATA.
            bad |= i + 1 != ar || class != 255 || ttl != 0 || !tsig_rdata_ok(rdata);
            continue;
        }
        if t != Rtype::OPT {
            continue;
        }
        let first = q.edns.is_none();
        let mut edns = Edns {
            payload: class,
            version: (ttl >> 16) as u8,
            dnssec_ok: ttl & 0x8000 != 0,
            ecs: None,
            nsid: false,
        };
        if first {
            q.edns = Some(edns);
        }
        if !first || p[name_at] != 0 {
            // RFC 6891 §6.1.1: more than one OPT, or an OPT not owned by the root.
            return Err(ParseError::FormErr);
        }
        let mut o = Reader { p: rdata, pos: 0 };
        while o.pos < rdata.len() {
            let code = o.u16()?;
            let olen = o.u16()? as usize;
            let data = o.bytes(olen)?;
            if code == OPT_ECS {
                edns.ecs = Some(parse_ecs(data)?);
            } else if code == OPT_NSID {
                // RFC 5001 §2.3: empty in queries.
                if !data.is_empty() {
                    return Err(ParseError::FormErr);
                }
                edns.nsid = true;
            }
        }
        q.edns = Some(edns);
    }
    if bad || r.pos != p.len() {
        return Err(ParseError::FormErr);
    }
    Ok(())
}

/// RFC 8945 §4.2: algorithm name (uncompressed), time signed (48 bits), fudge, MAC size
/// and MAC, original ID, error, other length and other data, filling the RDATA exactly.
fn tsig_rdata_ok(d: &[u8]) -> bool {
    let mut r = Reader { p: d, pos: 0 };
    let mut walk = || -> Result<(), ParseError> {
        loop {
            let len = r.u8()?;
            if len == 0 {
                break;
            }
            if len & 0xC0 != 0 {
                return Err(ParseError::FormErr);
            }
            r.bytes(usize::from(len))?;
        }
        r.bytes(8)?;
        let mac = r.u16()?;
        r.bytes(usize::from(mac))?;
        r.bytes(4)?;
        let other = r.u16()?;
        r.bytes(usize::from(other))?;
        Ok(())
    };
    walk().is_ok() && r.pos == d.len()
}

/// RFC 7871 §6: family, source prefix, scope prefix (0 in queries), address truncated to
/// the source prefix with zero bits beyond it.
fn parse_ecs(d: &[u8]) -> Result<ClientSubnet, ParseError> {
    if d.len() < 4 {
        return Err(ParseError::FormErr);
    }
    let family = u16::from_be_bytes([d[0], d[1]]);
    let source = d[2];
    let scope = d[3];
    let addr = &d[4..];
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return Err(ParseError::FormErr),
    };
    if source > max || scope != 0 || addr.len() != usize::from(source).div_ceil(8) {
        return Err(ParseError::FormErr);
    }
    if let Some(&last) = addr.last() {
        let used = source % 8;
        if used != 0 && last & (0xFFu8 >> used) != 0 {
            return Err(ParseError::FormErr);
        }
    }
    let ip = if family == 1 {
        let mut b = [0u8; 4];
        b[..addr.len()].copy_from_slice(addr);
        IpAddr::V4(Ipv4Addr::from(b))
    } else {
        let mut b = [0u8; 16];
        b[..addr.len()].copy_from_slice(addr);
        IpAddr::V6(Ipv6Addr::from(b))
    };
    Ok(ClientSubnet {
        addr: ip,
        source_prefix: source,
    })
}

impl Default for Query {
    fn default() -> Self {
        Self {
            id: 0,
            opcode: 0,
            rd: false,
            cd: false,
            qname_sent: [0; MAX_NAME],
            qname_lower: [0; MAX_NAME],
            qname_len: 0,
            qtype: Rtype(0),
            qclass: 0,
            edns: None,
        }
    }
}

const MAX_COMPRESS: usize = 48;

/// Additional RRsets whose starts are remembered (past that, they are dropped together).
const MAX_CUTS: usize = 16;

/// Writes a response. Names written are remembered (lowercase) so later names can point
/// at them.
pub struct Writer<'a, 'b> {
    pub buf: &'b mut Vec<u8>,
    /// Compression targets: (offset, lowercase suffix); `names[..n_names]` are written.
    /// Left uninitialised beyond that, so starting an answer costs no 1 KiB fill.
    names: [MaybeUninit<(u16, &'a [u8])>; MAX_COMPRESS],
    n_names: usize,
    counts: [u16; 3],
    /// Where each RRset of the additional section starts: buffer length, additional
    /// count and compression targets then (so that RRsets can be dropped from the end,
    /// RFC 2181 §9); `cuts[..n_cuts]` are set, the answer and authority counts were
    /// `cut_counts` at the first.
    cuts: [(u16, u16, u16); MAX_CUTS],
    n_cuts: usize,
    cut_counts: [u16; 2],
    /// Length of header + question: where the record sections start.
    pub question_end: usize,
}

/// The sections records go in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Answer = 0,
    Authority = 1,
    Additional = 2,
}

impl<'a, 'b> Writer<'a, 'b> {
    /// Starts a response to `q`: header (flags filled in by [`Writer::finish`]) and the
    /// question as it was sent (when `echo_question`). Always inlined: the writer is over
    /// a kilobyte (its compression table), and built in place it is not copied per query.
    #[inline(always)]
    pub fn new(buf: &'b mut Vec<u8>, q: &'a Query, echo_question: bool) -> Self {
        buf.clear();
        buf.extend_from_slice(&q.id.to_be_bytes());
        buf.extend_from_slice(&[0; 10]);
        let mut w = Writer {
            buf,
            names: [const { MaybeUninit::uninit() }; MAX_COMPRESS],
            n_names: 0,
            counts: [0; 3],
            cuts: [(0, 0, 0); MAX_CUTS],
            n_cuts: 0,
            cut_counts: [0; 2],
            question_end: HEADER_LEN,
        };
        if echo_question && q.qname_len > 0 {
            w.buf[5] = 1;
            w.buf.extend_from_slice(&q.qname_sent[..q.qname_len]);
            w.remember(HEADER_LEN, q.qname());
            w.buf.extend_from_slice(&q.qtype.to_be_bytes());
            w.buf.extend_from_slice(&q.qclass.to_be_bytes());
        }
        w.question_end = w.buf.len();
        w
    }

    fn remember(&mut self, offset: usize, lower: &'a [u8]) {
        self.remember_upto(offset, lower, lower.len());
    }

    /// Remembers the suffixes of `lower` that start before `upto` (the labels written in
    /// full before a pointer).
    fn remember_upto(&mut self, offset: usize, lower: &'a [u8], upto: usize) {
        // Every suffix of the name, at its label boundary, is a pointer target.
        let mut at = 0usize;
        while at < upto && at < lower.len() && lower[at] != 0 {
            let off = offset + at;
            if off >= 0x3FFF || self.n_names == MAX_COMPRESS {
                return;
            }
            self.names[self.n_names].write((off as u16, &lower[at..]));
            self.n_names += 1;
            at += 1 + lower[at] as usize;
        }
    }

    /// Writes a lowercase wire name, compressed against names already written.
    pub fn name(&mut self, lower: &'a [u8]) {
        let start = self.buf.len();
        let mut at = 0usize;
        while at < lower.len() && lower[at] != 0 {
            let suffix = &lower[at..];
            // The owner is usually the question's own name (the same slice): no compare.
            let hit = self
                .known()
                .find(|&(_, n)| std::ptr::eq(n, suffix) || n == suffix)
                .map(|(off, _)| off);
            if let Some(off) = hit {
                self.buf.extend_from_slice(&lower[..at]);
                self.buf.extend_from_slice(&(0xC000 | off).to_be_bytes());
                self.remember_upto(start, lower, at);
                return;
            }
            at += 1 + lower[at] as usize;
        }
        self.buf.extend_from_slice(lower);
        self.remember(start, lower);
    }

    /// Appends one record of a class other than IN.
    pub fn record_in_class(
        &mut self,
        section: Section,
        owner: &'a [u8],
        rtype: Rtype,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) {
        self.record(section, owner, rtype, ttl, rdata);
        // The class sits after the RDATA, TTL, type and class fields of the record.
        let at = self.buf.len() - rdata.len() - 8;
        self.buf[at..at + 2].copy_from_slice(&class.to_be_bytes());
    }

    /// Appends one record whose RDATA is `prefix` then `name`, compressed (the types RFC
    /// 3597 §4 allows: NS, CNAME, PTR, MX).
    pub fn record_compressed(
        &mut self,
        section: Section,
        owner: &'a [u8],
        rtype: Rtype,
        ttl: u32,
        prefix: &[u8],
        name: &'a [u8],
    ) {
        self.mark(section);
        self.name(owner);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&1u16.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(prefix);
        self.name(name);
        let rdlen = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        self.counts[section as usize] += 1;
    }

    /// Notes where the additional section starts.
    #[inline]
    fn mark(&mut self, section: Section) {
        if section == Section::Additional && self.n_cuts == 0 {
            self.rrset_starts(section);
        }
    }

    /// Notes that an RRset starts here (additional RRsets may be dropped whole).
    pub fn rrset_starts(&mut self, section: Section) {
        if section != Section::Additional || self.n_cuts == MAX_CUTS {
            return;
        }
        if self.n_cuts == 0 {
            self.cut_counts = [self.counts[0], self.counts[1]];
        }
        let cut = (self.buf.len() as u16, self.counts[2], self.n_names as u16);
        if self.n_cuts > 0 && self.cuts[self.n_cuts - 1] == cut {
            return;
        }
        self.cuts[self.n_cuts] = cut;
        self.n_cuts += 1;
    }

    /// Appends one record.
    pub fn record(
        &mut self,
        section: Section,
        owner: &'a [u8],
        rtype: Rtype,
        ttl: u32,
        rdata: &[u8],
    ) {
        self.mark(section);
        self.name(owner);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&1u16.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(rdata);
        self.counts[section as usize] += 1;
    }

    pub fn count(&self, section: Section) -> u16 {
        self.counts[section as usize]
    }

    /// Writes an SOA record with its two names compressed (RFC 1035 §4.1.4 allows it for
    /// SOA): `fixed` is serial, refresh, retry, expire and minimum.
    pub fn soa(
        &mut self,
        section: Section,
        owner: &'a [u8],
        ttl: u32,
        mname: &'a [u8],
        rname: &'a [u8],
        fixed: &[u8; 20],
    ) {
        self.name(owner);
        self.buf.extend_from_slice(&Rtype::SOA.to_be_bytes());
        self.buf.extend_from_slice(&1u16.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.name(mname);
        self.name(rname);
        self.buf.extend_from_slice(fixed);
        let rdlen = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        self.counts[section as usize] += 1;
    }

    /// Drops additional RRsets from the end until the message is at most `budget` bytes,
    /// when the additional section was written last (nothing after it in the answer or
    /// authority sections). False when that cannot make it fit.
    pub fn drop_additional(&mut self, budget: usize) -> bool {
        if self.n_cuts == 0 || self.cut_counts != [self.counts[0], self.counts[1]] {
            return false;
        }
        let Some(&(len, count, n_names)) = self.cuts[..self.n_cuts]
            .iter()
            .rev()
            .find(|c| usize::from(c.0) <= budget)
        else {
            return false;
        };
        self.buf.truncate(usize::from(len));
        self.counts[2] = count;
        self.n_names = usize::from(n_names);
        self.n_cuts = 0;
        true
    }

    /// Drops every record written (keeps header and question), for truncation.
    pub fn truncate_records(&mut self) {
        self.buf.truncate(self.question_end);
        self.counts = [0; 3];
        self.n_cuts = 0;
        let q = self.question_end;
        self.n_names = self
            .known()
            .take_while(|&(off, _)| (off as usize) < q)
            .count();
    }

    /// The compression targets remembered so far.
    fn known(&self) -> impl Iterator<Item = (u16, &'a [u8])> + '_ {
        // SAFETY: `remember_upto` writes `names[i]` before `n_names` grows past `i`, and
        // `n_names` only shrinks otherwise, so `names[..n_names]` are initialised.
        self.names[..self.n_names]
            .iter()
            .map(|n| unsafe { n.assume_init() })
    }

    /// Appends the OPT record of the answer (RFC 6891 §6.1.2): version 0, the upper bits of
    /// `rcode`, the DO bit copied from the query (RFC 3225 §3), ECS echoed with its scope,
    /// the server's identity (NSID, RFC 5001) and an Extended DNS Error (RFC 8914).
    pub fn opt(
        &mut self,
        rcode: Rcode,
        dnssec_ok: bool,
        ecs: Option<(ClientSubnet, u8)>,
        nsid: Option<&[u8]>,
        ede: Option<Ede>,
    ) {
        self.buf.push(0);
        self.buf.extend_from_slice(&Rtype::OPT.to_be_bytes());
        self.buf.extend_from_slice(&MAX_UDP_PAYLOAD.to_be_bytes());
        let flags = if dnssec_ok { 0x80 } else { 0 };
        self.buf
            .extend_from_slice(&[rcode.extended_bits(), 0, flags, 0]);
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        if let Some((cs, scope)) = ecs {
            let n = usize::from(cs.source_prefix).div_ceil(8);
            let (family, octets): (u16, [u8; 16]) = match cs.addr {
                IpAddr::V4(a) => {
                    let mut b = [0u8; 16];
                    b[..4].copy_from_slice(&a.octets());
                    (1, b)
                }
                IpAddr::V6(a) => (2, a.octets()),
            };
            self.buf.extend_from_slice(&OPT_ECS.to_be_bytes());
            self.buf.extend_from_slice(&((4 + n) as u16).to_be_bytes());
            self.buf.extend_from_slice(&family.to_be_bytes());
            self.buf.push(cs.source_prefix);
            self.buf.push(scope);
            self.buf.extend_from_slice(&octets[..n]);
        }
        if let Some(id) = nsid {
            self.buf.extend_from_slice(&OPT_NSID.to_be_bytes());
            self.buf.extend_from_slice(&(id.len() as u16).to_be_bytes());
            self.buf.extend_from_slice(id);
        }
        if let Some((code, text)) = ede {
            self.buf.extend_from_slice(&OPT_EDE.to_be_bytes());
            self.buf
                .extend_from_slice(&((2 + text.len()) as u16).to_be_bytes());
            self.buf.extend_from_slice(&code.to_be_bytes());
            self.buf.extend_from_slice(text.as_bytes());
        }
        let rdlen = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        self.counts[Section::Additional as usize] += 1;
    }

    /// Fills in the header: QR, opcode, AA, TC, RD and CD echoed, RA clear, RCODE, counts.
    pub fn finish(&mut self, q: &Query, aa: bool, tc: bool, rcode: Rcode) {
        let mut hi = 0x80u8 | (q.opcode << 3);
        if aa {
            hi |= 0x04;
        }
        if tc {
            hi |= 0x02;
        }
        if q.rd {
            hi |= 0x01;
        }
        let mut lo = rcode.header_bits();
        if q.cd {
            lo |= 0x10;
        }
        self.buf[2] = hi;
        self.buf[3] = lo;
        self.buf[6..8].copy_from_slice(&self.counts[0].to_be_bytes());
        self.buf[8..10].copy_from_slice(&self.counts[1].to_be_bytes());
        self.buf[10..12].copy_from_slice(&self.counts[2].to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: Rtype, opt: Option<&[u8]>) -> Vec<u8> {
        let mut p = vec![
            0x12,
            0x34,
            0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(opt.is_some()),
        ];
        p.extend_from_slice(name);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        if let Some(o) = opt {
            p.extend_from_slice(o);
        }
        p
    }

    #[test]
    fn reads_question_and_lowercases() {
        let mut q = Query::default();
        parse_query(&query(b"\x03WwW\x07example\x00", Rtype::A, None), &mut q).unwrap();
        assert_eq!(q.id, 0x1234);
        assert!(q.rd);
        assert_eq!(q.qname(), b"\x03www\x07example\x00");
        assert_eq!(&q.qname_sent[..q.qname_len], b"\x03WwW\x07example\x00");
    }

    #[test]
    fn reads_edns_and_ecs() {
        // OPT: root, type 41, payload 4096, ext 0, version 0, DO, rdlen 11, ECS 10.20.1.0/24.
        let opt = [
            0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 10, 20, 1,
        ];
        let mut q = Query::default();
        parse_query(&query(b"\x01a\x00", Rtype::A, Some(&opt)), &mut q).unwrap();
        let e = q.edns.unwrap();
        assert_eq!(e.payload, 4096);
        assert!(e.dnssec_ok);
        assert_eq!(
            e.ecs,
            Some(ClientSubnet {
                addr: "10.20.1.0".parse().unwrap(),
                source_prefix: 24
            })
        );
    }

    #[test]
    fn rejects_malformed() {
        let mut q = Query::default();
        assert_eq!(parse_query(&[0; 11], &mut q), Err(ParseError::Drop));
        // A pointer to itself.
        let mut p = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1];
        assert_eq!(parse_query(&p, &mut q), Err(ParseError::FormErr));
        p[5] = 2;
        assert_eq!(parse_query(&p, &mut q), Err(ParseError::FormErr));
        // Trailing garbage.
        let mut p = query(b"\x01a\x00", Rtype::A, None);
        p.push(0);
        assert_eq!(parse_query(&p, &mut q), Err(ParseError::FormErr));
        // Opcode 5 (UPDATE).
        let mut p = query(b"\x01a\x00", Rtype::A, None);
        p[2] = 5 << 3;
        assert_eq!(parse_query(&p, &mut q), Err(ParseError::NotImp));
        // ECS with bits set beyond the source prefix.
        let opt = [
            0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 20, 0, 10, 20, 1,
        ];
        assert_eq!(
            parse_query(&query(b"\x01a\x00", Rtype::A, Some(&opt)), &mut q),
            Err(ParseError::FormErr)
        );
    }

    #[test]
    fn compresses_against_the_question() {
        let mut q = Query::default();
        parse_query(&query(b"\x03WWW\x07example\x00", Rtype::A, None), &mut q).unwrap();
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, &q, true);
        w.record(
            Section::Answer,
            b"\x03www\x07example\x00",
            Rtype::A,
            60,
            &[192, 0, 2, 1],
        );
        w.record(
            Section::Authority,
            b"\x07example\x00",
            Rtype::NS,
            60,
            b"\x02ns\x00",
        );
        w.finish(&q, true, false, Rcode::NOERROR);
        let after_q = HEADER_LEN + 13 + 4;
        assert_eq!(&buf[after_q..after_q + 2], &[0xC0, 12]);
        // "example." points at offset 16 inside the question.
        let second = after_q + 2 + 10 + 4;
        assert_eq!(&buf[second..second + 2], &[0xC0, 16]);
        assert_eq!(buf[2], 0x85);
        assert_eq!(&buf[6..8], &[0, 1]);
    }

    #[test]
    fn opt_carries_extended_rcode_and_copies_do() {
        let opt = [0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0];
        let mut q = Query::default();
        parse_query(&query(b"\x01a\x00", Rtype::A, Some(&opt)), &mut q).unwrap();
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, &q, true);
        w.opt(Rcode::BADVERS, q.edns.unwrap().dnssec_ok, None, None, None);
        w.finish(&q, false, false, Rcode::BADVERS);
        let at = w.question_end;
        // root, type OPT, payload 1232, ext-rcode 1 (16 >> 4), version 0, DO, rdlen 0.
        assert_eq!(&buf[at..], &[0, 0, 41, 0x04, 0xD0, 1, 0, 0x80, 0, 0, 0]);
        assert_eq!(buf[3] & 0xF, 0, "the low bits of BADVERS are 0");
        assert_eq!(&buf[10..12], &[0, 1], "ARCOUNT counts the OPT");
    }
}

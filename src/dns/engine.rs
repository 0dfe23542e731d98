//! The answer for one query: from wire bytes in to wire bytes out, against one snapshot.
//!
//! Lookup follows RFC 1034 §4.3.2: find the zone, stop at delegations (referral), answer
//! the name's data (chasing in-zone CNAMEs), synthesise from wildcards (RFC 4592), or say
//! NODATA / NXDOMAIN with the zone's SOA (RFC 2308).

use std::net::IpAddr;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::wire::{self, Ede, MAX_UDP_PAYLOAD, ParseError, Query, Section, Writer};
pub use crate::base::Transport;
use crate::base::{Rcode, Rtype};
use crate::policy::{self, Client, Decision, Kind, Pick, Record};
use crate::snapshot::Snapshot;
use crate::zone::name::MAX_NAME;
use crate::zone::{Node, RrSet, Zone};

/// What happened to one query, for the caller's metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// False when the packet is dropped without an answer.
    pub respond: bool,
    pub rcode: Rcode,
    pub qtype: Rtype,
    pub truncated: bool,
}

const MAX_CHASE: usize = 8;

/// Per-worker scratch space, reused across queries: the parsed query, the random source
/// for routing decisions and the decision itself (written in place, not moved).
pub struct Scratch {
    pub query: Query,
    pub rng: SmallRng,
    decision: Decision,
    /// Room for a name synthesised from a DNAME (RFC 6672), reused across queries.
    synth: [u8; MAX_NAME],
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            query: Query::default(),
            rng: SmallRng::from_os_rng(),
            decision: Decision::new(Kind::NoData, policy::Rule::OtherType),
            synth: [0; MAX_NAME],
        }
    }
}

/// What routing decisions need: the random source and the decision to write.
struct Routing<'s> {
    rng: &'s mut SmallRng,
    decision: &'s mut Decision,
}

/// What one lookup produced.
struct Resolved {
    rcode: Rcode,
    aa: bool,
    /// ECS scope prefix of the routing rule that decided (0: not client-dependent).
    scope: u8,
    /// The answer ends in a referral (its glue is needed, not optional).
    referral: bool,
    /// An Extended DNS Error for the OPT (RFC 8914).
    ede: Option<Ede>,
}

impl Resolved {
    /// An authoritative NOERROR, the start of every resolution.
    const AUTHORITATIVE: Resolved = Resolved {
        rcode: Rcode::NOERROR,
        aa: true,
        scope: 0,
        referral: false,
        ede: None,
    };
}

const CLASS_CH: u16 = 3;

/// CH TXT `id.server.` (RFC 4892 §2) and `hostname.bind.`: this instance's name. Any other
/// CH name is not served.
fn chaos<'a>(snap: &Snapshot, q: &'a Query, w: &mut Writer<'a, '_>) -> Resolved {
    let mut res = Resolved::AUTHORITATIVE;
    if q.qname() != b"\x02id\x06server\x00" && q.qname() != b"\x08hostname\x04bind\x00" {
        res.rcode = Rcode::REFUSED;
        res.aa = false;
        res.ede = Some((20, ""));
        return res;
    }
    if q.qtype == Rtype::TXT || q.qtype == Rtype::ANY {
        let id = &snap.model.identity;
        let mut rdata = [0u8; 256];
        rdata[0] = id.len() as u8;
        rdata[1..=id.len()].copy_from_slice(id);
        w.record_in_class(
            Section::Answer,
            q.qname(),
            Rtype::TXT,
            CLASS_CH,
            0,
            &rdata[..=id.len()],
        );
    }
    res
}

/// Answers `packet` (from `source`) into `out`.
pub fn respond(
    snap: &Snapshot,
    packet: &[u8],
    scratch: &mut Scratch,
    source: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Outcome {
    let Scratch {
        query: q,
        rng,
        decision,
        synth,
    } = scratch;
    let mut routing = Routing { rng, decision };
    let parsed = wire::parse_query(packet, q);
    let q: &Query = q;
    let mut outcome = Outcome {
        respond: true,
        rcode: Rcode::NOERROR,
        qtype: q.qtype,
        truncated: false,
    };
    match parsed {
        Ok(()) => {}
        Err(ParseError::Drop) => {
            outcome.respond = false;
            return outcome;
        }
        Err(e) => {
            let rc = if e == ParseError::NotImp {
                Rcode::NOTIMP
            } else {
                Rcode::FORMERR
            };
            let mut w = Writer::new(out, q, q.qname_len > 0);
            // RFC 6891 §7: a FORMERR to a query with an OPT carries one, or the client
            // concludes EDNS is unsupported. NOTIMP never does (the opcode is unknown, so
            // nothing else in the message is read).
            if let Some(e) = q.edns
                && rc == Rcode::FORMERR
            {
                w.opt(rc, e.dnssec_ok, None, None, None);
            }
            w.finish(q, false, false, rc);
            outcome.rcode = rc;
            return outcome;
        }
    }

    let mut w = Writer::new(out, q, true);
    let ecs = q.edns.and_then(|e| e.ecs);
    let nsid = match q.edns {
        Some(e) if e.nsid => Some(&snap.model.identity[..]),
        _ => None,
    };
    if let Some(e) = q.edns
        && e.version > 0
    {
        w.opt(Rcode::BADVERS, e.dnssec_ok, None, nsid, None);
        w.finish(q, false, false, Rcode::BADVERS);
        outcome.rcode = Rcode::BADVERS;
        return outcome;
    }

    let client = Client {
        addr: ecs.map_or(source, |e| e.addr),
        ecs_source_prefix: ecs.map(|e| e.source_prefix),
    };
    let refuse = |rcode| Resolved {
        rcode,
        aa: false,
        scope: 0,
        referral: false,
        // RFC 8914 §4.21: Not Authoritative.
        ede: (rcode == Rcode::REFUSED).then_some((20, "")),
    };
    let res = match q.qtype {
        _ if q.qclass == CLASS_CH => chaos(snap, q, &mut w),
        _ if q.qclass != 1 && q.qclass != 255 => refuse(Rcode::REFUSED),
        Rtype::OPT => refuse(Rcode::FORMERR),
        Rtype::AXFR | Rtype::IXFR => refuse(Rcode::REFUSED),
        Rtype::MAILA | Rtype::MAILB => refuse(Rcode::NOTIMP),
        _ => match snap.find_zone(q.qname()) {
            None => refuse(Rcode::REFUSED),
            Some(zone) => resolve(snap, zone, q, &client, &mut routing, &mut w, Some(synth)),
        },
    };
    let (rc, aa) = (res.rcode, res.aa);

    // Size: UDP answers fit the client's buffer (RFC 6891 §6.2.5) or are truncated.
    let limit = match (transport, q.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => usize::from(e.payload.clamp(512, MAX_UDP_PAYLOAD)),
    };
    let opt_len = match q.edns {
        None => 0,
        Some(_) => wire::opt_len(ecs, nsid, res.ede),
    };
    let mut tc = w.buf.len() + opt_len > limit;
    // RFC 2181 §9: additional records are dropped before anything is truncated; a
    // referral's glue is needed (RFC 9471), so it is kept or the answer truncated.
    if tc && !res.referral && w.drop_additional(limit - opt_len) {
        tc = w.buf.len() + opt_len > limit;
    }
    if tc {
        w.truncate_records();
        outcome.truncated = true;
    }
    if let Some(e) = q.edns {
        w.opt(
            rc,
            e.dnssec_ok,
            ecs.map(|cs| (cs, res.scope.min(cs.source_prefix))),
            nsid,
            res.ede,
        );
    }
    // RFC 1034 §3.7.1: an answer to class ANY is never authoritative.
    w.finish(q, aa && q.qclass != 255, tc, rc);
    outcome.rcode = rc;
    outcome
}

/// The answer the rate limit sends instead of a full one (a "slip"): the question and
/// TC=1, nothing else but an OPT when the query had one, so a real client retries over
/// TCP and a forged source gets nothing bigger than the query. `respond = false` for a
/// packet not worth an answer.
pub fn slip(packet: &[u8], scratch: &mut Scratch, out: &mut Vec<u8>) -> Outcome {
    let q = &mut scratch.query;
    let parsed = wire::parse_query(packet, q);
    let q: &Query = q;
    let mut outcome = Outcome {
        respond: parsed.is_ok(),
        rcode: Rcode::NOERROR,
        qtype: q.qtype,
        truncated: true,
    };
    if outcome.respond {
        let mut w = Writer::new(out, q, true);
        if let Some(e) = q.edns {
            w.opt(Rcode::NOERROR, e.dnssec_ok, None, None, None);
        }
        w.finish(q, false, true, Rcode::NOERROR);
    } else {
        outcome.qtype = Rtype(0);
    }
    outcome
}

/// Answers a query for a name inside `zone`.
fn resolve<'a>(
    snap: &'a Snapshot,
    zone: &'a Zone,
    q: &'a Query,
    client: &Client,
    routing: &mut Routing<'_>,
    w: &mut Writer<'a, '_>,
    mut synth: Option<&'a mut [u8; MAX_NAME]>,
) -> Resolved {
    let qtype = q.qtype;
    let mut zone = zone;
    let mut name: &'a [u8] = q.qname();
    let mut res = Resolved::AUTHORITATIVE;
    // The names answered so far: a CNAME back to one of them is a loop, and the answer
    // stops there with each CNAME once.
    let mut seen: [&[u8]; MAX_CHASE + 1] = [&[]; MAX_CHASE + 1];
    for step in 0..=MAX_CHASE {
        seen[step] = name;
        if let Some((cut, node)) = find_cut(zone, name, qtype) {
            // RFC 1034 §4.3.2 step 3b: the referral, also at the end of a CNAME chain
            // that enters delegated space (AA then still stands for the first owner).
            referral(zone, cut, node, w);
            res.referral = true;
            if step == 0 {
                res.aa = false;
            }
            return res;
        }
        // RFC 6672 §3.2: a DNAME above the name redirects it: the DNAME, then the CNAME
        // synthesised from it, then the chase (one synthesis per answer; past it the
        // resolver follows).
        if zone.has_dnames
            && let Some((owner, set)) = find_dname(zone, name)
        {
            write_set(w, Section::Answer, owner, set);
            let Some(buf) = synth.take() else {
                return res;
            };
            let target = set.rdata[0].target.as_deref().unwrap_or_default();
            let prefix = &name[..name.len() - owner.len()];
            let n = prefix.len() + target.len();
            if n > MAX_NAME {
                // RFC 6672 §2.2: the synthesised name would be too long.
                res.rcode = Rcode::YXDOMAIN;
                return res;
            }
            buf[..prefix.len()].copy_from_slice(prefix);
            buf[prefix.len()..n].copy_from_slice(target);
            let buf: &'a [u8; MAX_NAME] = buf;
            let synthesised = &buf[..n];
            w.record(Section::Answer, name, Rtype::CNAME, set.ttl, synthesised);
            if qtype == Rtype::CNAME || step == MAX_CHASE || seen[..=step].contains(&synthesised) {
                return res;
            }
            match snap.find_zone(synthesised) {
                Some(z) => {
                    zone = z;
                    name = synthesised;
                    continue;
                }
                None => return res,
            }
        }
        let node = match zone.nodes.get(name) {
            Some(n) => n,
            None => match wildcard(zone, name) {
                Some(n) => n,
                None => {
                    negative(zone, w);
                    res.rcode = Rcode::NXDOMAIN;
                    return res;
                }
            },
        };
        let next = match node.profile {
            Some(pid) => answer_profile(snap, zone, pid, name, qtype, client, routing, w, &mut res),
            None => answer_node(zone, node, name, qtype, w),
        };
        match next {
            Step::Done => return res,
            Step::Chase(target) => {
                if step == MAX_CHASE || seen[..=step].contains(&target) {
                    break;
                }
                match snap.find_zone(target) {
                    Some(z) => {
                        zone = z;
                        name = target;
                    }
                    None => return res,
                }
            }
        }
    }
    res
}

enum Step<'a> {
    Done,
    Chase(&'a [u8]),
}

/// Writes the routing decision for a profile.
#[allow(clippy::too_many_arguments)]
fn answer_profile<'a>(
    snap: &'a Snapshot,
    zone: &'a Zone,
    pid: u32,
    owner: &'a [u8],
    qtype: Rtype,
    client: &Client,
    routing: &mut Routing<'_>,
    w: &mut Writer<'a, '_>,
    res: &mut Resolved,
) -> Step<'a> {
    let d = &mut *routing.decision;
    policy::decide_into(snap, pid, qtype, client, routing.rng, d);
    // ANY is answered as A; where there is no A, as AAAA (RFC 8482 §4.2: a subset of
    // what exists).
    let mut rtype = if qtype == Rtype::ANY { Rtype::A } else { qtype };
    if qtype == Rtype::ANY && d.kind == Kind::NoData {
        policy::decide_into(snap, pid, Rtype::AAAA, client, routing.rng, d);
        rtype = Rtype::AAAA;
    }
    res.scope = res.scope.max(d.scope);
    match d.kind {
        Kind::NoData => {
            negative(zone, w);
            Step::Done
        }
        Kind::ServFail => {
            res.rcode = Rcode::SERVFAIL;
            res.aa = false;
            // RFC 8914 §4.1: Other Error, with the reason (all_down = "servfail").
            res.ede = Some((0, "no endpoint is healthy"));
            Step::Done
        }
        Kind::Answer => {
            // The TTLs the writer decided (health-aware: short while a profile is
            // unstable); a nested answer carries the shorter of both profiles'.
            let ttl = snap.ttl(pid);
            let configured = snap.model.profiles[pid as usize].ttl;
            let mut short = false;
            // signpost_answers_total: each endpoint once per answer (multivalue picks
            // one address at a time).
            let picks = d.picks();
            for (i, pick) in picks.iter().enumerate() {
                let same = |q: &Pick| (q.profile, q.endpoint) == (pick.profile, pick.endpoint);
                if !picks[..i].iter().any(same) {
                    let prof = &snap.model.profiles[pick.profile as usize];
                    let endpoint = &prof.endpoints[pick.endpoint as usize];
                    endpoint.answer_count.increment();
                }
            }
            let mut next = Step::Done;
            d.for_each_record(snap, rtype, |pi, r| {
                let (ttl, configured) = if pi == pid {
                    (ttl, configured)
                } else {
                    let child = &snap.model.profiles[pi as usize];
                    (ttl.min(snap.ttl(pi)), configured.min(child.ttl))
                };
                short |= ttl < configured;
                match r {
                    Record::A(a) => w.record(Section::Answer, owner, Rtype::A, ttl, &a.octets()),
                    Record::Aaaa(a) => {
                        w.record(Section::Answer, owner, Rtype::AAAA, ttl, &a.octets())
                    }
                    Record::Cname(wire) => {
                        w.record_compressed(Section::Answer, owner, Rtype::CNAME, ttl, &[], wire);
                        // Asked for the CNAME itself, or ANY: the CNAME alone (RFC 1034
                        // §4.3.2 step 3a), as for a static CNAME.
                        if qtype != Rtype::CNAME && qtype != Rtype::ANY {
                            next = Step::Chase(wire);
                        }
                    }
                }
            });
            if short {
                snap.model.profiles[pid as usize]
                    .short_ttl_answers
                    .increment();
            }
            next
        }
    }
}

/// Writes what `node` (found for `owner`, exactly or by wildcard) holds for `qtype`.
fn answer_node<'a>(
    zone: &'a Zone,
    node: &'a Node,
    owner: &'a [u8],
    qtype: Rtype,
    w: &mut Writer<'a, '_>,
) -> Step<'a> {
    // RFC 1034 §4.3.2 step 3a: a CNAME is followed unless it is what was asked for, and
    // ANY asks for it too.
    if qtype != Rtype::CNAME
        && qtype != Rtype::ANY
        && let Some(cname) = node.rrset(Rtype::CNAME)
    {
        write_set(w, Section::Answer, owner, cname);
        return match &cname.rdata[0].target {
            Some(t) => Step::Chase(t),
            None => Step::Done,
        };
    }
    let set = if qtype == Rtype::ANY {
        // RFC 8482 §4.1: answer with one RRset of the name's choosing.
        node.rrsets.first()
    } else {
        node.rrset(qtype)
    };
    match set {
        Some(set) => {
            write_set(w, Section::Answer, owner, set);
            additional(zone, set, w);
        }
        None => negative(zone, w),
    }
    Step::Done
}

fn write_set<'a>(w: &mut Writer<'a, '_>, section: Section, owner: &'a [u8], set: &'a RrSet) {
    w.rrset_starts(section);
    for rd in &set.rdata {
        match (rd.name_at, &rd.target) {
            (Some(at), Some(name)) => {
                let prefix = &rd.wire[..usize::from(at)];
                w.record_compressed(section, owner, set.rtype, set.ttl, prefix, name);
            }
            _ => w.record(section, owner, set.rtype, set.ttl, &rd.wire),
        }
    }
}

/// NODATA / NXDOMAIN: the SOA in authority with the negative TTL (RFC 2308 §3).
fn negative<'a>(zone: &'a Zone, w: &mut Writer<'a, '_>) {
    w.soa(
        Section::Authority,
        &zone.apex,
        zone.negative_ttl,
        &zone.soa_mname,
        &zone.soa_rname,
        &zone.soa_fixed,
    );
}

/// Addresses of in-zone targets of NS, MX and SRV records (RFC 1035 §3.3 additional
/// section processing).
fn additional<'a>(zone: &'a Zone, set: &'a RrSet, w: &mut Writer<'a, '_>) {
    if !matches!(set.rtype, Rtype::NS | Rtype::MX | Rtype::SRV) {
        return;
    }
    glue(zone, set, w);
}

fn glue<'a>(zone: &'a Zone, set: &'a RrSet, w: &mut Writer<'a, '_>) {
    for rd in &set.rdata {
        let Some(target) = rd.target.as_deref() else {
            continue;
        };
        if let Some(node) = zone.nodes.get(target) {
            for t in [Rtype::A, Rtype::AAAA] {
                if let Some(addrs) = node.rrset(t) {
                    write_set(w, Section::Additional, target, addrs);
                }
            }
        }
    }
}

/// A referral: the child's NS in authority, glue in additional, AA clear (RFC 1034 §4.3.2).
fn referral<'a>(zone: &'a Zone, cut: &'a [u8], node: &'a Node, w: &mut Writer<'a, '_>) {
    let Some(ns) = node.rrset(Rtype::NS) else {
        return;
    };
    write_set(w, Section::Authority, cut, ns);
    glue(zone, ns, w);
}

/// The highest delegation point between the apex (exclusive) and `name` (inclusive). A DS
/// query at the cut itself is the parent's to answer.
fn find_cut<'a>(zone: &'a Zone, name: &'a [u8], qtype: Rtype) -> Option<(&'a [u8], &'a Node)> {
    if !zone.has_cuts {
        return None;
    }
    let mut starts = [0u8; 128];
    let n = crate::zone::name::label_starts(name, &mut starts);
    let below_apex = n - crate::zone::name::label_count(&zone.apex);
    for i in (0..below_apex).rev() {
        let suffix = &name[usize::from(starts[i])..];
        if let Some(node) = zone.nodes.get(suffix)
            && node.cut
            && !(i == 0 && qtype == Rtype::DS)
        {
            return Some((suffix, node));
        }
    }
    None
}

/// The highest DNAME strictly above `name`, from the apex down (RFC 6672 §3.2).
fn find_dname<'a>(zone: &'a Zone, name: &'a [u8]) -> Option<(&'a [u8], &'a RrSet)> {
    let mut starts = [0u8; 128];
    let n = crate::zone::name::label_starts(name, &mut starts);
    let below_apex = n.checked_sub(crate::zone::name::label_count(&zone.apex))?;
    for i in (1..=below_apex).rev() {
        let suffix = &name[usize::from(*starts.get(i)?)..];
        if let Some(set) = zone.nodes.get(suffix).and_then(|n| n.rrset(Rtype::DNAME)) {
            return Some((suffix, set));
        }
    }
    None
}

/// RFC 4592 §3.3.1: the wildcard at the closest encloser, when the name does not exist.
fn wildcard<'a>(zone: &'a Zone, name: &[u8]) -> Option<&'a Node> {
    if !zone.has_wildcards {
        return None;
    }
    let mut ce = crate::zone::name::parent(name)?;
    while !zone.nodes.contains_key(ce) {
        ce = crate::zone::name::parent(ce)?;
    }
    let mut buf = [0u8; MAX_NAME + 2];
    buf[0] = 1;
    buf[1] = b'*';
    if ce.len() + 2 > MAX_NAME {
        return None;
    }
    buf[2..2 + ce.len()].copy_from_slice(ce);
    zone.nodes.get(&buf[..2 + ce.len()])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hickory_proto::op::{Message, Query as HQuery};
    use hickory_proto::rr::{Name, RecordType};

    use super::*;
    use crate::config::{Config, Problems};

    /// A snapshot serving `example.com.` with `records` after a fixed SOA and NS.
    fn snapshot(records: &str) -> Snapshot {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("example.com.zone"),
            format!("$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n{records}"),
        )
        .unwrap();
        let mut problems = Problems::default();
        let zones = crate::zone::load_dir(dir.path(), &mut problems);
        assert!(problems.is_empty(), "{problems}");
        let model = crate::model::compile(&Config::default(), zones, 1).unwrap();
        crate::status::initial_snapshot(Arc::new(model))
    }

    fn ask(snap: &Snapshot, name: &str, rtype: RecordType) -> Message {
        let mut q = Message::query();
        q.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
        let mut out = Vec::new();
        let outcome = respond(
            snap,
            &q.to_vec().unwrap(),
            &mut Scratch::default(),
            "127.0.0.1".parse().unwrap(),
            Transport::Udp,
            &mut out,
        );
        assert!(outcome.respond);
        Message::from_vec(&out).unwrap()
    }

    #[test]
    fn cname_loop_answers_each_cname_once() {
        let snap = snapshot("a CNAME b\nb CNAME c\nc CNAME a\n");
        let m = ask(&snap, "b.example.com.", RecordType::A);
        let owners: Vec<String> = m.answers.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(
            owners,
            ["b.example.com.", "c.example.com.", "a.example.com."],
            "{m}"
        );
        assert_eq!(Rcode(u16::from(m.metadata.response_code)), Rcode::NOERROR);
    }

    #[test]
    fn long_cname_chain_stops_after_max_chase() {
        let mut zone = String::new();
        for i in 0..20 {
            zone.push_str(&format!("c{i} CNAME c{}\n", i + 1));
        }
        let m = ask(&snapshot(&zone), "c0.example.com.", RecordType::A);
        assert_eq!(m.answers.len(), MAX_CHASE + 1, "{m}");
    }

    /// RFC 4592 §4.2: a wildcard that is an empty non-terminal (`*.w` above `a.*.w`) is a
    /// source of synthesis with no data: NODATA, not NXDOMAIN.
    #[test]
    fn empty_non_terminal_wildcard_answers_nodata() {
        let snap = snapshot("a.*.w TXT hi\n");
        let m = ask(&snap, "x.w.example.com.", RecordType::TXT);
        assert_eq!(
            Rcode(u16::from(m.metadata.response_code)),
            Rcode::NOERROR,
            "{m}"
        );
        assert!(m.answers.is_empty(), "{m}");
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA, "{m}");
        let m = ask(&snap, "a.*.w.example.com.", RecordType::TXT);
        assert_eq!(m.answers.len(), 1, "{m}");
    }

    #[test]
    fn any_at_a_cname_is_the_cname_alone() {
        let snap = snapshot("alias CNAME ns1\n");
        let m = ask(&snap, "alias.example.com.", RecordType::ANY);
        assert_eq!(m.answers.len(), 1, "{m}");
        assert_eq!(m.answers[0].record_type(), RecordType::CNAME, "{m}");
        // Other types are still chased.
        let m = ask(&snap, "alias.example.com.", RecordType::A);
        assert_eq!(m.answers.len(), 2, "{m}");
    }
}

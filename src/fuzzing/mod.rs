//! The checks of the fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`), shared with the test
//! that replays their corpus and every crash they found (`tests/fuzz_replay.rs`): each takes
//! one input and says what went wrong, so that both run exactly the same checks.
//!
//! - [`request`]: a DNS message in, the answer out, through [`respond`] (what the UDP and
//!   TCP servers call) against [`model`], over UDP and TCP; every answer is parsed back
//!   with hickory-proto and checked by [`check_answer`].
//! - [`zone_file`]: the text of a zone file through the zone loader ([`zone::load_file`],
//!   what `signpost check` and `serve` run for each file); a zone that loads is checked
//!   for what the loader promises, then served: queries for its names are answered and
//!   checked.
//! - [`config`]: the text of a config file through [`Config::read_text`] (what
//!   [`Config::read`] runs on the file's contents) and the model's compilation, as
//!   `signpost check` does; a config that loads is served and its profiles asked for.
//!
//! Nothing here reads files, opens sockets or depends on the clock: an input gives the
//! same result every time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::DecodeError;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, Restrict};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::base::{Rtype, Transport};
use crate::config::{Config, Problems};
use crate::dns::engine::{Scratch, respond};
use crate::dns::wire::MAX_UDP_PAYLOAD;
use crate::snapshot::Snapshot;
use crate::zone::{self, Zone, name};

/// What a failed check found.
pub type Failure = String;

const DEFAULT_CONFIG: &str = include_str!("../../config/signpost.toml");
const DEFAULT_ZONE: &str = include_str!("../../zones/gslb.example.zone");
const FUZZ_CONFIG: &str = include_str!("fuzz.toml");
const FUZZ_ZONE: &str = include_str!("fuzz.example.zone");

/// What `$INCLUDE inc.db` reads in a fuzzed zone file (any other file does not exist).
const INCLUDED: &str =
    "$TTL 60\nhost A 192.0.2.7\n  AAAA 2001:db8::7\nsub NS ns.sub\nns.sub A 192.0.2.8\n";

/// The queries' source addresses: UDP from IPv4, TCP from IPv6 (ECS overrides both).
const SOURCES: [(Transport, IpAddr); 2] = [
    (
        Transport::Udp,
        IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7)),
    ),
    (
        Transport::Tcp,
        IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
    ),
];

/// The identity (NSID, `id.server`) of the fuzzed models, instead of the host's name.
const IDENTITY: &[u8] = b"fuzz-node";

/// Writes `files` (paths relative to a scratch directory of this thread) and returns the
/// directory's canonical path: zone files are read from disk by the same code as when
/// serving, confinement to the zones directory included. The directory then holds
/// exactly `files`: those of the previous call that are not among them are removed, the
/// others overwritten in place (no directory is made or removed per input, which on a
/// disk file system costs more than the check itself). `scripts/fuzz.sh` puts the
/// scratch directory on a tmpfs (`TMPDIR`) when there is one.
fn on_disk(files: &[(&Path, &[u8])]) -> PathBuf {
    thread_local! {
        static SCRATCH: (PathBuf, RefCell<Vec<PathBuf>>) = {
            let dir = std::env::temp_dir().join(format!(
                "signpost-fuzz-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::create_dir_all(&dir);
            (std::fs::canonicalize(&dir).expect("scratch directory"), RefCell::default())
        };
    }
    SCRATCH.with(|(dir, written)| {
        let mut written = written.borrow_mut();
        for old in written.iter() {
            if !files.iter().any(|(p, _)| *p == old.as_path()) {
                std::fs::remove_file(dir.join(old)).expect("remove a fuzz input");
            }
        }
        written.clear();
        for (path, bytes) in files {
            let p = dir.join(path);
            let parent = p.parent().expect("a file in a directory");
            if !parent.is_dir() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&p, bytes).expect("write a fuzz input");
            written.push(path.to_path_buf());
        }
        dir.clone()
    })
}

/// The records of zone `fuzz.example.` that are many of a kind: `big` (12 TXT, more than
/// 512 bytes), `mx` (40 MX whose AAAA glue does not fit 1232 bytes), `chain0` to
/// `chain10` (a CNAME chain longer than signpost follows) and `huge` (280 TXT of 250
/// bytes: more than one TCP message holds).
fn generated_records() -> String {
    let mut z = String::new();
    for i in 0..12 {
        let _ = writeln!(z, "big IN TXT \"big-{i:02}-{}\"", "x".repeat(33));
    }
    for i in 0..40 {
        let _ = writeln!(z, "mx IN MX 10 m{i}\nm{i} IN AAAA 2001:db8::{i:x}");
    }
    for i in 0..10 {
        let _ = writeln!(z, "chain{i} IN CNAME chain{}", i + 1);
    }
    z.push_str("chain10 IN A 192.0.2.10\n");
    for i in 0..280 {
        let _ = writeln!(z, "huge IN TXT \"{i:03}-{}\"", "h".repeat(246));
    }
    z
}

/// Loads zone files (written to a scratch directory) through [`zone::load_file`]; panics on any problem.
fn load_zones(list: &[(&str, &str)]) -> Vec<Zone> {
    let mut zones = Vec::new();
    for (origin, text) in list {
        let path = format!("zones/{origin}zone");
        let path = Path::new(&path);
        let mut problems = Problems::default();
        let root = on_disk(&[(path, text.as_bytes())]).join("zones");
        let origin = Name::from_ascii(origin).expect("zone name");
        let z = zone::load_file(
            &root.join(path.file_name().unwrap()),
            origin,
            &root,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems}");
        zones.push(z.expect("zone loads"));
    }
    zones
}

/// Compiles `config` with `zones` into a snapshot, as [`crate::app::load`] does.
fn compile(config: &Config, zones: Vec<Zone>) -> Result<Snapshot, Problems> {
    let mut model = crate::model::compile(config, zones, 1)?;
    model.identity = IDENTITY.into();
    Ok(crate::status::initial_snapshot(Arc::new(model)))
}

fn read_config(text: &str) -> (Config, Problems) {
    Config::read_text(
        Path::new("config/signpost.toml"),
        text,
        Some(HashMap::new()),
    )
}

/// The model the request path is fuzzed against: the default config (`config/`) and
/// zone (`zones/`), plus zone `fuzz.example.` (`src/fuzzing/fuzz.example.zone` and
/// [`generated_records`]) and a profile of every routing method and answer kind in it
/// (`src/fuzzing/fuzz.toml`). Built once.
pub fn model() -> &'static Snapshot {
    static MODEL: OnceLock<Snapshot> = OnceLock::new();
    MODEL.get_or_init(|| {
        let fuzz_zone = format!("{FUZZ_ZONE}{}", generated_records());
        let zones = load_zones(&[
            ("gslb.example.", DEFAULT_ZONE),
            ("fuzz.example.", &fuzz_zone),
        ]);
        let (config, problems) = read_config(&format!("{DEFAULT_CONFIG}\n{FUZZ_CONFIG}"));
        assert!(problems.is_empty(), "{problems}");
        compile(&config, zones).unwrap_or_else(|p| panic!("{p}"))
    })
}

/// The zones fuzzed configs are compiled with: the default one and `fuzz.example.`
/// without its generated records (cloned per input, so kept small).
fn config_zones() -> &'static [Zone] {
    static ZONES: OnceLock<Vec<Zone>> = OnceLock::new();
    ZONES.get_or_init(|| {
        load_zones(&[
            ("gslb.example.", DEFAULT_ZONE),
            ("fuzz.example.", FUZZ_ZONE),
        ])
    })
}

thread_local! {
    static SCRATCH: RefCell<(Box<Scratch>, Vec<u8>)> = RefCell::new((Box::default(), Vec::new()));
}

/// The request target: `query` (a DNS message as received) answered from [`model`].
pub fn request(query: &[u8]) -> Result<(), Failure> {
    answer_and_check(model(), query)
}

/// Answers `query` from `snap` over UDP and over TCP (the random source reseeded, so an
/// input always gives the same answers) and checks each answer with [`check_answer`].
pub fn answer_and_check(snap: &Snapshot, query: &[u8]) -> Result<(), Failure> {
    SCRATCH.with_borrow_mut(|(scratch, out)| {
        for (transport, source) in SOURCES {
            scratch.rng = SmallRng::seed_from_u64(0x5167_9057);
            let outcome = respond(snap, query, scratch, source, transport, out);
            let answer = outcome.respond.then_some(&out[..]);
            let checked = check_answer(query, transport, answer).and_then(|m| {
                let Some(m) = m else { return Ok(()) };
                if outcome.truncated != m.metadata.truncation {
                    return Err(format!("outcome.truncated is {}", outcome.truncated));
                }
                let rcode = u16::from(m.metadata.response_code);
                if outcome.rcode.0 != rcode {
                    return Err(format!(
                        "outcome.rcode {} but the answer says {rcode}",
                        outcome.rcode.0
                    ));
                }
                Ok(())
            });
            checked.map_err(|e| {
                format!(
                    "{}: {e}\nquery:  {}\nanswer: {}",
                    transport.as_str(),
                    hex(query),
                    answer.map_or_else(|| "none".to_owned(), hex)
                )
            })?;
        }
        Ok(())
    })
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// Checks `answer` (`None`: none was sent) to `query` received over `transport`; returns
/// the answer as hickory-proto reads it.
///
/// - A message shorter than a header, or a response, is not answered; anything else is.
/// - The answer parses in full (nothing left over), is a response, and carries the query's
///   ID, opcode, RD and CD.
/// - Its size fits the transport: 65535 bytes over TCP; over UDP 512 bytes without EDNS
///   and the query's EDNS buffer size (at least 512, at most the 1232 signpost uses) with.
/// - For a standard query (opcode 0) that hickory-proto reads, it has the query's first
///   question (name byte for byte, type, class) or none when the query had none, and an
///   OPT exactly when the query had one (RFC 6891 §7).
/// - TC clears every record (signpost truncates to the question, RFC 2181 §9), and an
///   answer to class ANY is never authoritative (RFC 1034 §3.7.1).
pub fn check_answer(
    query: &[u8],
    transport: Transport,
    answer: Option<&[u8]>,
) -> Result<Option<Message>, Failure> {
    let not_a_query = query.len() < 12 || query[2] & 0x80 != 0;
    let Some(a) = answer else {
        return match not_a_query {
            true => Ok(None),
            false => Err("a query got no answer".into()),
        };
    };
    if not_a_query {
        return Err("answered a message that is not a query".into());
    }
    let m = read_answer(a)?;
    if a[..2] != query[..2] {
        return Err("the answer's ID is not the query's".into());
    }
    if m.metadata.message_type != MessageType::Response {
        return Err("QR is not set".into());
    }
    let opcode = (query[2] >> 3) & 0xF;
    if (a[2] >> 3) & 0xF != opcode {
        return Err("the opcode is not the query's".into());
    }
    if a[2] & 0x01 != query[2] & 0x01 || a[3] & 0x10 != query[3] & 0x10 {
        return Err("RD or CD is not copied from the query".into());
    }
    // The query as a standard reader sees it (None: it does not parse).
    let q = Message::from_vec(query).ok();
    let limit = match (transport, q.as_ref().and_then(|q| q.edns.as_ref())) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => usize::from(e.max_payload().clamp(512, MAX_UDP_PAYLOAD)),
    };
    if a.len() > limit {
        return Err(format!("{} bytes, over the limit of {limit}", a.len()));
    }
    if let Some(q) = &q
        && opcode == 0
    {
        match (q.queries.first(), m.queries.as_slice()) {
            (None, []) => {}
            (Some(asked), [echoed])
                if asked.name().iter().eq(echoed.name().iter())
                    && asked.query_type() == echoed.query_type()
                    && asked.query_class() == echoed.query_class() => {}
            (asked, echoed) => {
                return Err(format!("question {echoed:?} for a query asking {asked:?}"));
            }
        }
        if q.edns.is_some() != m.edns.is_some() {
            return Err(format!(
                "the query {} an OPT, the answer {}",
                if q.edns.is_some() { "has" } else { "has no" },
                if m.edns.is_some() { "has" } else { "has none" },
            ));
        }
    }
    if m.metadata.truncation
        && (!m.answers.is_empty() || !m.authorities.is_empty() || !m.additionals.is_empty())
    {
        return Err("TC with records".into());
    }
    if m.metadata.authoritative && m.queries.iter().any(|q| u16::from(q.query_class()) == 255) {
        return Err("AA on an answer to class ANY".into());
    }
    Ok(Some(m))
}

/// Reads a whole answer: nothing may be left after its last record.
fn read_answer(a: &[u8]) -> Result<Message, Failure> {
    let read = |bytes: &[u8]| {
        let mut dec = BinDecoder::new(bytes);
        Message::read(&mut dec).map(|m| (m, dec.len()))
    };
    let (m, left) = match read(a) {
        // hickory-proto takes an empty RDATA for a placeholder of RFC 2136 (UPDATE) and
        // refuses it in other messages, but RFC 3597 §5 allows it for any type (`\# 0`):
        // such an answer is read as if it were an UPDATE (nothing else in reading changes).
        Err(DecodeError::InvalidEmptyRecord) => {
            let mut copy = a.to_vec();
            copy[2] = (copy[2] & 0x87) | (5 << 3);
            read(&copy)
        }
        r => r,
    }
    .map_err(|e| format!("the answer does not parse: {e}"))?;
    if left > 0 {
        return Err(format!("{left} bytes after the answer's last record"));
    }
    Ok(m)
}

/// A query for `name` (wire form) of type `qtype`, class IN, RD set, with an OPT (buffer
/// `payload`, DO set) when `payload` is given.
pub fn query(id: u16, name: &[u8], qtype: Rtype, payload: Option<u16>) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + name.len() + 4 + 11);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(payload.is_some())]);
    p.extend_from_slice(name);
    p.extend_from_slice(&qtype.0.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = payload {
        p.extend_from_slice(&[0, 0, 41]);
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]);
    }
    p
}

/// Asks `snap` for `name` with each of `types`, without EDNS and with a 1232-byte buffer,
/// over UDP and TCP, checking every answer.
fn ask_all(snap: &Snapshot, name: &[u8], types: &[Rtype]) -> Result<(), Failure> {
    for (i, &t) in types.iter().enumerate() {
        let payload = (i % 2 == 1).then_some(MAX_UDP_PAYLOAD);
        answer_and_check(snap, &query(i as u16, name, t, payload))?;
    }
    Ok(())
}

/// Every problem names a file and says something.
fn check_problems(problems: &Problems) -> Result<(), Failure> {
    for p in &problems.0 {
        if p.message.trim().is_empty() || p.file.as_os_str().is_empty() {
            return Err(format!("a problem without a message or a file: {p:?}"));
        }
    }
    let _ = problems.to_string();
    Ok(())
}

/// Names served per fuzzed zone (the first ones in wire order) and per fuzzed config.
const NAMES_ASKED: usize = 6;

/// The zone file target: `text` as the zone file `zones/fuzz.example.zone` (which may
/// `$INCLUDE inc.db`, [`INCLUDED`]).
///
/// A zone that does not load must say why. A zone that loads has its SOA and NS at the
/// apex, only names inside it (lowercase wire names), every ancestor of a name up to the
/// apex, a delegation flag exactly where NS is below the apex, a CNAME alone at its name,
/// record sets of one type each without duplicates, and names in RDATA where the loader
/// says; each RDATA reads back as its type. Without problems, it is then compiled alone
/// and served: a few of its names are asked for (A, ANY and each type there, and a name
/// below), and every answer checked ([`check_answer`]).
pub fn zone_file(text: &[u8]) -> Result<(), Failure> {
    let path = Path::new("zones/fuzz.example.zone");
    let fs = [
        (path, text),
        (Path::new("zones/inc.db"), INCLUDED.as_bytes()),
    ];
    let root = on_disk(&fs).join("zones");
    let mut problems = Problems::default();
    let origin = Name::from_ascii("fuzz.example.").expect("zone name");
    let loaded = zone::load_file(
        &root.join("fuzz.example.zone"),
        origin,
        &root,
        &mut problems,
    );
    check_problems(&problems)?;
    let Some(z) = loaded else {
        return match problems.is_empty() {
            true => Err("the zone did not load, and no problem says why".into()),
            false => Ok(()),
        };
    };
    check_zone(&z)?;
    if !problems.is_empty() {
        return Ok(());
    }
    let mut owners: Vec<Box<[u8]>> = z.nodes.keys().cloned().collect();
    owners.sort();
    owners.truncate(NAMES_ASKED);
    let snap = compile(&Config::default(), vec![z])
        .map_err(|p| format!("a zone that loads does not compile: {p}"))?;
    let zone = &snap.zones()[0];
    for owner in &owners {
        let mut types = vec![Rtype::A, Rtype::ANY];
        types.extend(zone.nodes[owner].rrsets.iter().map(|s| s.rtype));
        ask_all(&snap, owner, &types)?;
        if owner.len() + 2 <= name::MAX_NAME {
            let below = [&b"\x01x"[..], owner].concat();
            ask_all(&snap, &below, &[Rtype::A, Rtype::TXT])?;
        }
    }
    Ok(())
}

/// The promises of a loaded zone (see [`zone_file`]).
fn check_zone(z: &Zone) -> Result<(), Failure> {
    let apex = &z.apex;
    if **apex != *name::lower_wire(&z.origin) {
        return Err("the apex is not the origin".into());
    }
    let top = z.nodes.get(apex).ok_or("no node at the apex")?;
    if top.rrset(Rtype::SOA) != Some(&z.soa) || z.soa.rdata.len() != 1 {
        return Err("the SOA is not one record at the apex".into());
    }
    if top.rrset(Rtype::NS).is_none() {
        return Err("no NS at the apex".into());
    }
    let wire = &z.soa.rdata[0].wire;
    if wire.len() < 20 || wire[wire.len() - 20..] != z.soa_fixed {
        return Err("the SOA's numbers are not its RDATA's".into());
    }
    if z.negative_ttl > z.soa.ttl {
        return Err("the negative TTL is above the SOA's TTL".into());
    }
    let (mut cuts, mut wildcards, mut dnames) = (false, false, false);
    for (owner, node) in &z.nodes {
        let text = name::to_text(owner);
        if !well_formed(owner) {
            return Err(format!("{owner:?} is not a lowercase wire name"));
        }
        if !name::is_within(owner, apex) {
            return Err(format!("{text} is outside the zone"));
        }
        if let Some(p) = name::parent(owner)
            && **owner != **apex
            && !z.nodes.contains_key(p)
        {
            return Err(format!("{text} exists but its parent does not"));
        }
        let ns = node.rrset(Rtype::NS).is_some();
        if node.cut != (ns && **owner != **apex) {
            return Err(format!("{text}: delegation flag {} with NS {ns}", node.cut));
        }
        if node.rrset(Rtype::CNAME).is_some()
            && (node.rrsets.len() > 1 || node.rrsets[0].rdata.len() > 1)
        {
            return Err(format!("{text}: a CNAME with other data"));
        }
        cuts |= node.cut;
        wildcards |= owner.starts_with(b"\x01*");
        dnames |= node.rrset(Rtype::DNAME).is_some();
        for (i, set) in node.rrsets.iter().enumerate() {
            if node.rrsets[..i].iter().any(|s| s.rtype == set.rtype) {
                return Err(format!("{text}: two {} sets", set.rtype.0));
            }
            if set.rdata.is_empty() {
                return Err(format!("{text}: an empty {} set", set.rtype.0));
            }
            for (j, rd) in set.rdata.iter().enumerate() {
                if set.rdata[..j].contains(rd) {
                    return Err(format!("{text}: a {} record twice", set.rtype.0));
                }
                check_rdata(set.rtype, rd)
                    .map_err(|e| format!("{text} type {}: {e}", set.rtype.0))?;
            }
        }
    }
    if (cuts, wildcards, dnames) != (z.has_cuts, z.has_wildcards, z.has_dnames) {
        return Err("has_cuts, has_wildcards or has_dnames is wrong".into());
    }
    Ok(())
}

/// Labels of at most 63 bytes, no upper case, ending in the root, at most 255 bytes.
fn well_formed(wire: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&len) = wire.get(i) {
        if len == 0 {
            return i + 1 == wire.len() && wire.len() <= name::MAX_NAME;
        }
        if len > 63 || wire.len() < i + 1 + usize::from(len) {
            return false;
        }
        if wire[i + 1..i + 1 + usize::from(len)]
            .iter()
            .any(u8::is_ascii_uppercase)
        {
            return false;
        }
        i += 1 + usize::from(len);
    }
    false
}

fn check_rdata(rtype: Rtype, rd: &zone::Rdata) -> Result<(), Failure> {
    let len = u16::try_from(rd.wire.len()).map_err(|_| "RDATA over 65535 bytes")?;
    if let Some(t) = &rd.target
        && !well_formed(t)
    {
        return Err(format!("target {t:?} is not a lowercase wire name"));
    }
    if let Some(at) = rd.name_at
        && rd.target.as_deref() != rd.wire.get(usize::from(at)..)
    {
        return Err("the compressible name is not the target".into());
    }
    let mut dec = BinDecoder::new(&rd.wire);
    RData::read(&mut dec, RecordType::from(rtype.0), Restrict::new(len))
        .map_err(|e| format!("RDATA does not read back: {e}"))?;
    if !dec.is_empty() {
        return Err("RDATA reads back shorter".into());
    }
    Ok(())
}

/// Whether a config text could make the loader open a file: a monitor's `tls.ca_file`
/// and `geo.mmdb` are read when the config is checked, and a fuzzer must not make them
/// read `/dev/zero`. TOML escapes (`\u…`) could spell either key, so they are left out too.
fn opens_files(text: &str) -> bool {
    ["ca_file", "mmdb", "\\u", "\\U"]
        .iter()
        .any(|k| text.contains(k))
}

/// The config target: `text` as `config/signpost.toml`, read as [`Config::read`] does
/// (no environment overrides) and compiled with the default zone and `fuzz.example.`
/// as `signpost check` does.
///
/// Every problem names a file and says something; a config without problems compiles
/// into zones that keep what [`zone_file`] checks and is served: a few of its profiles
/// are asked for (A, AAAA and ANY), every answer checked ([`check_answer`]). Texts that are not UTF-8 (a read error
/// before the loader) or that could open files ([`opens_files`]) are skipped.
pub fn config(text: &[u8]) -> Result<(), Failure> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Ok(());
    };
    if opens_files(text) {
        return Ok(());
    }
    let (config, problems) = read_config(text);
    check_problems(&problems)?;
    let compiled = compile(&config, config_zones().to_vec());
    let snap = match compiled {
        Err(more) => {
            check_problems(&more)?;
            if more.is_empty() {
                return Err("the model did not compile, and no problem says why".into());
            }
            return Ok(());
        }
        Ok(_) if !problems.is_empty() => return Ok(()),
        Ok(snap) => snap,
    };
    // Profiles attached to the zones keep what a loaded zone promises.
    for z in snap.zones() {
        check_zone(z)?;
    }
    for p in snap.model.profiles.iter().take(NAMES_ASKED) {
        ask_all(&snap, &p.wire, &[Rtype::A, Rtype::AAAA, Rtype::ANY])?;
    }
    Ok(())
}

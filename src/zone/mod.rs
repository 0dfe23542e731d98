//! Zones: the static data signpost is authoritative for, indexed for lookup by lowercase
//! wire name, with every record pre-encoded.

mod file;
pub mod name;

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::ProtoError;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{
    BinDecoder, BinEncodable, BinEncoder, DecodeError, NameEncoding, Restrict,
};

use crate::base::Rtype;
use crate::config::{Problem, Problems};
use file::{SourcedRecord, read_zone_file};
use name::{lower_wire, parent, to_text};

/// One record's RDATA, encoded once at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rdata {
    /// Wire RDATA, names uncompressed.
    pub wire: Box<[u8]>,
    /// The name this record points to (NS, CNAME, MX, SRV, PTR), lowercase wire form, for
    /// CNAME chasing and additional-section processing.
    pub target: Option<Box<[u8]>>,
    /// Where in `wire` a name that may be compressed in answers starts (NS, CNAME, PTR,
    /// MX: RFC 3597 §4), when it is `target` byte for byte (written in lowercase).
    pub name_at: Option<u16>,
}

/// All records of one type at one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrSet {
    pub rtype: Rtype,
    pub ttl: u32,
    pub rdata: Vec<Rdata>,
}

/// One name in a zone. Names that only exist because something below them does (empty
/// non-terminals) have no record sets.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub rrsets: Vec<RrSet>,
    /// A delegation point: NS records below the apex.
    pub cut: bool,
    /// A traffic-managed profile lives here (index into the snapshot's profiles).
    pub profile: Option<u32>,
}

impl Node {
    pub fn rrset(&self, rtype: Rtype) -> Option<&RrSet> {
        self.rrsets.iter().find(|r| r.rtype == rtype)
    }
}

/// A loaded zone.
#[derive(Clone, Debug)]
pub struct Zone {
    pub origin: Name,
    /// Lowercase wire form of the apex.
    pub apex: Box<[u8]>,
    /// The SOA record set (exactly one record).
    pub soa: RrSet,
    /// TTL for negative answers: min(SOA TTL, SOA minimum) (RFC 2308 §5).
    pub negative_ttl: u32,
    /// The SOA's MNAME and RNAME (lowercase wire) and its five numbers, so that negative
    /// answers write it with compressed names.
    pub soa_mname: Box<[u8]>,
    pub soa_rname: Box<[u8]>,
    pub soa_fixed: [u8; 20],
    pub nodes: FxHashMap<Box<[u8]>, Node>,
    /// Whether any `*` owner exists (skips wildcard lookups when not).
    pub has_wildcards: bool,
    /// Whether any delegation below the apex exists (skips referral checks when not).
    pub has_cuts: bool,
    /// Whether any DNAME exists (skips DNAME lookups when not).
    pub has_dnames: bool,
    /// The file the zone came from.
    pub file: PathBuf,
}

impl Zone {
    /// Builds a zone from its records, checking what RFC 1034/2181 require: one SOA at
    /// the apex, NS at the apex, nothing outside the zone, CNAME alone at its name.
    fn build(
        origin: Name,
        file: &Path,
        records: Vec<SourcedRecord>,
        problems: &mut Problems,
    ) -> Option<Zone> {
        let apex = lower_wire(&origin);
        let mut nodes: FxHashMap<Box<[u8]>, Node> = FxHashMap::default();
        let mut soa = None;
        let before = problems.len();
        // Where each CNAME is, and whether its line may be quoted.
        let mut cname_lines: HashMap<Box<[u8]>, (PathBuf, usize, bool)> = HashMap::new();
        for sr in records {
            let at = || Problem::new(&sr.file, format!("line {}", sr.line), String::new());
            // The owner as written, for a file whose lines may be quoted.
            let owner_text = |what: &str| {
                if sr.quote {
                    format!("{} {what}", sr.record.name)
                } else {
                    format!("the owner name {what}")
                }
            };
            let owner = lower_wire(&sr.record.name);
            if !name::is_within(&owner, &apex) {
                let mut p = at();
                p.message = owner_text(&format!(
                    "is outside the zone {origin}; move it to that zone's file or fix the name"
                ));
                problems.push(p);
                continue;
            }
            let rt = Rtype(u16::from(sr.record.record_type()));
            if rt == Rtype::SOA {
                if owner != apex {
                    let mut p = at();
                    p.message = if sr.quote {
                        format!(
                            "SOA must be at the zone apex {origin}, not at {}",
                            sr.record.name
                        )
                    } else {
                        format!("SOA must be at the zone apex {origin}")
                    };
                    problems.push(p);
                    continue;
                }
                if soa.is_some() {
                    let mut p = at();
                    p.message = "a second SOA record; a zone has exactly one".into();
                    problems.push(p);
                    continue;
                }
                soa = Some(sr.record.clone());
            }
            if rt == Rtype::CNAME {
                cname_lines.insert(owner.clone(), (sr.file.clone(), sr.line, sr.quote));
            }
            let rdata = match encode_rdata(&sr.record.data) {
                Ok(r) => r,
                Err(e) => {
                    let mut p = at();
                    p.message = e.to_string();
                    problems.push(p);
                    continue;
                }
            };
            let node = nodes.entry(owner.clone()).or_default();
            match node.rrsets.iter_mut().find(|r| r.rtype == rt) {
                Some(set) => {
                    set.ttl = set.ttl.min(sr.record.ttl);
                    if !set.rdata.contains(&rdata) {
                        set.rdata.push(rdata);
                    }
                }
                None => node.rrsets.push(RrSet {
                    rtype: rt,
                    ttl: sr.record.ttl,
                    rdata: vec![rdata],
                }),
            }
            if rt == Rtype::NS && owner != apex {
                node.cut = true;
            }
        }
        for (owner, (cname_file, line, quote)) in &cname_lines {
            let node = &nodes[owner];
            if node.rrsets.len() > 1 || node.rrsets[0].rdata.len() > 1 {
                let name = if *quote {
                    to_text(owner)
                } else {
                    "this name".to_owned()
                };
                problems.push(Problem::new(
                    cname_file,
                    format!("line {line}"),
                    format!(
                        "{name} has a CNAME and other data (or several CNAMEs); a CNAME must be the only record at its name (RFC 1034 §3.6.2)"
                    ),
                ));
            }
        }
        let Some(soa_record) = soa else {
            problems.push(Problem::new(
                file,
                "",
                format!("zone {origin} has no SOA record; add one at @ (the apex)"),
            ));
            return None;
        };
        if nodes.get(&apex).and_then(|n| n.rrset(Rtype::NS)).is_none() {
            problems.push(Problem::new(
                file,
                "",
                format!(
                    "zone {origin} has no NS record at its apex; add at least one, e.g. `@ NS ns1`"
                ),
            ));
        }
        if problems.len() > before {
            return None;
        }
        let (minimum, soa_mname, soa_rname) = match &soa_record.data {
            RData::SOA(s) => (s.minimum, lower_wire(&s.mname), lower_wire(&s.rname)),
            _ => (0, apex.clone(), apex.clone()),
        };
        let negative_ttl = soa_record.ttl.min(minimum);
        let soa = nodes[&apex]
            .rrset(Rtype::SOA)
            .cloned()
            .expect("SOA inserted above");
        // Empty non-terminals: every ancestor of a name, up to the apex, exists.
        let owners: Vec<Box<[u8]>> = nodes.keys().cloned().collect();
        let has_cuts = nodes.values().any(|n| n.cut);
        let has_dnames = nodes.values().any(|n| n.rrset(Rtype::DNAME).is_some());
        for owner in owners {
            add_ancestors(&mut nodes, &owner, &apex);
        }
        // Counted after the empty non-terminals: one named `*` (above `a.*.w`) is a
        // wildcard too, whose answers are NODATA (RFC 4592 §4.2).
        let has_wildcards = nodes.keys().any(|o| o.starts_with(b"\x01*"));
        let mut soa_fixed = [0u8; 20];
        let wire = &soa.rdata[0].wire;
        soa_fixed.copy_from_slice(&wire[wire.len() - 20..]);
        Some(Zone {
            origin,
            apex,
            soa,
            negative_ttl,
            soa_mname,
            soa_rname,
            soa_fixed,
            nodes,
            has_wildcards,
            has_cuts,
            has_dnames,
            file: file.to_path_buf(),
        })
    }

    /// Attaches a profile at `owner` (lowercase wire name inside this zone). Fails when
    /// static records already live there.
    pub(crate) fn attach_profile(&mut self, owner: &[u8], id: u32) -> Result<(), NameTaken> {
        let node = self.nodes.entry(owner.into()).or_default();
        if !node.rrsets.is_empty() {
            return Err(NameTaken {
                file: self.file.clone(),
                name: to_text(owner),
            });
        }
        node.profile = Some(id);
        let apex = self.apex.clone();
        add_ancestors(&mut self.nodes, owner, &apex);
        // The profile's name, or an empty non-terminal it adds, may be a wildcard.
        let mut at = owner;
        while at.len() > apex.len() {
            self.has_wildcards |= at.starts_with(b"\x01*");
            at = parent(at).unwrap_or_default();
        }
        Ok(())
    }
}

/// A profile's name already holds records in a zone file: one name is either static data
/// or traffic-managed, not both.
#[derive(Debug, thiserror::Error)]
#[error(
    "the zone file {} already has records at {name}; remove them or rename the profile",
    file.display()
)]
pub(crate) struct NameTaken {
    pub file: PathBuf,
    /// The name, as text (`app.gslb.example.`).
    pub name: String,
}

fn add_ancestors(nodes: &mut FxHashMap<Box<[u8]>, Node>, owner: &[u8], apex: &[u8]) {
    let mut cur = owner;
    while cur.len() > apex.len() {
        let Some(p) = parent(cur) else { break };
        nodes.entry(p.into()).or_default();
        cur = p;
    }
}

/// Why a record read from a zone file cannot be served.
#[derive(Debug, thiserror::Error)]
enum EncodeError {
    #[error("cannot encode this record: {0}")]
    Encode(#[from] ProtoError),
    #[error("its data is {0} bytes long; a record's data holds at most 65535")]
    TooLong(usize),
    #[error("its data, encoded, is not a valid {rtype} record ({source}); check its fields")]
    Invalid {
        rtype: RecordType,
        source: DecodeError,
    },
}

/// Encodes RDATA with uncompressed names (the bytes are copied into many messages). The
/// bytes must read back as their type: hickory-proto's text parser accepts some data its
/// own wire reader refuses (a CAA tag with a `*` in it), and so would a resolver.
fn encode_rdata(data: &RData) -> Result<Rdata, EncodeError> {
    let mut buf = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut buf);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        data.emit(&mut enc)?;
    }
    let len = u16::try_from(buf.len()).map_err(|_| EncodeError::TooLong(buf.len()))?;
    let rtype = data.record_type();
    let mut dec = BinDecoder::new(&buf);
    RData::read(&mut dec, rtype, Restrict::new(len))
        .map_err(|source| EncodeError::Invalid { rtype, source })?;
    let target = match data {
        RData::NS(n) => Some(lower_wire(&n.0)),
        RData::CNAME(n) => Some(lower_wire(&n.0)),
        RData::PTR(n) => Some(lower_wire(&n.0)),
        RData::MX(mx) => Some(lower_wire(&mx.exchange)),
        RData::SRV(srv) => Some(lower_wire(&srv.target)),
        // DNAME (read as raw RDATA): its uncompressed target name, lowercased (length
        // octets are below 64, so ASCII lowercasing leaves them alone).
        RData::Unknown { code, .. } if Rtype(u16::from(*code)) == Rtype::DNAME => {
            Some(buf.to_ascii_lowercase().into_boxed_slice())
        }
        _ => None,
    };
    let name_at = match (data, &target) {
        (RData::NS(_) | RData::CNAME(_) | RData::PTR(_), Some(t)) if buf[..] == t[..] => Some(0),
        (RData::MX(_), Some(t)) if buf.get(2..) == Some(&t[..]) => Some(2),
        _ => None,
    };
    Ok(Rdata {
        wire: buf.into_boxed_slice(),
        target,
        name_at,
    })
}

/// Reads the zone file at `path` (and what it includes below `root`, the canonical
/// zones directory) as zone `origin` and indexes it; `None` when it cannot be served.
/// Every problem found is added to `problems`, also when the zone is returned (without
/// the records in error).
pub fn load_file(path: &Path, origin: Name, root: &Path, problems: &mut Problems) -> Option<Zone> {
    let records = read_zone_file(path, &origin, root, problems);
    Zone::build(origin, path, records, problems)
}

/// Reads every `<zone>.zone` file in `dir`. The zone's name is the file name without
/// `.zone` (`gslb.example.zone` serves `gslb.example.`).
///
/// `$INCLUDE` reads only files below `dir` (symlinks resolved), and problems in included
/// files never quote their lines (see [`file::read_zone_file`]).
pub(crate) fn load_dir(dir: &Path, problems: &mut Problems) -> Vec<Zone> {
    let mut files = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "zone") && p.is_file() {
                    files.push(p);
                }
            }
        }
        Err(e) => {
            problems.push(Problem::new(
                dir,
                "",
                format!("cannot read the zones directory ({e}); set zones.dir to the folder holding <zone>.zone files"),
            ));
            return Vec::new();
        }
    }
    files.sort();
    // Read above, so it exists.
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if files.is_empty() {
        problems.push(Problem::new(
            dir,
            "",
            "no zone files; add one named <zone>.zone, e.g. gslb.example.zone",
        ));
    }
    let mut zones: Vec<Zone> = Vec::new();
    for f in files {
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let origin = match Name::from_str(stem).map(|mut n| {
            n.set_fqdn(true);
            n
        }) {
            Ok(n) => n,
            Err(e) => {
                problems.push(Problem::new(
                    &f,
                    "",
                    format!("the file name must be <zone>.zone with a valid zone name ({e})"),
                ));
                continue;
            }
        };
        let records = read_zone_file(&f, &origin, &root, problems);
        if let Some(z) = Zone::build(origin, &f, records, problems) {
            if zones.iter().any(|o| o.apex == z.apex) {
                problems.push(Problem::new(
                    &f,
                    "",
                    format!("zone {} is loaded twice", z.origin),
                ));
                continue;
            }
            zones.push(z);
        }
    }
    zones
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(text: &str) -> Result<Zone, Problems> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("example.com.zone");
        std::fs::write(&p, text).unwrap();
        let mut problems = Problems::default();
        let zones = load_dir(dir.path(), &mut problems);
        if problems.is_empty() {
            Ok(zones.into_iter().next().unwrap())
        } else {
            Err(problems)
        }
    }

    const HEAD: &str =
        "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n";

    #[test]
    fn builds_nodes_and_empty_non_terminals() {
        let z = zone(&format!(
            "{HEAD}a.b.c A 192.0.2.2\nsub NS ns.sub\nns.sub A 192.0.2.3\n*.w TXT hi\n"
        ))
        .unwrap();
        assert_eq!(z.negative_ttl, 60);
        assert!(
            z.nodes
                .contains_key(&b"\x01b\x01c\x07example\x03com\x00"[..])
        );
        assert!(
            z.nodes[&b"\x01b\x01c\x07example\x03com\x00"[..]]
                .rrsets
                .is_empty()
        );
        assert!(z.nodes[&b"\x03sub\x07example\x03com\x00"[..]].cut);
        assert!(z.has_wildcards);
    }

    #[test]
    fn an_empty_non_terminal_named_star_is_a_wildcard() {
        let z = zone(&format!("{HEAD}a.*.w TXT hi\n")).unwrap();
        assert!(
            z.nodes[&b"\x01*\x01w\x07example\x03com\x00"[..]]
                .rrsets
                .is_empty()
        );
        assert!(z.has_wildcards);
        let mut z = zone(HEAD).unwrap();
        assert!(!z.has_wildcards);
        z.attach_profile(b"\x03app\x01*\x07example\x03com\x00", 0)
            .unwrap();
        assert!(z.has_wildcards);
    }

    #[test]
    fn negative_ttl_is_min_of_soa_ttl_and_minimum() {
        let z = zone("@ 30 SOA ns1 hostmaster 1 7200 3600 1209600 600\n@ NS ns1\n").unwrap();
        assert_eq!(z.negative_ttl, 30);
        // No TTL anywhere: the SOA takes its MINIMUM (RFC 2308 §4), never 0.
        let z = zone("@ SOA ns1 hostmaster 1 7200 3600 1209600 90\n@ NS ns1\n").unwrap();
        assert_eq!(z.soa.ttl, 90);
        assert_eq!(z.negative_ttl, 90);
    }

    #[test]
    fn rejects_data_that_does_not_read_back() {
        // hickory-proto's text parser takes this tag; on the wire it is not a CAA record.
        let e = zone(&format!("{HEAD}caa CAA 0 iss*e \"ca.example\"\n")).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 5: its data, encoded, is not a valid CAA record"),
            "{e}"
        );
        zone(&format!("{HEAD}caa CAA 0 issue \"ca.example\"\n")).unwrap();
    }

    #[test]
    fn rejects_cname_and_other_data_and_missing_soa() {
        let e = zone(&format!("{HEAD}www CNAME ns1\nwww A 192.0.2.9\n")).unwrap_err();
        assert!(e.to_string().contains("CNAME and other data"), "{e}");
        let e = zone("$TTL 300\n@ NS ns1\n").unwrap_err();
        assert!(e.to_string().contains("no SOA"), "{e}");
        let e = zone(&format!("{HEAD}www.example.org. A 192.0.2.1\n")).unwrap_err();
        assert!(e.to_string().contains("outside the zone"), "{e}");
    }

    /// A temporary directory (kept while it is held) with a `zones` directory in it, and
    /// outside that a file `name` holding `text`, linked into `zones` as `link`; and the
    /// paths of `zones` and of the file.
    pub(super) fn zones_with_a_link_out(
        name: &str,
        text: &str,
        link: &str,
    ) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let top = tempfile::tempdir().unwrap();
        let zones = top.path().join("zones");
        std::fs::create_dir(&zones).unwrap();
        let outside = top.path().join(name);
        std::fs::write(&outside, text).unwrap();
        std::os::unix::fs::symlink(&outside, zones.join(link)).unwrap();
        (top, zones, outside)
    }

    /// The problems of loading the zones in `dir`.
    fn problems_of(dir: &std::path::Path) -> Problems {
        let mut problems = Problems::default();
        load_dir(dir, &mut problems);
        problems
    }

    /// Names from an included file are not quoted either: its problems give the file, the
    /// line and what is wrong.
    #[test]
    fn problems_with_included_records_do_not_quote_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("inc.db"),
            "secret7781.example.org. A 192.0.2.1\nsecret7782 SOA ns1 h 1 2 3 4 5\nsecret7783 CNAME ns1\nsecret7783 A 192.0.2.2\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("example.com.zone"),
            format!("{HEAD}$INCLUDE inc.db\n"),
        )
        .unwrap();
        let text = problems_of(dir.path()).assert_has(
            3,
            &[
                "inc.db: line 1: the owner name is outside the zone example.com.",
                "inc.db: line 2: SOA must be at the zone apex",
                "inc.db: line 3: this name has a CNAME and other data",
            ],
        );
        assert!(!text.contains("secret"), "{text}");
    }

    /// A zone file that is a symlink to a file outside zones.dir is still served (it is
    /// named by being in zones.dir), but its problems do not quote its lines either.
    #[test]
    fn a_zone_file_outside_the_zones_dir_is_not_quoted() {
        let (_top, zones, outside) = zones_with_a_link_out(
            "elsewhere.zone",
            &format!("{HEAD}secret7781 A 300.1.1.1\n"),
            "example.com.zone",
        );
        let text = problems_of(&zones).assert_has(1, &["line 5: bad A record data"]);
        assert!(!text.contains("secret"), "{text}");
        std::fs::write(&outside, HEAD).unwrap();
        let mut problems = Problems::default();
        assert_eq!(load_dir(&zones, &mut problems).len(), 1, "{problems}");
    }
}

//! RFC 1035 master files: `$ORIGIN`, `$TTL`, `$INCLUDE`, parentheses, quotes, comments.
//!
//! The entry grammar (owners, TTL and class defaults, directives) is read here so that every
//! bad line is reported with its file and line; the RDATA of each entry is handed to
//! hickory-proto's own zone parser.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::ProtoError;
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, Restrict};
use hickory_proto::serialize::txt::{ParseError, Parser, parse_ttl};

use crate::config::{Problem, Problems};

/// One record read from a zone file, with where it came from.
#[derive(Clone, Debug)]
pub(crate) struct SourcedRecord {
    pub record: Record,
    pub file: PathBuf,
    pub line: usize,
    /// Whether problems with this record may quote it (its owner name, its data): only
    /// for a file the config names (a `<zone>.zone` in `zones.dir`), never for an
    /// included one, whose lines are reported by file and line only.
    pub quote: bool,
}

/// Deepest chain of `$INCLUDE`s (a zone file including one that includes one …).
pub(crate) const MAX_INCLUDE_DEPTH: usize = 8;
/// Most `$INCLUDE`s followed for one zone, so that a file that includes another many
/// times, which includes another many times, fails at once instead of multiplying.
pub(crate) const MAX_INCLUDES: usize = 256;

/// One logical entry: the tokens of one line, or of several joined by parentheses.
struct Entry {
    line: usize,
    /// Whether the entry began with white space (owner is the previous one).
    blank_owner: bool,
    tokens: Vec<String>,
}

/// Splits master-file text into entries. Tokens keep their quotes and escapes so that
/// they can be handed on unchanged. Errors: unbalanced parentheses or quotes.
fn entries(text: &str, file: &Path, problems: &mut Problems) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut cur: Option<Entry> = None;
    let mut depth = 0usize;
    let mut paren_line = 0;
    let mut tok = String::new();
    let mut in_quote = false;
    let mut quote_line = 0;
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    let mut at_line_start = true;

    fn flush_tok(tok: &mut String, cur: &mut Option<Entry>, line: usize) {
        if !tok.is_empty() {
            cur.get_or_insert_with(|| Entry {
                line,
                blank_owner: false,
                tokens: Vec::new(),
            })
            .tokens
            .push(std::mem::take(tok));
        }
    }

    while let Some(c) = chars.next() {
        if in_quote {
            tok.push(c);
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        if n == '\n' {
                            line += 1;
                        }
                        tok.push(n);
                    }
                }
                '"' => in_quote = false,
                '\n' => line += 1,
                _ => {}
            }
            continue;
        }
        let starting = at_line_start;
        at_line_start = false;
        match c {
            '\n' => {
                flush_tok(&mut tok, &mut cur, line);
                if depth == 0
                    && let Some(e) = cur.take()
                {
                    out.push(e);
                }
                line += 1;
                at_line_start = true;
            }
            ' ' | '\t' | '\r' => {
                if starting && depth == 0 && cur.is_none() {
                    cur = Some(Entry {
                        line,
                        blank_owner: true,
                        tokens: Vec::new(),
                    });
                }
                flush_tok(&mut tok, &mut cur, line);
            }
            ';' => {
                flush_tok(&mut tok, &mut cur, line);
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            '(' => {
                flush_tok(&mut tok, &mut cur, line);
                cur.get_or_insert_with(|| Entry {
                    line,
                    blank_owner: false,
                    tokens: Vec::new(),
                });
                if depth == 0 {
                    paren_line = line;
                }
                depth += 1;
            }
            ')' => {
                flush_tok(&mut tok, &mut cur, line);
                if depth == 0 {
                    problems.push(Problem::new(
                        file,
                        format!("line {line}"),
                        "')' without a matching '('; remove it or add the '('",
                    ));
                } else {
                    depth -= 1;
                }
            }
            '"' => {
                in_quote = true;
                quote_line = line;
                tok.push(c);
            }
            '\\' => {
                tok.push(c);
                if let Some(n) = chars.next() {
                    if n == '\n' {
                        line += 1;
                    }
                    tok.push(n);
                }
            }
            _ => tok.push(c),
        }
    }
    if in_quote {
        problems.push(Problem::new(
            file,
            format!("line {quote_line}"),
            "a quoted string is never closed; add the closing '\"'",
        ));
    }
    if depth > 0 {
        problems.push(Problem::new(
            file,
            format!("line {paren_line}"),
            "'(' is never closed; add the matching ')'",
        ));
    }
    flush_tok(&mut tok, &mut cur, line);
    if let Some(e) = cur.take() {
        out.push(e);
    }
    out.retain(|e| !e.tokens.is_empty());
    out
}

struct Context {
    origin: Name,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Option<Name>,
    class: DNSClass,
}

/// Where a zone's files may come from, and how many have been included so far.
struct Reader<'a> {
    /// `zones.dir`, symlinks resolved: every included file must resolve below it.
    root: &'a Path,
    /// `$INCLUDE`s followed so far (at most [`MAX_INCLUDES`]).
    includes: usize,
    /// An include loop, one nested too deep or one too many was found: it is reported,
    /// and no further `$INCLUDE` of this zone is followed (so that one mistake is one
    /// message, not thousands).
    stopped: bool,
    /// The files being read, outermost first (resolved), to refuse an include loop.
    stack: Vec<PathBuf>,
}

/// Reads a zone file (and what it includes). Every record that parses is returned; every
/// line that does not is a problem.
///
/// `root` is `zones.dir` with its symlinks resolved. An `$INCLUDE` must name a regular
/// file that resolves below it; there are at most [`MAX_INCLUDES`] of them, nested at
/// most [`MAX_INCLUDE_DEPTH`] deep, and a file never includes itself (directly or through
/// others). Problems in an included file, or in a zone file that resolves outside `root`
/// (a symlink), give the file, the line and what is wrong, never the line's text.
pub(crate) fn read_zone_file(
    path: &Path,
    origin: &Name,
    root: &Path,
    problems: &mut Problems,
) -> Vec<SourcedRecord> {
    let mut cx = Context {
        origin: origin.clone(),
        default_ttl: None,
        last_ttl: None,
        last_owner: None,
        class: DNSClass::IN,
    };
    let mut reader = Reader {
        root,
        includes: 0,
        stopped: false,
        stack: Vec::new(),
    };
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let quote = resolved.starts_with(root);
    let mut out = Vec::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::new(
                path,
                "",
                format!("cannot read the zone file ({e})"),
            ));
            return out;
        }
    };
    reader.stack.push(resolved);
    reader.read(path, &text, quote, &mut cx, problems, &mut out);
    out
}

impl Reader<'_> {
    /// Reads the entries of `text` (the file at `path`); `quote`: whether problems may
    /// quote its lines.
    fn read(
        &mut self,
        path: &Path,
        text: &str,
        quote: bool,
        cx: &mut Context,
        problems: &mut Problems,
        out: &mut Vec<SourcedRecord>,
    ) {
        for entry in entries(text, path, problems) {
            let at = format!("line {}", entry.line);
            let bad = |problems: &mut Problems, msg: String| {
                problems.push(Problem::new(path, at.clone(), msg))
            };
            let first = entry.tokens[0].as_str();
            if !entry.blank_owner && first.starts_with('$') {
                match first.to_ascii_uppercase().as_str() {
                    "$ORIGIN" => match entry
                        .tokens
                        .get(1)
                        .map(|t| Name::parse(t, Some(&cx.origin)))
                    {
                        Some(Ok(mut n)) if entry.tokens.len() == 2 => {
                            n.set_fqdn(true);
                            cx.origin = n;
                        }
                        _ => bad(
                            problems,
                            "$ORIGIN takes one domain name, e.g. $ORIGIN example.com.".into(),
                        ),
                    },
                    "$TTL" => match entry.tokens.get(1).map(|t| parse_ttl(t)) {
                        Some(Ok(ttl)) if entry.tokens.len() == 2 => cx.default_ttl = Some(ttl),
                        _ => bad(
                            problems,
                            "$TTL takes one TTL, e.g. $TTL 3600 or $TTL 1h".into(),
                        ),
                    },
                    "$INCLUDE" => {
                        if let Err(msg) = self.include(path, &entry, quote, cx, problems, out) {
                            bad(problems, msg);
                        }
                    }
                    other => bad(
                        problems,
                        format!(
                            "unknown directive{}; the directives are $ORIGIN, $TTL and $INCLUDE",
                            if quote {
                                format!(" {other}")
                            } else {
                                String::new()
                            }
                        ),
                    ),
                }
                continue;
            }
            match record(&entry, cx) {
                Ok(record) => out.push(SourcedRecord {
                    record,
                    file: path.to_path_buf(),
                    line: entry.line,
                    quote,
                }),
                Err(e) if quote => bad(problems, e.to_string()),
                Err(e) => bad(problems, e.unquoted()),
            }
        }
    }

    /// Follows one `$INCLUDE` entry of the file at `path`; `Err` is the problem with it
    /// (reported at that entry).
    fn include(
        &mut self,
        path: &Path,
        entry: &Entry,
        quote: bool,
        cx: &mut Context,
        problems: &mut Problems,
        out: &mut Vec<SourcedRecord>,
    ) -> Result<(), String> {
        const STOP: &str = "no further $INCLUDE of this zone is read";
        if self.stopped {
            return Ok(());
        }
        if self.includes >= MAX_INCLUDES {
            self.stopped = true;
            return Err(format!(
                "more than {MAX_INCLUDES} $INCLUDEs in this zone (is a file included many times over?); {STOP}"
            ));
        }
        self.includes += 1;
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            self.stopped = true;
            return Err(format!(
                "$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} files; {STOP}"
            ));
        }
        let Some(file) = entry.tokens.get(1) else {
            return Err("$INCLUDE needs a file name".into());
        };
        // What the messages may say about the file named: its name as written, only when
        // this file's lines may be quoted.
        let named = |what: &str| {
            if quote {
                format!("$INCLUDE {file}: {what}")
            } else {
                format!("$INCLUDE: {what}")
            }
        };
        let inc = Path::new(file.trim_matches('"'));
        let inc = if inc.is_absolute() {
            inc.to_path_buf()
        } else {
            path.parent().unwrap_or(Path::new(".")).join(inc)
        };
        let (mut opened, resolved) =
            open_below(&inc, self.root).map_err(|e| named(&e.to_string()))?;
        if self.stack.contains(&resolved) {
            self.stopped = true;
            return Err(named(&format!(
                "the file includes itself (directly or through other files); remove the loop; {STOP}"
            )));
        }
        // RFC 1035 §5.1: the included file may set its own origin; the parent's origin is
        // unchanged afterwards.
        let origin = match entry
            .tokens
            .get(2)
            .map(|o| (o, Name::parse(o, Some(&cx.origin))))
        {
            None => None,
            Some((_, Ok(mut n))) => {
                n.set_fqdn(true);
                Some(n)
            }
            Some((o, Err(e))) if quote => {
                return Err(format!("bad origin {o:?} for $INCLUDE: {e}"));
            }
            Some((_, Err(_))) => return Err("bad origin name for $INCLUDE".into()),
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut opened, &mut text)
            .map_err(|e| named(&format!("cannot read it ({e})")))?;
        drop(opened);
        let saved = cx.origin.clone();
        if let Some(o) = origin {
            cx.origin = o;
        }
        self.stack.push(resolved);
        self.read(&inc, &text, false, cx, problems, out);
        self.stack.pop();
        cx.origin = saved;
        Ok(())
    }
}

/// Opens `path` for reading when it is a regular file below `root` (symbolic links
/// resolved); the open file and its resolved path, or what is wrong. The path is checked
/// before the file is opened and again on the file opened (its path read back from
/// `/proc/self/fd`), so that a link swapped in between cannot redirect the read. Opening
/// never blocks (a FIFO is refused, not waited on).
fn open_below(path: &Path, root: &Path) -> Result<(std::fs::File, PathBuf), OpenError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let outside = || OpenError::Outside(root.to_path_buf());
    let resolved = std::fs::canonicalize(path).map_err(OpenError::Read)?;
    if !resolved.starts_with(root) {
        return Err(outside());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&resolved)
        .map_err(OpenError::Read)?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(OpenError::NotRegular);
    }
    match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        Ok(real) if !real.starts_with(root) => Err(outside()),
        Ok(real) => Ok((file, real)),
        // No /proc: the check before opening stands.
        Err(_) => Ok((file, resolved)),
    }
}

/// Why [`open_below`] refused a file.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error(
        "only files below zones.dir ({}) can be included, and this one is not (symbolic links resolved); move it into zones.dir",
        .0.display()
    )]
    Outside(PathBuf),
    #[error("cannot read it ({0})")]
    Read(std::io::Error),
    #[error("not a regular file")]
    NotRegular,
}

/// What is wrong with one record line of a zone file (reported with its file and line).
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("the first record has no owner name; start the line with a name or @")]
    NoOwner,
    #[error("bad owner name {text:?}: {source}")]
    Owner { text: String, source: ProtoError },
    #[error("bad TTL {0:?}; write seconds, or e.g. 1h, 30m")]
    Ttl(String),
    #[error("class {0} is not served; signpost serves class IN only")]
    Class(String),
    #[error("{0:?} is not a record type (or a TTL or class); e.g. A, AAAA, CNAME, MX, TXT")]
    NotAType(String),
    #[error("no record type on this line")]
    NoType,
    #[error("record type {0} is not supported in zone files")]
    Unsupported(RecordType),
    #[error("{0} record without data")]
    NoData(RecordType),
    #[error("no TTL: give one on the line or set $TTL before it")]
    NoTtl,
    #[error("bad {rtype} record data {data:?}: {why}")]
    Raw {
        rtype: RecordType,
        data: String,
        why: &'static str,
    },
    #[error("bad {rtype} record data {data:?}: {source}")]
    Data {
        rtype: RecordType,
        data: String,
        source: ParseError,
    },
    #[error("bad {0} record: nothing parsed")]
    NothingParsed(RecordType),
    #[error(
        "a line break inside the record's data (in a quoted string or after a backslash); write \\010 for a newline in a string, or use parentheses to continue a record on the next line"
    )]
    LineBreak,
}

impl RecordError {
    /// What is wrong, without the text of the line: for files whose lines must not be
    /// quoted (included files).
    fn unquoted(&self) -> String {
        match self {
            Self::NoOwner | Self::NoType | Self::NoTtl | Self::LineBreak => self.to_string(),
            Self::Owner { .. } => "bad owner name".into(),
            Self::Ttl(_) => "bad TTL; write seconds, or e.g. 1h, 30m".into(),
            Self::Class(_) => "a class other than IN; signpost serves class IN only".into(),
            Self::NotAType(_) => {
                "no record type where one should be (after the owner, TTL and class); e.g. A, AAAA, CNAME, MX, TXT".into()
            }
            Self::Unsupported(_) => "a record type that is not supported in zone files".into(),
            Self::NoData(_) => "a record without data".into(),
            Self::Raw { rtype, why, .. } => format!("bad {rtype} record data: {why}"),
            Self::Data { rtype, .. } => format!("bad {rtype} record data"),
            Self::NothingParsed(rtype) => format!("bad {rtype} record: nothing parsed"),
        }
    }
}

/// Reads one RR entry: `[owner] [ttl] [class] type rdata…` (TTL and class in either order).
fn record(entry: &Entry, cx: &mut Context) -> Result<Record, RecordError> {
    let mut toks = entry.tokens.iter().map(String::as_str).peekable();
    let owner = if entry.blank_owner {
        cx.last_owner.clone().ok_or(RecordError::NoOwner)?
    } else {
        let t = toks.next().unwrap_or_default();
        let mut n = if t == "@" {
            cx.origin.clone()
        } else {
            Name::parse(t, Some(&cx.origin)).map_err(|source| RecordError::Owner {
                text: t.to_owned(),
                source,
            })?
        };
        n.set_fqdn(true);
        n
    };
    cx.last_owner = Some(owner.clone());

    let mut ttl = None;
    let mut rtype = None;
    for _ in 0..3 {
        let Some(t) = toks.next() else { break };
        let upper = t.to_ascii_uppercase();
        if ttl.is_none() && t.as_bytes()[0].is_ascii_digit() {
            ttl = Some(parse_ttl(t).map_err(|_| RecordError::Ttl(t.to_owned()))?);
        } else if let Ok(class) = DNSClass::from_str(&upper) {
            if class != DNSClass::IN {
                return Err(RecordError::Class(upper));
            }
            cx.class = class;
        } else {
            // RFC 3597 §5: any type as TYPEnnn.
            let generic = upper
                .strip_prefix("TYPE")
                .and_then(|n| n.parse::<u16>().ok())
                .map(RecordType::from);
            rtype = Some(match generic {
                Some(t) => t,
                None => {
                    RecordType::from_str(&upper).map_err(|_| RecordError::NotAType(t.to_owned()))?
                }
            });
            break;
        }
    }
    let rtype = rtype.ok_or(RecordError::NoType)?;
    let rdata: Vec<&str> = toks.collect();
    // The data is handed on as one line: a line break in it (inside quotes, or after a
    // backslash) would start a new line there, where a `$INCLUDE` would be followed
    // outside every rule of this reader. BIND refuses these too.
    if rdata.iter().any(|t| t.contains(['\n', '\r'])) {
        return Err(RecordError::LineBreak);
    }
    // The RFC 3597 generic form (`\# length hex`) is accepted for every type that can be
    // stored, and read as its type where the type is known (§5): RDATA that is not the
    // type's is an error, as in the type's own form. DS and DNAME are read here
    // (hickory-proto reads them only with DNSSEC on).
    let raw = if rdata.first() == Some(&"\\#") {
        Some(generic_record_data(rtype, &rdata)?)
    } else if rtype == RecordType::DS {
        Some(opaque(rtype, ds_rdata(&rdata)?))
    } else if rtype == RecordType::DNAME {
        Some(opaque(rtype, dname_rdata(&rdata, &cx.origin)?))
    } else {
        None
    };
    if raw.is_none() {
        supported(rtype)?;
    }
    if rdata.is_empty() {
        return Err(RecordError::NoData(rtype));
    }
    let inherited = cx.default_ttl.or(cx.last_ttl);
    // An SOA with neither its own TTL nor a $TTL before it takes its MINIMUM field (RFC
    // 2308 §4, as BIND does), and so do the TTL-less records after it; it is known only
    // once the RDATA is parsed, below.
    let soa_minimum_ttl = ttl.is_none() && inherited.is_none() && rtype == RecordType::SOA;
    let ttl = match ttl {
        Some(t) => {
            cx.last_ttl = Some(t);
            t
        }
        None if soa_minimum_ttl => 0,
        None => inherited.ok_or(RecordError::NoTtl)?,
    };
    let mut record = match raw {
        Some(data) => Record::from_rdata(owner.clone(), ttl, data),
        None => text_record(rtype, ttl, &rdata, &cx.origin)?,
    };
    if soa_minimum_ttl && let RData::SOA(soa) = &record.data {
        record.ttl = soa.minimum;
        cx.last_ttl = Some(soa.minimum);
    }
    record.name = owner;
    Ok(record)
}

/// Reads the RDATA `rdata` of type `rtype` in its own text form (hickory-proto's parser).
fn text_record(
    rtype: RecordType,
    ttl: u32,
    rdata: &[&str],
    origin: &Name,
) -> Result<Record, RecordError> {
    let snippet = format!("@ {ttl} IN {rtype} {}\n", rdata.join(" "));
    let parsed = Parser::new(snippet, None, Some(origin.clone()))
        .parse()
        .map_err(|source| RecordError::Data {
            rtype,
            data: rdata.join(" "),
            source,
        })?;
    parsed
        .1
        .into_values()
        .flat_map(|rs| rs.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .next()
        .ok_or(RecordError::NothingParsed(rtype))
}

/// The types read by hickory-proto's parser.
fn supported(rtype: RecordType) -> Result<(), RecordError> {
    match rtype {
        RecordType::A
        | RecordType::AAAA
        | RecordType::NS
        | RecordType::CNAME
        | RecordType::SOA
        | RecordType::MX
        | RecordType::TXT
        | RecordType::SRV
        | RecordType::CAA
        | RecordType::PTR
        | RecordType::HINFO
        | RecordType::NAPTR
        | RecordType::SSHFP
        | RecordType::TLSA
        | RecordType::SVCB
        | RecordType::HTTPS => {}
        other => return Err(RecordError::Unsupported(other)),
    }
    Ok(())
}

fn raw_err(rtype: RecordType, rdata: &[&str], why: &'static str) -> RecordError {
    RecordError::Raw {
        rtype,
        data: rdata.join(" "),
        why,
    }
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// RFC 3597 §5: `\# length hex…` (the hex may be split in several tokens).
fn generic_rdata(rtype: RecordType, rdata: &[&str]) -> Result<Vec<u8>, RecordError> {
    let code = u16::from(rtype);
    // Meta types and the OPT pseudo-record never live in a zone (RFC 6895 §3.1).
    if code == 0 || code == 41 || (128..=255).contains(&code) {
        return Err(RecordError::Unsupported(rtype));
    }
    let err = |why| raw_err(rtype, rdata, why);
    let len: usize = rdata
        .get(1)
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| err("the generic form is \\# <length> <hex>"))?;
    let bytes = hex(&rdata[2..].concat()).ok_or_else(|| err("the data is not hexadecimal"))?;
    if bytes.len() != len || len > usize::from(u16::MAX) {
        return Err(err("the length does not match the hexadecimal data"));
    }
    Ok(bytes)
}

/// RDATA kept as bytes (types hickory-proto does not read, or reads only with DNSSEC on).
fn opaque(rtype: RecordType, bytes: Vec<u8>) -> RData {
    // An empty RDATA is allowed (RFC 3597 §5: `\# 0`); hickory-proto's `NULL::with`
    // asserts that it is not.
    let rdata = if bytes.is_empty() {
        NULL::new()
    } else {
        NULL::with(bytes)
    };
    RData::Unknown { code: rtype, rdata }
}

/// RFC 3597 §5: the generic form, read as its type where the type is known (an RR of a
/// known type in the generic form is processed as that type), as bytes otherwise.
fn generic_record_data(rtype: RecordType, rdata: &[&str]) -> Result<RData, RecordError> {
    let bytes = generic_rdata(rtype, rdata)?;
    let err = |why| raw_err(rtype, rdata, why);
    match rtype {
        RecordType::DNAME if !is_uncompressed_name(&bytes) => {
            return Err(err("the data is not one uncompressed domain name"));
        }
        // RFC 4034 §5.1: key tag, algorithm, digest type, digest.
        RecordType::DS if bytes.len() < 4 => {
            return Err(err("the data is shorter than a DS record's fixed fields"));
        }
        RecordType::DNAME | RecordType::DS => return Ok(opaque(rtype, bytes)),
        _ => {}
    }
    let len = u16::try_from(bytes.len()).map_err(|_| err("longer than 65535 bytes"))?;
    let mut dec = BinDecoder::new(&bytes);
    match RData::read(&mut dec, rtype, Restrict::new(len)) {
        // Read as bytes: keep the empty RDATA out of `NULL::with`.
        Ok(RData::Unknown { .. }) => Ok(opaque(rtype, bytes)),
        Ok(data) => Ok(data),
        Err(_) => Err(err("the data is not RDATA of this type")),
    }
}

/// A domain name in wire form, without compression, filling `wire` exactly.
fn is_uncompressed_name(wire: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&len) = wire.get(i) {
        if len == 0 {
            return i + 1 == wire.len() && wire.len() <= super::name::MAX_NAME;
        }
        if len > 63 {
            return false;
        }
        i += 1 + usize::from(len);
    }
    false
}

/// RFC 4034 §5.3: `key-tag algorithm digest-type digest-hex…`.
fn ds_rdata(rdata: &[&str]) -> Result<Vec<u8>, RecordError> {
    let err = |why| raw_err(RecordType::DS, rdata, why);
    if rdata.len() < 4 {
        return Err(err("write key-tag algorithm digest-type digest"));
    }
    let tag: u16 = rdata[0].parse().map_err(|_| err("bad key tag"))?;
    let alg: u8 = rdata[1].parse().map_err(|_| err("bad algorithm number"))?;
    let dt: u8 = rdata[2].parse().map_err(|_| err("bad digest type"))?;
    let digest = hex(&rdata[3..].concat()).ok_or_else(|| err("the digest is not hexadecimal"))?;
    let mut out = tag.to_be_bytes().to_vec();
    out.push(alg);
    out.push(dt);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// RFC 6672 §2.1: one target name, uncompressed.
fn dname_rdata(rdata: &[&str], origin: &Name) -> Result<Vec<u8>, RecordError> {
    let err = |why| raw_err(RecordType::DNAME, rdata, why);
    let [t] = rdata else {
        return Err(err("write one target name"));
    };
    let mut n = if *t == "@" {
        origin.clone()
    } else {
        Name::parse(t, Some(origin)).map_err(|_| err("bad target name"))?
    };
    n.set_fqdn(true);
    n.to_bytes().map_err(|_| err("bad target name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::assert_has;

    fn read(text: &str) -> (Vec<SourcedRecord>, Problems) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("example.com.zone");
        std::fs::write(&p, text).unwrap();
        let mut problems = Problems::default();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let recs = read_zone_file(
            &p,
            &Name::from_str("example.com.").unwrap(),
            &root,
            &mut problems,
        );
        (recs, problems)
    }

    #[test]
    fn reads_entries_with_defaults_and_parens() {
        let (recs, problems) = read(
            "$TTL 300\n@ IN SOA ns1 hostmaster (\n  1 ; serial\n  7200 3600 1209600 60 )\n  NS ns1\nns1 600 A 192.0.2.1\nwww CNAME ns1\ntxt TXT \"a ; not a comment\" \"b\"\n",
        );
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[1].record.record_type(), RecordType::NS);
        assert_eq!(recs[1].record.name.to_string(), "example.com.");
        assert_eq!(recs[1].record.ttl, 300);
        assert_eq!(recs[2].record.ttl, 600);
        assert_eq!(recs[2].line, 6);
        assert_eq!(recs[3].record.data.to_string(), "ns1.example.com.");
        assert!(
            recs[4]
                .record
                .data
                .to_string()
                .contains("a ; not a comment")
        );
    }

    #[test]
    fn every_bad_line_is_reported() {
        let (recs, problems) =
            read("$TTL 300\nwww A 300.1.1.1\nok A 192.0.2.1\nx BOGUS 1\n$NOPE\n");
        assert_eq!(recs.len(), 1);
        problems.assert_has(
            3,
            &[
                "line 2: bad A record data",
                "line 4:",
                "line 5: unknown directive $NOPE",
            ],
        );
    }

    #[test]
    fn soa_without_any_ttl_uses_its_minimum() {
        // No $TTL and no TTL on the SOA: RFC 2308 §4 / BIND take the SOA MINIMUM, for the
        // SOA and for later records without a TTL; an explicit TTL still wins after that.
        let (recs, problems) = read(
            "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 120\n  NS ns1\nns1 30 A 192.0.2.1\nns2 A 192.0.2.2\n",
        );
        assert!(problems.is_empty(), "{problems}");
        let ttls: Vec<u32> = recs.iter().map(|r| r.record.ttl).collect();
        assert_eq!(ttls, [120, 120, 30, 30]);
        // With a $TTL, the SOA takes the $TTL as before.
        let (recs, problems) = read("$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 120\n");
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(recs[0].record.ttl, 300);
        // Any other first record without a TTL is still an error.
        let (_, problems) = read("www A 192.0.2.1\n");
        assert!(problems.to_string().contains("no TTL"), "{problems}");
    }

    #[test]
    fn generic_form_is_read_as_its_type() {
        let head = "$TTL 300\n";
        // Empty RDATA (RFC 3597 §5: `\# 0`) of an unknown type.
        let (recs, problems) = read(&format!("{head}e TYPE65281 \\# 0\n"));
        assert!(problems.is_empty(), "{problems}");
        match &recs[0].record.data {
            RData::Unknown { rdata, .. } => assert!(rdata.anything.is_empty()),
            other => panic!("{other:?}"),
        }
        // A known type in the generic form is that type: an NS names its target.
        let (recs, problems) = read(&format!("{head}sub NS \\# 5 036E733100\n"));
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(recs[0].record.data.to_string(), "ns1.");
        // An SOA takes its MINIMUM as TTL as in its own form.
        let (recs, problems) = read(&format!(
            "@ SOA \\# 22 00 00 {} 00000001 00000002 00000003 00000004 0000003C\n",
            ""
        ));
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(recs[0].record.ttl, 60);
        // RDATA that is not the type's is an error, not a record served malformed.
        for bad in [
            "@ SOA \\# 4 00000000",
            "mx MX \\# 1 00",
            "a A \\# 0",
            "a AAAA \\# 4 C0000201",
            "ns NS \\# 2 C000",
            "dn DNAME \\# 3 010203",
            "dn DNAME \\# 2 C000",
            "ds DS \\# 3 000102",
        ] {
            let (recs, problems) = read(&format!("{head}{bad}\n"));
            assert!(recs.is_empty(), "{bad}: {:?}", recs[0].record);
            let text = problems.to_string();
            assert!(text.contains("line 2: bad"), "{bad}: {text}");
        }
    }

    #[test]
    fn include_and_origin() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inc.db"), "host A 192.0.2.7\n").unwrap();
        let p = dir.path().join("example.com.zone");
        std::fs::write(
            &p,
            "$TTL 60\n$INCLUDE inc.db sub\n$ORIGIN other.example.com.\nx A 192.0.2.8\n",
        )
        .unwrap();
        let problems = read_in(dir.path(), &p).1;
        let recs = read_in(dir.path(), &p).0;
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(recs[0].record.name.to_string(), "host.sub.example.com.");
        assert!(!recs[0].quote);
        assert_eq!(recs[1].record.name.to_string(), "x.other.example.com.");
        assert!(recs[1].quote);
    }

    /// Reads `file` as the zone `example.com.` with `root` as zones.dir.
    fn read_in(root: &Path, file: &Path) -> (Vec<SourcedRecord>, Problems) {
        let mut problems = Problems::default();
        let root = std::fs::canonicalize(root).unwrap();
        let recs = read_zone_file(
            file,
            &Name::from_str("example.com.").unwrap(),
            &root,
            &mut problems,
        );
        (recs, problems)
    }

    const MARKER: &str = "SECRETMARKER7781";

    /// A file outside zones.dir is never read, however it is named: absolute, `..`, or a
    /// symlink inside zones.dir that points out; the message names the include as written
    /// (a line of the zone file) and never what the file holds.
    #[test]
    fn include_outside_the_zones_dir_is_refused_unread() {
        let (_top, zones, secret) = crate::zone::tests::zones_with_a_link_out(
            "secret.txt",
            &format!("{MARKER} A 192.0.2.1\nroot:{MARKER}:19000:0:99999:7:::\n"),
            "link.db",
        );
        for inc in [
            secret.display().to_string(),
            "../secret.txt".into(),
            "link.db".into(),
        ] {
            let p = zones.join("example.com.zone");
            std::fs::write(&p, format!("$TTL 60\n$INCLUDE {inc}\n")).unwrap();
            let (recs, problems) = read_in(&zones, &p);
            assert!(recs.is_empty(), "{inc}: {recs:?}");
            let text = problems.assert_has(
                1,
                &[
                    "example.com.zone: line 2: $INCLUDE",
                    "only files below zones.dir",
                ],
            );
            assert!(!text.contains(MARKER), "{text}");
        }
    }

    /// An included file's bad lines are reported by file and line, never quoted.
    #[test]
    fn problems_in_included_files_never_quote_the_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("inc.db"),
            format!(
                "{MARKER} A 300.1.1.1\nok A {MARKER}\nx {MARKER}\n$ORIGIN {MARKER}..\n${MARKER}\n$INCLUDE {MARKER}\n$INCLUDE ok.db {MARKER}..\nx 1{MARKER} A 192.0.2.1\nx TXT \"{MARKER}\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("ok.db"), "").unwrap();
        let p = dir.path().join("example.com.zone");
        std::fs::write(&p, "$TTL 60\n$INCLUDE inc.db\n").unwrap();
        let (_, problems) = read_in(dir.path(), &p);
        let text = problems.assert_has(
            10,
            &[
                "inc.db: line 1: bad A record data",
                "inc.db: line 6: $INCLUDE: cannot read it",
            ],
        );
        assert!(!text.contains(MARKER), "{text}");
        // The same lines in the zone file itself are quoted, as ever.
        std::fs::write(&p, format!("$TTL 60\nok A {MARKER}\n")).unwrap();
        let text = read_in(dir.path(), &p).1.to_string();
        assert!(text.contains(MARKER), "{text}");
    }

    /// A line break smuggled into a record's data (after a backslash, or in quotes,
    /// however the quotes are placed) is refused before the data reaches hickory-proto's
    /// parser, which would follow a `$INCLUDE` on the next line to any file.
    #[test]
    fn a_line_break_in_record_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret.txt");
        std::fs::write(&secret, format!("{MARKER} A 192.0.2.1\n")).unwrap();
        let s = secret.display();
        for data in [
            format!("a\\\n$INCLUDE {s}"),
            format!("a\\\r$INCLUDE {s}"),
            format!("\"b\n$INCLUDE {s}\n\""),
            format!("x\"b\n$INCLUDE {s}\n\""),
            format!("\"a\"b\"c\n$INCLUDE {s}\n\""),
        ] {
            let (recs, problems) = read(&format!("$TTL 60\nx TXT {data}\n"));
            assert!(recs.is_empty(), "{data:?}: {recs:?}");
            problems.assert_has(1, &["line 2: a line break inside the record's data"]);
        }
    }

    /// A file that includes itself 8 times (8⁸ reads if followed) fails at once: the
    /// loop is refused at each include.
    #[test]
    fn include_loop_fails_fast() {
        let dir = tempfile::tempdir().unwrap();
        let body = "$INCLUDE loop.inc\n".repeat(8) + ";\n";
        assert_eq!(body.len(), 146);
        std::fs::write(dir.path().join("loop.inc"), &body).unwrap();
        let p = dir.path().join("example.com.zone");
        std::fs::write(&p, "$TTL 60\n$INCLUDE loop.inc\n").unwrap();
        let t0 = std::time::Instant::now();
        let (_, problems) = read_in(dir.path(), &p);
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
        problems.assert_has(1, &["loop.inc: line 1: $INCLUDE: the file includes itself"]);
        // The zone file including itself.
        std::fs::write(&p, "$TTL 60\n$INCLUDE example.com.zone\n").unwrap();
        let text = read_in(dir.path(), &p).1.to_string();
        assert_has(
            &text,
            &["line 2: $INCLUDE example.com.zone: the file includes itself"],
        );
    }

    /// Distinct files each including the next 8 times (no loop, within the depth limit):
    /// the total is capped, so this fails at once instead of reading 8⁴ files.
    #[test]
    fn include_bomb_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..4 {
            let next = format!("$INCLUDE f{}.inc\n", i + 1).repeat(8);
            std::fs::write(dir.path().join(format!("f{i}.inc")), next).unwrap();
        }
        std::fs::write(dir.path().join("f4.inc"), "x A 192.0.2.1\n").unwrap();
        let p = dir.path().join("example.com.zone");
        std::fs::write(&p, "$TTL 60\n$INCLUDE f0.inc\n").unwrap();
        let t0 = std::time::Instant::now();
        let (recs, problems) = read_in(dir.path(), &p);
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
        problems.assert_has(1, &[&format!("more than {MAX_INCLUDES} $INCLUDEs")]);
        assert!(recs.len() <= MAX_INCLUDES, "{}", recs.len());
        // A chain deeper than the limit.
        for i in 0..12 {
            std::fs::write(
                dir.path().join(format!("d{i}.inc")),
                format!("$INCLUDE d{}.inc\n", i + 1),
            )
            .unwrap();
        }
        std::fs::write(&p, "$TTL 60\n$INCLUDE d0.inc\n").unwrap();
        let text = read_in(dir.path(), &p).1.to_string();
        assert_has(
            &text,
            &[&format!(
                "d7.inc: line 1: $INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}"
            )],
        );
    }

    #[test]
    fn include_of_a_directory_or_fifo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let p = dir.path().join("example.com.zone");
        for inc in ["sub", "fifo"] {
            std::fs::write(&p, format!("$TTL 60\n$INCLUDE {inc}\n")).unwrap();
            let text = read_in(dir.path(), &p).1.to_string();
            assert!(text.contains("not a regular file"), "{text}");
        }
    }

    /// A zone file that fails on every line lists the first problems and counts the rest.
    #[test]
    fn problems_are_capped() {
        let (_, problems) = read(&"www A 300.1.1.1\n".repeat(1000));
        assert_eq!(problems.len(), 1000);
        assert_eq!(problems.0.len(), crate::config::MAX_PROBLEMS);
        let text = problems.to_string();
        assert!(text.ends_with("and 900 more problem(s), not listed (only the first 100 are); fix these and check again"), "{text}");
    }
}

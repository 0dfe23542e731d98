//! Host names as a browser puts them in `Host`: the `admin.allowed_hosts` entries the
//! config checks and the admin listener compares requests with.

/// One `admin.allowed_hosts` entry: a host name or address, with an optional port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHost {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

/// Why an `admin.allowed_hosts` entry is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{entry:?} {why}; write a host name or address as a browser puts it in Host, \
     optionally with a port, e.g. \"signpost.example.net\" or \"signpost.example.net:8053\""
)]
pub struct BadHost {
    entry: String,
    why: &'static str,
}

impl AllowedHost {
    /// Parses `admin.example.net`, `admin.example.net:8443`, `192.0.2.10` or
    /// `[2001:db8::10]:8053`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Self, BadHost> {
        let bad = |why| BadHost {
            entry: s.to_owned(),
            why,
        };
        if s.contains("://") || s.contains('/') {
            return Err(bad("is not a host name (no scheme or path)"));
        }
        let (host, port) = split_host(s).ok_or_else(|| bad("is not a host name"))?;
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
        {
            return Err(bad("is not a host name"));
        }
        Ok(Self { host, port })
    }
}

/// Splits `Host` (or an allowed-hosts entry) into its lowercase host, without a trailing
/// dot or IPv6 brackets, and its port. `None` when it cannot be a host.
pub(crate) fn split_host(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (h, port)
    } else {
        match s.rsplit_once(':') {
            // A bare IPv6 address has several colons and no port.
            Some((h, p)) if !h.contains(':') => (h, Some(p.parse().ok()?)),
            _ => (s, None),
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    Some((host, port))
}

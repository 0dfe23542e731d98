//! Who may talk to the admin listener through a browser: the `Host` a request names, the
//! `Origin` of a mutating call and its `Content-Type`, and the headers every answer
//! carries so that no other site can frame the page or reuse an answer.
//!
//! A bearer token protects mutations only when one is configured; without one (the
//! loopback default) any page an operator's browser opens could otherwise drain a site
//! with a `no-cors` fetch or a form, or read the status through DNS rebinding
//! (`docs/security.md`, "Admin API").

use std::net::{IpAddr, SocketAddr};

use hyper::HeaderMap;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, ORIGIN};

use crate::base::host::split_host;
pub use crate::base::host::{AllowedHost, BadHost};

fn same_ip(a: &str, b: IpAddr) -> bool {
    a.parse::<IpAddr>()
        .is_ok_and(|a| a.to_canonical() == b.to_canonical())
}

/// Why a request was refused before it was routed (403, or 415 for a content type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub message: String,
}

fn refused(status: u16, message: String) -> Refused {
    Refused { status, message }
}

/// Checks `Host`: the address the client connected to (`local`) or `localhost`, with no
/// port or `local`'s, or an `admin.allowed_hosts` entry (any port unless the entry names
/// one). A request without `Host` (HTTP/1.0, no browser) passes.
pub fn check_host(
    headers: &HeaderMap,
    local: SocketAddr,
    allowed: &[AllowedHost],
) -> Result<(), Refused> {
    let Some(value) = headers.get(HOST) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let foreign = || {
        refused(
            403,
            format!(
                "Host {text:?} is not a name of this admin listener; use {local} or localhost:{}, \
                 or add the name to admin.allowed_hosts",
                local.port()
            ),
        )
    };
    let (host, port) = split_host(text).ok_or_else(foreign)?;
    let own = host == "localhost" || same_ip(&host, local.ip());
    if own && port.is_none_or(|p| p == local.port()) {
        return Ok(());
    }
    let listed = allowed.iter().any(|a| {
        let name = a.host == host || a.host.parse::<IpAddr>().is_ok_and(|ip| same_ip(&host, ip));
        name && a.port.is_none_or(|p| port == Some(p))
    });
    if listed { Ok(()) } else { Err(foreign()) }
}

/// Checks where a mutating call comes from: an `Origin` must be this listener's own
/// (`http://` or `https://` and the request's `Host`, which [`check_host`] accepted), and
/// a browser's `Sec-Fetch-Site` must be `same-origin` (or `none`: typed by the user).
pub fn check_origin(headers: &HeaderMap) -> Result<(), Refused> {
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let own = ["http://", "https://"].iter().any(|scheme| {
            origin
                .strip_prefix(scheme)
                .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host))
        });
        if !own {
            return Err(refused(
                403,
                format!(
                    "cross-origin request refused: Origin {origin:?} is not this admin \
                     listener's own (http://{host}); drain from the status page served here, \
                     the CLI, or a client that sends no Origin"
                ),
            ));
        }
    }
    let site = HeaderName::from_static("sec-fetch-site");
    if let Some(s) = headers.get(&site).and_then(|s| s.to_str().ok())
        && !matches!(s, "same-origin" | "none")
    {
        return Err(refused(
            403,
            format!("cross-site request refused (Sec-Fetch-Site: {s})"),
        ));
    }
    Ok(())
}

/// Checks that a mutating call declares its body `application/json`, which a cross-site
/// form or `no-cors` fetch cannot send (it would need a CORS preflight, which is never
/// answered).
pub fn check_json(headers: &HeaderMap) -> Result<(), Refused> {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        let given = headers
            .get(CONTENT_TYPE)
            .map(|c| format!("{:?}", c.to_str().unwrap_or("?")))
            .unwrap_or_else(|| "none".to_owned());
        return Err(refused(
            415,
            format!(
                "mutating calls need Content-Type: application/json (got {given}); \
                 e.g. curl -H 'Content-Type: application/json'"
            ),
        ));
    }
    Ok(())
}

/// `Content-Security-Policy` of the status page: its own inline style and script, calls
/// to this origin only, and no framing.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";
/// `Content-Security-Policy` of every other answer (JSON, text, metrics).
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the headers every answer carries: no framing, no content sniffing, no referrer.
pub fn secure_headers(headers: &mut HeaderMap) {
    let html = headers
        .get(CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("text/html"));
    let csp = if html { PAGE_CSP } else { API_CSP };
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(csp),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn host(h: &str, local: &str, allowed: &[&str]) -> bool {
        let allowed: Vec<AllowedHost> = allowed
            .iter()
            .map(|a| AllowedHost::parse(a).unwrap())
            .collect();
        check_host(&headers(&[("host", h)]), local.parse().unwrap(), &allowed).is_ok()
    }

    #[test]
    fn hosts_the_listener_answers_to() {
        let l = "127.0.0.1:8053";
        assert!(host("127.0.0.1:8053", l, &[]));
        assert!(host("127.0.0.1", l, &[]));
        assert!(host("localhost:8053", l, &[]));
        assert!(host("LocalHost.:8053", l, &[]));
        assert!(!host("localhost:9999", l, &[]));
        assert!(!host("attacker.example:8053", l, &[]));
        assert!(!host("attacker.example", l, &[]));
        assert!(!host("127.0.0.2:8053", l, &[]));
        assert!(!host("", l, &[]));
        assert!(!host("127.0.0.1:80:80", l, &[]));
        assert!(host("[::1]:8053", "[::1]:8053", &[]));
        assert!(host("127.0.0.1:8053", "[::ffff:127.0.0.1]:8053", &[]));
        assert!(!host("[::2]:8053", "[::1]:8053", &[]));
        // Configured names: any port unless the entry names one.
        let names = [
            "signpost.example.net",
            "ops.example.net:8443",
            "[2001:db8::1]",
        ];
        assert!(host("signpost.example.net", l, &names));
        assert!(host("Signpost.Example.Net:443", l, &names));
        assert!(host("ops.example.net:8443", l, &names));
        assert!(!host("ops.example.net", l, &names));
        assert!(!host("ops.example.net:8053", l, &names));
        assert!(host("[2001:db8::1]:8053", l, &names));
        assert!(!host("signpost.example.net.attacker.example", l, &names));
        // No Host at all (HTTP/1.0): not a browser.
        assert!(check_host(&HeaderMap::new(), l.parse().unwrap(), &[]).is_ok());
        let e = check_host(
            &headers(&[("host", "attacker.example:8053")]),
            l.parse().unwrap(),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.status, 403);
        assert!(e.message.contains("admin.allowed_hosts"), "{}", e.message);
    }

    #[test]
    fn allowed_hosts_entries() {
        assert!(AllowedHost::parse("signpost.example.net").is_ok());
        assert!(AllowedHost::parse("192.0.2.1:8053").is_ok());
        assert!(AllowedHost::parse("[2001:db8::1]:8053").is_ok());
        for bad in [
            "",
            "http://x.example",
            "x.example/",
            "x.example:port",
            "a b",
        ] {
            let e = AllowedHost::parse(bad).unwrap_err().to_string();
            assert!(e.contains("e.g."), "{bad}: {e}");
        }
    }

    fn check_mutation(h: &HeaderMap) -> Result<(), Refused> {
        check_origin(h).and_then(|()| check_json(h))
    }

    #[test]
    fn mutations_need_their_own_origin_and_json() {
        let json = ("content-type", "application/json");
        let h = ("host", "127.0.0.1:8053");
        assert!(check_mutation(&headers(&[h, json])).is_ok());
        assert!(
            check_mutation(&headers(&[
                h,
                ("content-type", "Application/JSON; charset=utf-8")
            ]))
            .is_ok()
        );
        assert!(check_mutation(&headers(&[h, json, ("origin", "http://127.0.0.1:8053")])).is_ok());
        assert!(check_mutation(&headers(&[h, json, ("sec-fetch-site", "same-origin")])).is_ok());
        for origin in [
            "http://attacker.example",
            "http://127.0.0.1:9999",
            "null",
            "http://127.0.0.1:8053.attacker.example",
        ] {
            let e = check_mutation(&headers(&[h, json, ("origin", origin)])).unwrap_err();
            assert_eq!(e.status, 403, "{origin}");
            assert!(e.message.contains("cross-origin"), "{}", e.message);
        }
        let e = check_mutation(&headers(&[h, json, ("sec-fetch-site", "cross-site")])).unwrap_err();
        assert_eq!(e.status, 403);
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            let e = check_mutation(&headers(&[h, ("content-type", ct)])).unwrap_err();
            assert_eq!(e.status, 415, "{ct}");
        }
        let e = check_mutation(&headers(&[h])).unwrap_err();
        assert_eq!(e.status, 415);
        assert!(e.message.contains("got none"), "{}", e.message);
    }
}

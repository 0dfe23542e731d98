//! Domain names in lowercase wire form, the key of every name lookup.

use hickory_proto::rr::Name;

/// Longest wire-format name (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;

/// The lowercase wire form of `name` (always fully qualified).
pub fn lower_wire(name: &Name) -> Box<[u8]> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out.into_boxed_slice()
}

/// Offsets of the label starts of a wire name, from the name itself down to (not
/// including) the root label: `3www7example3com0` gives `[0, 4, 12]`.
pub fn label_starts(wire: &[u8], out: &mut [u8; 128]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < wire.len() && wire[i] != 0 && n < out.len() {
        out[n] = i as u8;
        n += 1;
        i += 1 + wire[i] as usize;
    }
    n
}

/// The suffix of `wire` that starts after its first label (the parent name), or `None`
/// for the root.
pub fn parent(wire: &[u8]) -> Option<&[u8]> {
    let len = *wire.first()? as usize;
    if len == 0 { None } else { wire.get(1 + len..) }
}

/// True when `name` is `zone` or below it (both lowercase wire names).
pub fn is_within(name: &[u8], zone: &[u8]) -> bool {
    if name.len() < zone.len() {
        return false;
    }
    let mut rest = name;
    loop {
        if rest.len() == zone.len() {
            return rest == zone;
        }
        match parent(rest) {
            Some(p) => rest = p,
            None => return false,
        }
    }
}

/// Number of labels (the root has none).
pub fn label_count(wire: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = wire;
    while let Some(p) = parent(rest) {
        n += 1;
        rest = p;
    }
    n
}

/// Text form of a wire name, for logs and errors (`www.example.`).
pub fn to_text(wire: &[u8]) -> String {
    let mut s = String::new();
    let mut i = 0;
    while i < wire.len() && wire[i] != 0 {
        let len = wire[i] as usize;
        for &b in wire.get(i + 1..i + 1 + len).unwrap_or(&[]) {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*' {
                s.push(b as char);
            } else {
                s.push_str(&format!("\\{b:03}"));
            }
        }
        s.push('.');
        i += 1 + len;
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn wire_helpers() {
        let w = lower_wire(&Name::from_str("WWW.Example.COM.").unwrap());
        assert_eq!(&*w, b"\x03www\x07example\x03com\x00");
        let mut starts = [0u8; 128];
        assert_eq!(label_starts(&w, &mut starts), 3);
        assert_eq!(&starts[..3], &[0, 4, 12]);
        assert_eq!(parent(&w).unwrap(), b"\x07example\x03com\x00");
        assert!(is_within(&w, b"\x03com\x00"));
        assert!(is_within(&w, b"\x00"));
        assert!(!is_within(b"\x03com\x00", &w));
        assert!(!is_within(&w, b"\x03org\x00"));
        assert_eq!(label_count(&w), 3);
        assert_eq!(to_text(&w), "www.example.com.");
    }
}

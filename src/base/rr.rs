//! Typed DNS numbers: record types and response codes are never bare `u16`s.

use std::fmt;

/// A record type (RFC 1035 §3.2.2 and later registrations). Any value is allowed (RFC
/// 3597); the constants name the ones signpost treats specially.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Rtype(pub u16);

impl Rtype {
    pub const A: Rtype = Rtype(1);
    pub const NS: Rtype = Rtype(2);
    pub const CNAME: Rtype = Rtype(5);
    pub const SOA: Rtype = Rtype(6);
    pub const PTR: Rtype = Rtype(12);
    pub const MX: Rtype = Rtype(15);
    pub const TXT: Rtype = Rtype(16);
    pub const AAAA: Rtype = Rtype(28);
    pub const SRV: Rtype = Rtype(33);
    pub const DNAME: Rtype = Rtype(39);
    pub const OPT: Rtype = Rtype(41);
    pub const DS: Rtype = Rtype(43);
    pub const CAA: Rtype = Rtype(257);
    pub const TSIG: Rtype = Rtype(250);
    pub const IXFR: Rtype = Rtype(251);
    pub const AXFR: Rtype = Rtype(252);
    pub const MAILB: Rtype = Rtype(253);
    pub const MAILA: Rtype = Rtype(254);
    pub const ANY: Rtype = Rtype(255);

    /// The mnemonic for the types metrics and logs name, else `None`.
    pub fn mnemonic(self) -> Option<&'static str> {
        Some(match self {
            Rtype::A => "A",
            Rtype::NS => "NS",
            Rtype::CNAME => "CNAME",
            Rtype::SOA => "SOA",
            Rtype::PTR => "PTR",
            Rtype::MX => "MX",
            Rtype::TXT => "TXT",
            Rtype::AAAA => "AAAA",
            Rtype::SRV => "SRV",
            Rtype::OPT => "OPT",
            Rtype::DS => "DS",
            Rtype::CAA => "CAA",
            Rtype::IXFR => "IXFR",
            Rtype::AXFR => "AXFR",
            Rtype::MAILB => "MAILB",
            Rtype::MAILA => "MAILA",
            Rtype::ANY => "ANY",
            _ => return None,
        })
    }

    /// The wire value.
    pub fn to_be_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

impl fmt::Debug for Rtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Rtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mnemonic() {
            Some(m) => f.write_str(m),
            None => write!(f, "TYPE{}", self.0),
        }
    }
}

impl From<u16> for Rtype {
    fn from(v: u16) -> Self {
        Rtype(v)
    }
}

/// A response code, including the extended ones carried partly in OPT (RFC 6891).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Rcode(pub u16);

impl Rcode {
    pub const NOERROR: Rcode = Rcode(0);
    pub const FORMERR: Rcode = Rcode(1);
    pub const SERVFAIL: Rcode = Rcode(2);
    pub const NXDOMAIN: Rcode = Rcode(3);
    pub const NOTIMP: Rcode = Rcode(4);
    pub const REFUSED: Rcode = Rcode(5);
    pub const YXDOMAIN: Rcode = Rcode(6);
    pub const BADVERS: Rcode = Rcode(16);

    pub fn mnemonic(self) -> Option<&'static str> {
        Some(match self {
            Rcode::NOERROR => "NOERROR",
            Rcode::FORMERR => "FORMERR",
            Rcode::SERVFAIL => "SERVFAIL",
            Rcode::NXDOMAIN => "NXDOMAIN",
            Rcode::NOTIMP => "NOTIMP",
            Rcode::REFUSED => "REFUSED",
            Rcode::BADVERS => "BADVERS",
            _ => return None,
        })
    }

    /// The low four bits, as the header carries them.
    pub fn header_bits(self) -> u8 {
        (self.0 & 0x0f) as u8
    }

    /// The high eight bits, as OPT's extended RCODE carries them.
    pub fn extended_bits(self) -> u8 {
        (self.0 >> 4) as u8
    }
}

impl fmt::Debug for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mnemonic() {
            Some(m) => f.write_str(m),
            None => write!(f, "RCODE{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(Rtype::AAAA.to_string(), "AAAA");
        assert_eq!(Rtype(65280).to_string(), "TYPE65280");
        assert_eq!(Rcode::BADVERS.header_bits(), 0);
        assert_eq!(Rcode::BADVERS.extended_bits(), 1);
        assert_eq!(Rcode(3841).to_string(), "RCODE3841");
    }
}

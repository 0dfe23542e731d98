//! Typed DNS numbers: record types and response codes are never bare `u16`s.

use std::fmt;

/// A DNS number type: a `u16` newtype, its named constants, the mnemonics that metrics
/// and logs use (a constant without one prints as `$unknown` and the number), the wire
/// value and `Debug`/`Display` by mnemonic.
macro_rules! dns_numbers {
    (
        $(#[$meta:meta])*
        $ty:ident, unknown $unknown:literal {
            $($(#[$cmeta:meta])* $name:ident = $value:literal $(=> $mnemonic:literal)?,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $ty(pub u16);

        impl $ty {
            $($(#[$cmeta])* pub const $name: $ty = $ty($value);)*

            /// The mnemonic metrics and logs use, else `None`.
            pub fn mnemonic(self) -> Option<&'static str> {
                match self.0 {
                    $($($value => Some($mnemonic),)?)*
                    _ => None,
                }
            }

            /// The wire value.
            pub fn to_be_bytes(self) -> [u8; 2] {
                self.0.to_be_bytes()
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.mnemonic() {
                    Some(m) => f.write_str(m),
                    None => write!(f, concat!($unknown, "{}"), self.0),
                }
            }
        }

        impl From<u16> for $ty {
            fn from(v: u16) -> Self {
                $ty(v)
            }
        }
    };
}

dns_numbers! {
    /// A record type (RFC 1035 §3.2.2 and later registrations). Any value is allowed (RFC
    /// 3597); the constants name the ones signpost treats specially.
    Rtype, unknown "TYPE" {
        A = 1 => "A",
        NS = 2 => "NS",
        CNAME = 5 => "CNAME",
        SOA = 6 => "SOA",
        PTR = 12 => "PTR",
        MX = 15 => "MX",
        TXT = 16 => "TXT",
        AAAA = 28 => "AAAA",
        SRV = 33 => "SRV",
        DNAME = 39,
        OPT = 41 => "OPT",
        DS = 43 => "DS",
        CAA = 257 => "CAA",
        TSIG = 250,
        IXFR = 251 => "IXFR",
        AXFR = 252 => "AXFR",
        MAILB = 253 => "MAILB",
        MAILA = 254 => "MAILA",
        ANY = 255 => "ANY",
    }
}

dns_numbers! {
    /// A response code, including the extended ones carried partly in OPT (RFC 6891).
    Rcode, unknown "RCODE" {
        NOERROR = 0 => "NOERROR",
        FORMERR = 1 => "FORMERR",
        SERVFAIL = 2 => "SERVFAIL",
        NXDOMAIN = 3 => "NXDOMAIN",
        NOTIMP = 4 => "NOTIMP",
        REFUSED = 5 => "REFUSED",
        YXDOMAIN = 6,
        BADVERS = 16 => "BADVERS",
    }
}

impl Rcode {
    /// The low four bits, as the header carries them.
    pub fn header_bits(self) -> u8 {
        (self.0 & 0x0f) as u8
    }

    /// The high eight bits, as OPT's extended RCODE carries them.
    pub fn extended_bits(self) -> u8 {
        (self.0 >> 4) as u8
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

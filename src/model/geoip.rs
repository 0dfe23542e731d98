//! Where a client is, in the words `regions` uses: a configured `[geo.regions]` name, an
//! ISO 3166 alpha-2 country, a continent, or `WORLD`. Countries and continents come from a
//! MaxMind DB (`geo.mmdb`), read whole into memory at load and looked up without
//! allocating.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{PathElement, Reader};

/// One entry of an endpoint's `regions` (or a row of a latency table), compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GeoKey {
    /// A `[geo.regions]` name: index into `Geo::region_names`.
    Region(u32),
    /// An ISO 3166 alpha-2 country code, upper case.
    Country([u8; 2]),
    /// A continent code (AF AN AS EU NA OC SA), upper case.
    Continent([u8; 2]),
    /// Every client.
    World,
}

impl GeoKey {
    /// Parses a `regions` entry against the configured region names (sorted). Two-letter
    /// codes are case-insensitive; AS, NA and SA are continents when written bare, so
    /// American Samoa, Namibia and Saudi Arabia are written `country:AS`, `country:NA`,
    /// `country:SA` (`continent:XX` is also accepted).
    pub fn parse(text: &str, region_names: &[String]) -> Option<GeoKey> {
        if let Ok(i) = region_names.binary_search_by(|n| n.as_str().cmp(text)) {
            return Some(GeoKey::Region(i as u32));
        }
        let upper = text.trim().to_ascii_uppercase();
        if upper == "WORLD" {
            return Some(GeoKey::World);
        }
        if let Some(c) = upper.strip_prefix("COUNTRY:") {
            return code(c).filter(is_country).map(GeoKey::Country);
        }
        if let Some(c) = upper.strip_prefix("CONTINENT:") {
            return code(c).filter(is_continent).map(GeoKey::Continent);
        }
        let c = code(&upper)?;
        if is_continent(&c) {
            Some(GeoKey::Continent(c))
        } else if is_country(&c) {
            Some(GeoKey::Country(c))
        } else {
            None
        }
    }

    /// How specific the key is: region 3, country 2, continent 1, WORLD 0.
    pub fn rank(self) -> u8 {
        match self {
            GeoKey::Region(_) => 3,
            GeoKey::Country(_) => 2,
            GeoKey::Continent(_) => 1,
            GeoKey::World => 0,
        }
    }

    /// The key as an operator writes it.
    pub fn display<'a>(&self, region_names: &'a [String]) -> KeyText<'a> {
        KeyText(*self, region_names)
    }
}

/// `Display` for a [`GeoKey`] (region names need the model).
pub struct KeyText<'a>(GeoKey, &'a [String]);

impl fmt::Display for KeyText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            GeoKey::Region(i) => match self.1.get(i as usize) {
                Some(n) => write!(f, "region {n}"),
                None => write!(f, "region #{i}"),
            },
            GeoKey::Country(c) => write!(f, "country {}", code_str(&c)),
            GeoKey::Continent(c) => write!(f, "continent {}", code_str(&c)),
            GeoKey::World => f.write_str("WORLD"),
        }
    }
}

/// A two-letter code as text.
pub(crate) fn code_str(c: &[u8; 2]) -> &str {
    std::str::from_utf8(c).unwrap_or("??")
}

fn code(s: &str) -> Option<[u8; 2]> {
    let b = s.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_uppercase)).then(|| [b[0], b[1]])
}

/// Whether a region name would be read as a code (and so cannot name a `[geo.regions]`).
pub(crate) fn is_reserved_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper == "WORLD"
        || upper.starts_with("COUNTRY:")
        || upper.starts_with("CONTINENT:")
        || code(&upper).is_some_and(|c| is_country(&c) || is_continent(&c))
}

const CONTINENTS: [&[u8; 2]; 7] = [b"AF", b"AN", b"AS", b"EU", b"NA", b"OC", b"SA"];

fn is_continent(c: &[u8; 2]) -> bool {
    CONTINENTS.contains(&c)
}

/// ISO 3166-1 alpha-2, the 249 assigned codes, plus XK (Kosovo), which MaxMind uses.
const COUNTRIES: &str = "\
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY \
HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ OM \
PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

fn is_country(c: &[u8; 2]) -> bool {
    COUNTRIES.as_bytes().chunks(3).any(|x| x[..2] == c[..])
}

/// What the MaxMind DB says about one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GeoIpMatch {
    /// `country.iso_code`, else `registered_country.iso_code`.
    pub country: Option<[u8; 2]>,
    /// `continent.code`.
    pub continent: Option<[u8; 2]>,
    /// Prefix length of the database network holding the address (every address in it
    /// has the same record), whether or not the record exists.
    pub prefix: u8,
}

/// A MaxMind DB (GeoLite2-Country, GeoIP2-Country or -City), in memory.
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
    pub path: PathBuf,
}

impl fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoIp")
            .field("path", &self.path)
            .field("database_type", &self.reader.metadata().database_type)
            .finish()
    }
}

/// `geo.mmdb` cannot serve: missing, unreadable or not a MaxMind DB.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the MaxMind DB {} ({source}); fix the path (relative paths start at the working directory) or remove geo.mmdb",
    path.display()
)]
pub(crate) struct GeoIpError {
    pub path: PathBuf,
    source: maxminddb::MaxMindDbError,
}

const COUNTRY: [PathElement<'static>; 2] =
    [PathElement::Key("country"), PathElement::Key("iso_code")];
const REGISTERED: [PathElement<'static>; 2] = [
    PathElement::Key("registered_country"),
    PathElement::Key("iso_code"),
];
const CONTINENT: [PathElement<'static>; 2] =
    [PathElement::Key("continent"), PathElement::Key("code")];

impl GeoIp {
    /// Reads the whole database; the error says what is wrong in words for `signpost check`.
    pub(crate) fn open(path: &Path) -> Result<GeoIp, GeoIpError> {
        let fail = |source| GeoIpError {
            path: path.to_owned(),
            source,
        };
        let reader = Reader::open_readfile(path).map_err(fail)?;
        let probe: IpAddr = [8, 8, 8, 8].into();
        reader.lookup(probe).map_err(fail)?;
        Ok(GeoIp {
            reader,
            path: path.to_path_buf(),
        })
    }

    /// Country, continent and network prefix of `addr`; `None` when the database cannot
    /// answer for the address family (an IPv6 address in an IPv4-only database).
    pub fn lookup(&self, addr: IpAddr) -> Option<GeoIpMatch> {
        let r = self.reader.lookup(addr).ok()?;
        let prefix = r.network().map_or(0, |n| n.prefix());
        let two = |p: &[PathElement<'_>]| -> Option<[u8; 2]> {
            let s: &str = r.decode_path(p).ok()??;
            code(s)
        };
        Some(GeoIpMatch {
            country: two(&COUNTRY).or_else(|| two(&REGISTERED)),
            continent: two(&CONTINENT),
            prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["corp-amer".into(), "corp-emea".into()]
    }

    #[test]
    fn parses_every_kind_of_region() {
        let n = names();
        let cases: &[(&str, Option<GeoKey>)] = &[
            ("corp-emea", Some(GeoKey::Region(1))),
            ("corp-amer", Some(GeoKey::Region(0))),
            ("US", Some(GeoKey::Country(*b"US"))),
            ("de", Some(GeoKey::Country(*b"DE"))),
            ("EU", Some(GeoKey::Continent(*b"EU"))),
            ("NA", Some(GeoKey::Continent(*b"NA"))),
            ("country:NA", Some(GeoKey::Country(*b"NA"))),
            ("continent:eu", Some(GeoKey::Continent(*b"EU"))),
            ("country:EU", None),
            ("continent:US", None),
            ("WORLD", Some(GeoKey::World)),
            ("world", Some(GeoKey::World)),
            ("XX", None),
            ("USA", None),
            ("corp-apac", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(GeoKey::parse(text, &n), *want, "{text:?}");
        }
    }

    #[test]
    fn country_table_has_the_assigned_codes() {
        assert_eq!(COUNTRIES.split(' ').count(), 250);
        assert!(COUNTRIES.split(' ').all(|c| c.len() == 2));
        let mut sorted: Vec<&str> = COUNTRIES.split(' ').collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 250);
    }

    #[test]
    fn codes_are_reserved_as_region_names() {
        for name in ["EU", "us", "World", "country:x"] {
            assert!(is_reserved_name(name), "{name}");
        }
        for name in ["corp-emea", "europe", "USA"] {
            assert!(!is_reserved_name(name), "{name}");
        }
    }

    #[test]
    fn reads_maxminds_test_database() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/geoip/GeoLite2-Country-Test.mmdb");
        let db = GeoIp::open(&path).unwrap();
        let m = db.lookup("81.2.69.142".parse().unwrap()).unwrap();
        assert_eq!(m.country, Some(*b"GB"));
        assert_eq!(m.continent, Some(*b"EU"));
        assert!((1..=32).contains(&m.prefix), "{m:?}");
        let m = db.lookup("2001:218::1".parse().unwrap()).unwrap();
        assert_eq!(m.country, Some(*b"JP"));
        assert_eq!(m.continent, Some(*b"AS"));
        let m = db.lookup("10.1.2.3".parse().unwrap()).unwrap();
        assert_eq!(m.country, None);
        let err = GeoIp::open(Path::new("/nonexistent.mmdb")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read the MaxMind DB /nonexistent.mmdb ("),
            "{err}"
        );
    }
}

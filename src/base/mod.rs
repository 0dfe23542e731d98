//! The shared vocabulary at the bottom of signpost's layers: every module may use it, and
//! it uses no other module of the crate.
//!
//! - [`rr`]: typed record types ([`Rtype`]) and response codes ([`Rcode`]);
//! - [`status`]: an endpoint's [`Status`];
//! - [`host`]: `admin.allowed_hosts` entries and `Host` headers, parsed;
//! - [`kinds`]: the small enums a config chooses between and the rest of signpost acts on
//!   (routing [`Method`], [`AllDown`] behaviour, probe [`Protocol`], DNS [`Transport`]);
//! - [`name`]: profile names as operators write them, normalised as DNS matches them;
//! - [`tls`]: loading trusted roots for HTTPS probes;
//! - [`time`]: timestamps as signpost writes them in files, logs and the API;
//! - [`state`]: files in the state directory, read whole and written atomically;
//! - [`net`]: accepting TCP connections through transient errors.

pub(crate) mod host;
pub(crate) mod kinds;
pub(crate) mod name;
pub(crate) mod net;
pub(crate) mod rr;
pub(crate) mod state;
pub(crate) mod status;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod time;
pub(crate) mod tls;

pub use kinds::{AllDown, Method, Protocol, Transport};
pub use name::normalize_name;
pub use rr::{Rcode, Rtype};
pub use status::Status;
pub use time::{MAX_RAMP_MS, MAX_TIME_MS, rfc3339, time_of_ms};
pub use tls::{TlsError, load_roots};

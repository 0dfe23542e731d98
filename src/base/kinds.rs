//! The small enums a config chooses between and the rest of signpost acts on. They live
//! here, below the config, so that routing, probing and metrics use them without
//! depending on how the config file is read.

use serde::{Deserialize, Serialize};

/// A profile's routing method (DESIGN.md, "Routing methods").
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Priority,
    #[default]
    Weighted,
    Performance,
    Geographic,
    Multivalue,
    Subnet,
}

/// What a profile answers when no endpoint is eligible.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AllDown {
    /// As if every enabled endpoint were Online (Traffic Manager's behaviour).
    #[default]
    ServeAll,
    Nodata,
    Servfail,
}

/// How a monitor probes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Http,
    Https,
    Tcp,
}

/// How a query arrived; UDP answers are limited in size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

//! signpost: a self-hosted, health-probing global traffic director.
//!
//! An authoritative DNS server that probes every site's ingress and answers for an
//! application name with the records of the sites that are healthy. See `DESIGN.md` in
//! the shared docs and `README.md` for the contract; the layout follows it:
//!
//! - [`config`]: the config file, its validation and error reporting;
//! - [`zone`]: RFC 1035 zone files, indexed for lookup;
//! - [`snapshot`]: the one immutable view the DNS path reads;
//! - [`dns`]: the query path (wire parsing, answers, UDP and TCP servers);
//! - [`health`]: probes, hysteresis and the probe scheduler;
//! - [`publisher`]: the single writer that turns probe results into snapshots.

pub mod admin;
pub mod app;
pub mod base;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dns;
pub mod drain;
pub mod health;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod publisher;
pub mod snapshot;
pub mod status;
pub mod zone;

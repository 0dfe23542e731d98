//! signpost: a self-hosted, health-probing global traffic director.
//!
//! An authoritative DNS server that probes every site's ingress and answers for an
//! application name with the records of the sites that are healthy. See `DESIGN.md` in
//! the shared docs and `README.md` for the contract.
//!
//! The modules form layers with no import cycle: each uses only the layers below it
//! (`python3 ../shared/tools/modgraph.py src` prints the graph). From the bottom:
//!
//! 1. **Vocabulary**: [`base`] (typed `Rtype`/`Rcode`, `Status`, routing and probe kinds,
//!    names, TLS roots, timestamps) and [`cluster`], the gossip engine (chitchat over
//!    sealed UDP, drain records, health views), which uses nothing else of the crate.
//! 2. **Inputs**: [`config`] (the file, its validation and errors), then [`zone`] (zone
//!    files, indexed for lookup).
//! 3. **The compiled model**: [`model`] (profiles, endpoints with pre-encoded answers,
//!    probe targets, lookup tables).
//! 4. **Health and drains**: [`health`] (probes, hysteresis, the scheduler) and [`drain`]
//!    (drain semantics, persistence, audit).
//! 5. **Pure rules**: [`status`] (the one endpoint-status rule, health-aware TTLs), the
//!    [`snapshot`] it builds, then [`policy`] (routing decisions on a snapshot) and
//!    [`metrics`].
//! 6. **The writer**: [`publisher`], an event loop around those rules; the only writer of
//!    the published snapshot.
//! 7. **Edges**: [`dns`] (wire format, answers, UDP and TCP servers), [`admin`] (HTTP
//!    API, status page, CLI client), [`app`] (loading, wiring, reloads) and [`cli`]; beside
//!    them `fuzzing`, the checks of the fuzz targets (`fuzz/`) and of their replay test.

pub mod admin;
pub mod app;
pub mod base;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dns;
pub mod drain;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod publisher;
pub mod snapshot;
pub mod status;
pub mod zone;

//! The JSON document of `GET /api/v1/explain` (the status document is in [`super::doc`]).

use serde_json::Value;

use super::{ApiError, query_pairs};
use crate::policy::{self, Client};
use crate::snapshot::Snapshot;

/// `GET /api/v1/explain?name=&type=A&client=10.1.2.3` (or `client=10.20.1.0/24`, an
/// ECS subnet): the decision trace and the answer DNS gives that client.
pub fn explain(snap: &Snapshot, query: &str) -> Result<Value, ApiError> {
    let mut name = None;
    let mut qtype = crate::base::Rtype::A;
    let mut client = None;
    for (k, v) in query_pairs(query) {
        match k.as_str() {
            "name" => name = Some(v),
            "type" => {
                qtype = policy::trace::qtype_from_str(&v).ok_or_else(|| {
                    ApiError::new(
                        400,
                        format!("type: {v:?} is not a record type, e.g. A or AAAA"),
                    )
                })?
            }
            "client" => {
                client = Some(
                    Client::parse(&v).map_err(|e| ApiError::new(400, format!("client: {e}")))?,
                )
            }
            other => {
                return Err(ApiError::new(
                    400,
                    format!("unknown parameter {other:?}; use name, type and client"),
                ));
            }
        }
    }
    let name = name.ok_or_else(|| {
        ApiError::new(
            400,
            "name is required, e.g. ?name=app.gslb.example&client=10.1.2.3",
        )
    })?;
    let client =
        client.ok_or_else(|| ApiError::new(400, "client is required, e.g. &client=10.1.2.3"))?;
    let trace = policy::trace::explain(snap, name.as_str().into(), qtype, client)
        .map_err(|e| ApiError::new(404, e.to_string()))?;
    serde_json::to_value(trace).map_err(|e| ApiError::new(500, e.to_string()))
}

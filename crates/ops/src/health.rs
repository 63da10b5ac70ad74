//! The service's own health, for operators: which schema the database has
//! against the one this build was made for.

use tenantry_db::{Compatibility, migrate};

use crate::views::{SchemaView, ServiceHealthView};
use crate::{Error, Operations};

/// The schema the database has, judged against this build's migrations
/// (the judgement `/readyz` makes, with the versions it keeps to the log).
pub async fn service(ops: &Operations) -> Result<ServiceHealthView, Error> {
    let state = ops.db.schema_state().await?;
    let build = migrate::embedded_versions();
    let (compatibility, mut pending, mut unknown, mut edited) =
        (state.compatibility(), Vec::new(), Vec::new(), Vec::new());
    let verdict = match compatibility {
        Compatibility::Current => "current",
        Compatibility::Newer { unknown: u } => {
            unknown = u;
            "newer"
        }
        Compatibility::Behind { missing } => {
            pending = missing;
            "behind"
        }
        Compatibility::Edited { versions } => {
            edited = versions;
            "edited"
        }
    };
    let servable = matches!(verdict, "current" | "newer");
    Ok(ServiceHealthView {
        status: if servable { "ok" } else { "degraded" },
        schema: SchemaView {
            database_version: state.applied.keys().next_back().cloned(),
            build_version: build.last().map(|v| (*v).to_owned()),
            compatibility: verdict,
            pending,
            unknown,
            edited,
        },
    })
}

//! `tenantry tenants import`: an export file into a new tenant, all or
//! nothing. The file must end with the export's `{"end": true, "rows": N}`
//! trailer and hold exactly N rows, so a truncated export is refused.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tenantry_core::{Name, Slug, TenantId};
use tenantry_db::{Db, DbError, ScopedFutureExt, queries};

use crate::settings::Settings;

struct Parsed {
    rows: Vec<(String, Value)>,
}

fn parse(reader: impl BufRead) -> anyhow::Result<Parsed> {
    let mut rows = Vec::new();
    let mut trailer = None;
    for (number, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("line {}: cannot read", number + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        if trailer.is_some() {
            bail!("line {}: data after the end trailer", number + 1);
        }
        let value: Value = serde_json::from_str(&line)
            .with_context(|| format!("line {}: not JSON", number + 1))?;
        if let Some(end) = value.get("end") {
            if end != &Value::Bool(true) {
                bail!("line {}: the export says it is incomplete", number + 1);
            }
            trailer = Some(
                value
                    .get("rows")
                    .and_then(Value::as_u64)
                    .context("trailer without rows")?,
            );
            continue;
        }
        let table = value
            .get("table")
            .and_then(Value::as_str)
            .with_context(|| format!("line {}: no table", number + 1))?
            .to_owned();
        let row = value
            .get("row")
            .cloned()
            .with_context(|| format!("line {}: no row", number + 1))?;
        rows.push((table, row));
    }
    match trailer {
        None => bail!("no end trailer: the export is truncated"),
        Some(n) if usize::try_from(n).ok() != Some(rows.len()) => {
            bail!("the trailer says {n} rows, the file has {}", rows.len())
        }
        Some(_) => Ok(Parsed { rows }),
    }
}

pub async fn run(
    settings: &Settings,
    file: &str,
    slug: &str,
    name: &str,
) -> anyhow::Result<ExitCode> {
    let slug = Slug::parse(slug).map_err(|e| anyhow::anyhow!("--slug: {e}"))?;
    let name = Name::parse(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let parsed = if file == "-" {
        parse(BufReader::new(std::io::stdin().lock()))?
    } else {
        parse(BufReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?,
        ))?
    };
    let limits = settings.quotas.default.clone();
    let id = TenantId::new();
    let db = Db::new(&settings.database)?;
    let (tenant, counts) = db
        .platform()
        .provision(id, |conn| {
            async move {
                let tenant =
                    queries::tenants::create(conn, id, slug.as_str(), name.as_str(), &limits)
                        .await?;
                let mut counts: BTreeMap<String, u64> = BTreeMap::new();
                for (table, row) in parsed.rows {
                    queries::export::import_row(conn, id, &table, row).await?;
                    *counts.entry(table).or_default() += 1;
                }
                queries::export::recompute_usage(conn, id).await?;
                queries::audit::record(
                    conn,
                    Some(id),
                    "cli:import",
                    "tenant.imported",
                    None,
                    Some(json!({ "slug": tenant.slug, "rows": counts })),
                    None,
                )
                .await?;
                Ok::<_, DbError>((tenant, counts))
            }
            .scope_boxed()
        })
        .await?;
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&json!({ "tenant": tenant, "rows": counts }))?
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_its_trailer_is_refused_as_truncated() {
        let file = r#"{"table":"users","row":{"id":"x"}}"#;
        assert!(parse(file.as_bytes()).is_err());
    }

    #[test]
    fn the_trailer_must_count_the_rows() {
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":true,\"rows\":2}\n";
        assert!(parse(file.as_bytes()).is_err());
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":true,\"rows\":1}\n";
        assert_eq!(parse(file.as_bytes()).unwrap().rows.len(), 1);
    }

    #[test]
    fn an_export_that_failed_midway_is_refused() {
        let file = "{\"table\":\"users\",\"row\":{}}\n{\"end\":false,\"error\":\"x\"}\n";
        assert!(parse(file.as_bytes()).is_err());
    }
}

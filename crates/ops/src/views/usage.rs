use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tenantry_core::TenantId;
use tenantry_db::queries::usage::Bucket;
use utoipa::ToSchema;

/// How the history is aggregated: `period` (as sampled, the `[usage]
/// interval`), `hour` or `day` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Period,
    Hour,
    Day,
}

impl Granularity {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Period => "period",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// An amount per quota resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageAmountsView {
    pub users: i64,
    pub api_keys: i64,
    pub clusters: i64,
    pub instances: i64,
    pub cpu_cores: i64,
    pub memory_gb: i64,
    pub storage_gb: i64,
}

/// One tenant's usage over one period of the report (a bucket of the
/// granularity): the usage at its end, the peak of its samples, and what
/// was provisioned and released during it (event-exact counters).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsagePeriodView {
    #[schema(value_type = uuid::Uuid)]
    pub tenant_id: TenantId,
    pub tenant_slug: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// How many sampled intervals the period aggregates.
    pub samples: i64,
    /// The usage at the end of the period (of its last sample).
    pub usage: UsageAmountsView,
    /// The highest sample in the period.
    pub peak: UsageAmountsView,
    pub provisioned: UsageAmountsView,
    pub released: UsageAmountsView,
}

impl UsagePeriodView {
    /// The bucket starting at `b.bucket_start`, `secs` long.
    #[must_use]
    pub fn new(b: Bucket, secs: i64) -> Self {
        Self {
            tenant_id: b.tenant_id,
            period_start: b.bucket_start,
            period_end: b.bucket_start + chrono::Duration::seconds(secs),
            samples: b.periods,
            usage: UsageAmountsView {
                users: b.users.into(),
                api_keys: b.api_keys.into(),
                clusters: b.clusters.into(),
                instances: b.instances.into(),
                cpu_cores: b.cpu_cores.into(),
                memory_gb: b.memory_gb.into(),
                storage_gb: b.storage_gb.into(),
            },
            peak: UsageAmountsView {
                users: b.users_peak.into(),
                api_keys: b.api_keys_peak.into(),
                clusters: b.clusters_peak.into(),
                instances: b.instances_peak.into(),
                cpu_cores: b.cpu_cores_peak.into(),
                memory_gb: b.memory_gb_peak.into(),
                storage_gb: b.storage_gb_peak.into(),
            },
            provisioned: UsageAmountsView {
                users: b.users_provisioned,
                api_keys: b.api_keys_provisioned,
                clusters: b.clusters_provisioned,
                instances: b.instances_provisioned,
                cpu_cores: b.cpu_cores_provisioned,
                memory_gb: b.memory_gb_provisioned,
                storage_gb: b.storage_gb_provisioned,
            },
            released: UsageAmountsView {
                users: b.users_released,
                api_keys: b.api_keys_released,
                clusters: b.clusters_released,
                instances: b.instances_released,
                cpu_cores: b.cpu_cores_released,
                memory_gb: b.memory_gb_released,
                storage_gb: b.storage_gb_released,
            },
            tenant_slug: b.slug,
        }
    }

    /// The CSV columns, in [`UsagePeriodView::csv_row`]'s order.
    pub const CSV_HEADER: &'static [&'static str] = &[
        "tenant_id",
        "tenant_slug",
        "period_start",
        "period_end",
        "samples",
        "users",
        "users_peak",
        "users_provisioned",
        "users_released",
        "api_keys",
        "api_keys_peak",
        "api_keys_provisioned",
        "api_keys_released",
        "clusters",
        "clusters_peak",
        "clusters_provisioned",
        "clusters_released",
        "instances",
        "instances_peak",
        "instances_provisioned",
        "instances_released",
        "cpu_cores",
        "cpu_cores_peak",
        "cpu_cores_provisioned",
        "cpu_cores_released",
        "memory_gb",
        "memory_gb_peak",
        "memory_gb_provisioned",
        "memory_gb_released",
        "storage_gb",
        "storage_gb_peak",
        "storage_gb_provisioned",
        "storage_gb_released",
    ];

    /// One CSV record (RFC 4180: fields quoted when they hold a comma, a
    /// quote or a line break; CRLF-terminated).
    #[must_use]
    pub fn csv_row(&self) -> String {
        let fields = [
            self.tenant_id.to_string(),
            self.tenant_slug.clone(),
            self.period_start.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.period_end.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.samples.to_string(),
            self.usage.users.to_string(),
            self.peak.users.to_string(),
            self.provisioned.users.to_string(),
            self.released.users.to_string(),
            self.usage.api_keys.to_string(),
            self.peak.api_keys.to_string(),
            self.provisioned.api_keys.to_string(),
            self.released.api_keys.to_string(),
            self.usage.clusters.to_string(),
            self.peak.clusters.to_string(),
            self.provisioned.clusters.to_string(),
            self.released.clusters.to_string(),
            self.usage.instances.to_string(),
            self.peak.instances.to_string(),
            self.provisioned.instances.to_string(),
            self.released.instances.to_string(),
            self.usage.cpu_cores.to_string(),
            self.peak.cpu_cores.to_string(),
            self.provisioned.cpu_cores.to_string(),
            self.released.cpu_cores.to_string(),
            self.usage.memory_gb.to_string(),
            self.peak.memory_gb.to_string(),
            self.provisioned.memory_gb.to_string(),
            self.released.memory_gb.to_string(),
            self.usage.storage_gb.to_string(),
            self.peak.storage_gb.to_string(),
            self.provisioned.storage_gb.to_string(),
            self.released.storage_gb.to_string(),
        ];
        csv_record(fields.iter().map(String::as_str))
    }
}

/// One RFC 4180 record, CRLF-terminated.
#[must_use]
pub fn csv_record<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = fields
        .into_iter()
        .map(|f| {
            if f.contains([',', '"', '\r', '\n']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// A usage report: the periods of the range, one item per tenant and
/// period, ordered by tenant then period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageReportView {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
    /// The sampling interval (`[usage] interval`), in seconds.
    pub interval_seconds: i64,
    pub items: Vec<UsagePeriodView>,
    /// The finance export's next page (by tenant); null on the last page
    /// and on a single tenant's report.
    pub next_cursor: Option<String>,
}

impl UsageReportView {
    /// The report as CSV: a header record, then a record per item.
    #[must_use]
    pub fn to_csv(&self) -> String {
        let mut out = csv_record(UsagePeriodView::CSV_HEADER.iter().copied());
        for item in &self.items {
            out.push_str(&item.csv_row());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_record(["a", "b c"]), "a,b c\r\n");
        assert_eq!(
            csv_record(["x,y", "say \"hi\"", "two\nlines"]),
            "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
    }

    #[test]
    fn the_header_names_every_field_of_a_row() {
        assert_eq!(UsagePeriodView::CSV_HEADER.len(), 5 + 7 * 4);
    }
}

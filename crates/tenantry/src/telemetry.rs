//! Logging, and OpenTelemetry traces when `[traces] enabled`: the spans of
//! `serve` (one per request, each database transaction a child of it)
//! exported over OTLP/HTTP with protobuf bodies by a batch processor on a
//! thread of its own.
//!
//! Off (the default), the subscriber is the plain log pipeline it always
//! was: no exporter is built, no OpenTelemetry layer is installed, and the
//! API does not look for a `traceparent`.

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::DynFilterFn;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::settings::{LogFormat, LogSettings, TraceSettings};

/// How long one export, and the flush at exit, may take.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The database transaction's span (`tenantry_db::scope`), exported only as
/// the child of a request's span.
const DB_TRANSACTION_SPAN: &str = "db.transaction";

/// What [`init`] installed. Dropping it (or [`Telemetry::shutdown`])
/// flushes the spans still queued and stops the exporter: call it outside
/// the async runtime, after the runtime has finished.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether an exporter runs (`[traces] enabled`, for `serve`).
    #[must_use]
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the exporter (bounded by [`EXPORT_TIMEOUT`]).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown_with_timeout(EXPORT_TIMEOUT)
        {
            tracing::warn!(%err, "traces: the last spans could not be flushed");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The tracer provider `[traces]` asks for: `None` when disabled (nothing
/// is built); an error for an endpoint that is not an http(s) URL or a
/// ratio outside 0..=1. An endpoint nobody listens on is not an error:
/// exports fail in the background and requests do not notice.
pub fn tracer_provider(settings: &TraceSettings) -> anyhow::Result<Option<SdkTracerProvider>> {
    if !settings.enabled {
        return Ok(None);
    }
    if !(0.0..=1.0).contains(&settings.sample_ratio) {
        anyhow::bail!(
            "traces.sample_ratio must be between 0.0 and 1.0, not {}",
            settings.sample_ratio
        );
    }
    let endpoint = settings.endpoint.trim();
    let authority = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"));
    if authority.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
        anyhow::bail!("traces.endpoint {endpoint:?} is not an http:// or https:// URL");
    }
    if settings.service_name.trim().is_empty() {
        anyhow::bail!("traces.service_name is empty");
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .with_context(|| format!("traces.endpoint {endpoint:?}: cannot build the exporter"))?;
    let resource = Resource::builder()
        .with_service_name(settings.service_name.trim().to_owned())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(Reporting::new(exporter, endpoint))
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.sample_ratio,
            ))))
            .with_resource(resource)
            .build(),
    ))
}

/// The exporter, saying in the log when exports start failing (at most
/// once a minute) and when they work again: the collector being away costs
/// requests nothing, but the operator should hear of it.
#[derive(Debug)]
struct Reporting<E> {
    inner: E,
    endpoint: String,
    failing: std::sync::Mutex<Option<std::time::Instant>>,
}

impl<E> Reporting<E> {
    fn new(inner: E, endpoint: &str) -> Self {
        Self {
            inner,
            endpoint: endpoint.to_owned(),
            failing: std::sync::Mutex::new(None),
        }
    }

    fn outcome(&self, result: &opentelemetry_sdk::error::OTelSdkResult) {
        let Ok(mut failing) = self.failing.lock() else {
            return;
        };
        match (result, *failing) {
            (Ok(()), Some(_)) => {
                *failing = None;
                tracing::info!(endpoint = %self.endpoint, "traces: exporting again");
            }
            (Err(err), last) if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) => {
                *failing = Some(std::time::Instant::now());
                tracing::warn!(endpoint = %self.endpoint, %err, "traces: export failed; spans are being dropped");
            }
            _ => {}
        }
    }
}

impl<E: opentelemetry_sdk::trace::SpanExporter> opentelemetry_sdk::trace::SpanExporter
    for Reporting<E>
{
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.outcome(&result);
        result
    }

    fn shutdown_with_timeout(
        &mut self,
        timeout: Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// What the OpenTelemetry layer sees, whatever the log level: spans at
/// INFO and above (a request's), the database transaction's span (DEBUG,
/// so the logs never carry it unless asked) when it is inside one, and
/// WARN and ERROR events, which become span events.
fn exported<S>(meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    if meta.is_span() {
        *meta.level() <= Level::INFO
            || (meta.name() == DB_TRANSACTION_SPAN && cx.lookup_current().is_some())
    } else {
        *meta.level() <= Level::WARN
    }
}

/// The log lines, as `[log] format` says.
fn log_lines<S>(log: &LogSettings) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // FmtSpan::CLOSE: one line per finished request span, carrying its
    // request_id, tenant_id, route and status (the access log) and, with
    // traces on, its trace_id. Colours only for a person at a terminal: a
    // pipe or a log file gets plain text, like the progress lines beside it.
    let fmt = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.boxed(),
    }
}

/// Installs the global subscriber: the log lines (`[log]`: format, level;
/// `RUST_LOG` overrides the level) and, when `traces` is given and
/// enabled, the OpenTelemetry layer and the W3C trace-context propagator.
pub fn init(log: &LogSettings, traces: Option<&TraceSettings>) -> anyhow::Result<Telemetry> {
    let provider = match traces {
        Some(traces) => tracer_provider(traces)?,
        None => None,
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    match &provider {
        None => tracing_subscriber::registry()
            .with(filter)
            .with(log_lines(log))
            .try_init()
            .context("cannot install the log subscriber")?,
        Some(provider) => {
            let tracer = provider.tracer("tenantry");
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            tenantry_api::enable_traces();
            // The level filter applies to the log lines only: traces are
            // exported whatever the logs keep.
            tracing_subscriber::registry()
                .with(log_lines(log).with_filter(filter))
                .with(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(DynFilterFn::new(exported)),
                )
                .try_init()
                .context("cannot install the log subscriber")?;
            if let Some(traces) = traces {
                tracing::info!(endpoint = %traces.endpoint.trim(), sample_ratio = traces.sample_ratio, "traces: exporting over OTLP/HTTP");
            }
        }
    }
    Ok(Telemetry { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(endpoint: &str) -> TraceSettings {
        TraceSettings {
            enabled: true,
            endpoint: endpoint.to_owned(),
            ..TraceSettings::default()
        }
    }

    #[test]
    fn disabled_builds_no_exporter() {
        let off = TraceSettings {
            // Even a broken endpoint: nothing looks at it.
            endpoint: "not a url".to_owned(),
            ..TraceSettings::default()
        };
        assert!(tracer_provider(&off).unwrap().is_none());
        assert!(
            tracer_provider(&TraceSettings::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn enabled_builds_an_exporter_even_for_an_endpoint_nobody_answers() {
        let provider = tracer_provider(&enabled("http://127.0.0.1:9/v1/traces"))
            .unwrap()
            .unwrap();
        provider.shutdown_with_timeout(EXPORT_TIMEOUT).unwrap();
    }

    #[test]
    fn a_malformed_endpoint_or_ratio_is_refused() {
        for endpoint in ["", "not a url", "ftp://collector/v1/traces", "/v1/traces"] {
            let err = tracer_provider(&enabled(endpoint)).unwrap_err();
            assert!(
                format!("{err:#}").contains("traces.endpoint"),
                "{endpoint}: {err:#}"
            );
        }
        for ratio in [-0.1, 1.5, f64::NAN] {
            let settings = TraceSettings {
                sample_ratio: ratio,
                ..enabled("http://127.0.0.1:4318/v1/traces")
            };
            let err = tracer_provider(&settings).unwrap_err();
            assert!(
                format!("{err:#}").contains("sample_ratio"),
                "{ratio}: {err:#}"
            );
        }
    }
}

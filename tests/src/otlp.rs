//! A small OTLP/HTTP traces receiver for the trace tests: a plain tokio
//! listener on 127.0.0.1 that takes `POST /v1/traces` with protobuf bodies
//! (`ExportTraceServiceRequest`), answers 200 with an empty
//! `ExportTraceServiceResponse`, and keeps every span it was sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The largest request the receiver reads (a batch of 512 spans is far
/// below it).
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// One exported span, flattened: ids in lower-case hex, attribute values
/// as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// `opentelemetry.proto.trace.v1.Span.SpanKind` (2 = server, 3 = client).
    pub kind: i32,
    pub attributes: BTreeMap<String, String>,
    /// The resource's `service.name`.
    pub service_name: String,
}

impl Span {
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Debug, Default)]
struct Received {
    /// Export requests, whatever their path or body.
    requests: usize,
    spans: Vec<Span>,
    /// Why a request could not be read or decoded.
    errors: Vec<String>,
}

/// The receiver; it stops listening when dropped.
#[derive(Debug)]
pub struct Receiver {
    /// `http://127.0.0.1:PORT/v1/traces`, for `[traces] endpoint`.
    pub endpoint: String,
    received: Arc<Mutex<Received>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver");
        let address = listener.local_addr().expect("its address");
        let received = Arc::new(Mutex::new(Received::default()));
        let shared = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Self {
            endpoint: format!("http://{address}/v1/traces"),
            received,
            task,
        }
    }

    /// How many export requests arrived.
    #[must_use]
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Every span received so far.
    #[must_use]
    pub fn spans(&self) -> Vec<Span> {
        self.lock().spans.clone()
    }

    /// Requests it could not read or decode (none, from a working exporter).
    #[must_use]
    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    /// Waits (at most `within`) until `found` picks something out of the
    /// spans received; `None` if it never did.
    pub async fn wait_for<T>(
        &self,
        within: Duration,
        found: impl Fn(&[Span]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(found) = found(&self.lock().spans) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: HTTP/1.1 requests with a Content-Length body, kept
/// alive until the client closes it.
async fn serve(mut stream: TcpStream, received: Arc<Mutex<Received>>) {
    let mut buffer = Vec::new();
    loop {
        let (head, body) = match read_request(&mut stream, &mut buffer).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(err) => {
                record(&received, |r| r.errors.push(err));
                return;
            }
        };
        let status = handle(&head, &body, &received);
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn record(received: &Mutex<Received>, f: impl FnOnce(&mut Received)) {
    f(&mut received.lock().unwrap_or_else(|e| e.into_inner()));
}

fn handle(head: &str, body: &[u8], received: &Mutex<Received>) -> &'static str {
    let request_line = head.lines().next().unwrap_or_default();
    record(received, |r| r.requests += 1);
    if !request_line.starts_with("POST /v1/traces ") {
        record(received, |r| {
            r.errors.push(format!("unexpected request: {request_line}"));
        });
        return "404 Not Found";
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            let spans = flatten(request);
            record(received, |r| r.spans.extend(spans));
            "200 OK"
        }
        Err(err) => {
            record(received, |r| {
                r.errors.push(format!("undecodable body: {err}"))
            });
            "400 Bad Request"
        }
    }
}

/// Reads one request (head and Content-Length body) from the connection;
/// `None` when the client closed it between requests.
async fn read_request(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> Result<Option<(String, Vec<u8>)>, String> {
    let mut chunk = [0_u8; 8192];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_REQUEST_BYTES {
            return Err("request head too large".to_owned());
        }
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk)).await {
            Ok(Ok(0)) if buffer.is_empty() => return Ok(None),
            Ok(Ok(0)) => return Err("connection closed mid-request".to_owned()),
            Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
            Ok(Err(err)) => return Err(format!("read: {err}")),
            Err(_) => return Ok(None),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST_BYTES {
        return Err(format!("body of {length} bytes"));
    }
    let body_start = head_end + 4;
    while buffer.len() < body_start + length {
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk)).await {
            Ok(Ok(0)) => return Err("connection closed mid-body".to_owned()),
            Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
            Ok(Err(err)) => return Err(format!("read: {err}")),
            Err(_) => return Err("timed out reading the body".to_owned()),
        }
    }
    let body = buffer[body_start..body_start + length].to_vec();
    buffer.drain(..body_start + length);
    Ok(Some((head, body)))
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let service_name = resource_spans
            .resource
            .map(|r| attributes(r.attributes))
            .and_then(|mut a| a.remove("service.name"))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                out.push(Span {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: span.kind,
                    attributes: attributes(span.attributes),
                    service_name: service_name.clone(),
                });
            }
        }
    }
    out
}

fn attributes(attributes: Vec<KeyValue>) -> BTreeMap<String, String> {
    attributes
        .into_iter()
        .map(|kv| (kv.key, kv.value.map(text).unwrap_or_default()))
        .collect()
}

fn text(value: AnyValue) -> String {
    match value.value {
        Some(Value::StringValue(s)) => s,
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

//! `deploy/grafana/tenantry.json` (the Grafana dashboard) and
//! `deploy/prometheus/alerts.yml` (the alert rules) against the metrics the
//! service really serves.
//!
//! No Grafana server here: the dashboard's import structure is checked as
//! Grafana's import reads it (the `DS_PROMETHEUS` input, the `datasource`
//! and `tenant` variables, unique panel ids on a 24-column grid, every query
//! on the chosen data source), and every panel expression, Grafana's
//! variables substituted, is given to `promtool check rules` as a recording
//! rule (promtool from `TENANTRY_PROMTOOL`, which scripts/test.sh exports
//! after scripts/promtool.sh installed it). Then the real service, after
//! traffic of several tenants, must serve every metric every panel queries;
//! and every metric an alert uses is one the service exports by contract.
//! (`promtool test rules` on deploy/prometheus/alerts.test.yml runs in
//! scripts/promtool.sh.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_tests::TestApp;

/// Every metric the service exports (issue 17's contract), as its samples
/// are named in `/metrics` and in PromQL: a histogram by its `_bucket`,
/// `_sum` and `_count`.
const CONTRACT_METRICS: &[&str] = &[
    "tenantry_http_requests_total",
    "tenantry_http_request_duration_seconds_bucket",
    "tenantry_http_request_duration_seconds_sum",
    "tenantry_http_request_duration_seconds_count",
    "tenantry_quota_rejections_total",
    "tenantry_rate_limited_total",
    "tenantry_tenant_quota_used",
    "tenantry_tenant_quota_limit",
    "tenantry_tenants",
    "tenantry_tenants_awaiting_purge",
    "tenantry_tenants_on_legal_hold",
    "tenantry_oldest_pending_purge_age_seconds",
    "tenantry_purge_overdue_tenants",
    "tenantry_quota_over_limit",
    "tenantry_retention_period_seconds",
    "tenantry_sweep_interval_seconds",
    "tenantry_sweeper_enabled",
    "tenantry_start_time_seconds",
    "tenantry_build_info",
    "tenantry_sweep_last_success_timestamp_seconds",
    "tenantry_sweep_duration_seconds",
    "tenantry_tenants_purged_total",
    "tenantry_rows_purged_total",
    "tenantry_sweep_batches_total",
    "tenantry_sweep_paused_seconds_total",
    "tenantry_sweep_backoffs_total",
    "tenantry_sweep_batch_rows",
    "tenantry_quota_drift",
    "tenantry_quota_drift_found_total",
    "tenantry_rate_limiter_tenants",
    "tenantry_db_pool_connections",
    "tenantry_db_pool_max_connections",
    "tenantry_db_pool_waiting",
    "tenantry_db_pool_timeouts_total",
    "tenantry_webhook_deliveries_total",
    "tenantry_webhook_outbox_pending",
];

/// What the issue asks the dashboard to show, by the metrics that show it:
/// requests, errors and latency per tenant, top tenants, quota pressure,
/// lifecycle counts, sweeper health, database pool saturation.
const DASHBOARD_MUST_QUERY: &[&str] = &[
    "tenantry_http_requests_total",
    "tenantry_http_request_duration_seconds_bucket",
    "tenantry_tenant_quota_used",
    "tenantry_tenant_quota_limit",
    "tenantry_quota_rejections_total",
    "tenantry_rate_limited_total",
    "tenantry_tenants",
    "tenantry_tenants_awaiting_purge",
    "tenantry_tenants_on_legal_hold",
    "tenantry_purge_overdue_tenants",
    "tenantry_sweep_last_success_timestamp_seconds",
    "tenantry_sweep_interval_seconds",
    "tenantry_sweep_duration_seconds",
    "tenantry_rows_purged_total",
    "tenantry_db_pool_connections",
    "tenantry_db_pool_max_connections",
    "tenantry_db_pool_waiting",
    "tenantry_db_pool_timeouts_total",
];

/// The alerts of the contract, each in alerts.yml.
const ALERTS: [&str; 6] = [
    "TenantrySweeperStuck",
    "TenantryPurgeOverdue",
    "TenantryQuotaDrift",
    "TenantryHigh5xxRatio",
    "TenantryDbPoolSaturated",
    "TenantryTenantsOverLimit",
];

/// The data source every panel and query uses: the `datasource` variable.
fn datasource_ref() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&repo_file("deploy/grafana/tenantry.json"))
        .expect("deploy/grafana/tenantry.json is JSON")
}

/// Every panel, the panels of collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

/// (panel title, refId, expr) of every query of every panel.
fn queries(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                panel["title"].as_str().unwrap_or_default().to_owned(),
                target["refId"].as_str().unwrap_or_default().to_owned(),
                target["expr"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

/// The value each Grafana variable takes for promtool: the dashboard's own
/// variables their "All" value, Grafana's built-in ranges a duration.
fn variables(dashboard: &Value) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = [
        ("__rate_interval", "5m"),
        ("__interval", "1m"),
        ("__range", "1h"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        let name = var["name"].as_str().expect("a variable's name").to_owned();
        let value = var["allValue"].as_str().unwrap_or(".*").to_owned();
        vars.insert(name, value);
    }
    vars
}

/// `expr` with every `$name` / `${name}` / `${name:format}` replaced;
/// an unknown variable is an error (it would stay unresolved in Grafana).
fn substitute(expr: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {expr}"))?;
            let inner = &braced[..end];
            (inner.split(':').next().unwrap_or(inner), end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let value = vars
            .get(name)
            .ok_or_else(|| format!("unknown variable ${name} in {expr}"))?;
        out.push_str(value);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The metric names a PromQL expression selects: every identifier outside
/// string literals, label matchers (`{...}`), ranges (`[...]`) and grouping
/// lists (`by (...)`, `on (...)`, ...) that is neither a function, an
/// aggregation, a keyword nor a number.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const AGGREGATIONS: [&str; 14] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 8] = [
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Skips from an opening delimiter at `i` past its matching closer,
    // stepping over string literals inside.
    let skip_enclosed = |mut i: usize, open: char, close: char| -> usize {
        let mut depth = 0;
        while i < chars.len() {
            match chars[i] {
                '"' | '\'' | '`' => i = skip_string(&chars, i),
                c if c == open => {
                    depth += 1;
                    i += 1;
                }
                c if c == close => {
                    depth -= 1;
                    i += 1;
                    if depth == 0 {
                        return i;
                    }
                }
                _ => i += 1,
            }
        }
        i
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_enclosed(i, '{', '}');
        } else if c == '[' {
            i = skip_enclosed(i, '[', ']');
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // Numbers and durations (1e-3, 0x1f, 5m, 1h30m).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let before_paren = chars.get(next) == Some(&'(');
            let lower = word.to_ascii_lowercase();
            if GROUPING.contains(&lower.as_str()) {
                if before_paren {
                    i = skip_enclosed(next, '(', ')');
                }
            } else if before_paren
                || AGGREGATIONS.contains(&lower.as_str())
                || KEYWORDS.contains(&lower.as_str())
            {
                // A function or aggregation call, or an operator.
            } else {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The index just past the string literal that starts at `i`.
fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() {
        if chars[j] == '\\' && quote != '`' {
            j += 2;
            continue;
        }
        if chars[j] == quote {
            return j + 1;
        }
        j += 1;
    }
    j
}

/// Every metric the dashboard's panels query, with the panels querying it.
fn dashboard_metrics(dashboard: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let vars = variables(dashboard);
    let mut metrics: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (title, _, expr) in queries(dashboard) {
        let expr = substitute(&expr, &vars).unwrap_or_else(|e| panic!("panel {title:?}: {e}"));
        for name in metric_names(&expr) {
            metrics.entry(name).or_default().insert(title.clone());
        }
    }
    metrics
}

#[test]
fn metric_names_are_read_from_promql_as_prometheus_reads_them() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (tenant, le) (rate(tenantry_http_request_duration_seconds_bucket{tenant=~"a|b", route!="x{y}"}[5m])))"#
        ),
        ["tenantry_http_request_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            "max by (job) (up) > 0 and on (job) (time() - min by (job) (process_start offset 1h) > 2 * avg without (instance) (b)) or ignoring(x) group_left(y) c unless bool d"
        ),
        ["b", "c", "d", "process_start", "up"]
    );
    assert_eq!(
        names(r#"topk(10, sum(increase(m_total{l="or"}[1h:1m])))"#),
        ["m_total"]
    );
    assert_eq!(names("1e-3 * 5 + Inf - NaN"), Vec::<String>::new());
    assert_eq!(names(r#"{__name__="x"} + y"#), ["y"]);
}

#[test]
fn variables_are_substituted_and_unknown_ones_refused() {
    let vars: BTreeMap<String, String> = [("tenant", ".*"), ("__rate_interval", "5m")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        substitute(
            r#"rate(m{tenant=~"$tenant"}[$__rate_interval]) + ${tenant:regex}"#,
            &vars
        ),
        Ok(r#"rate(m{tenant=~".*"}[5m]) + .*"#.to_owned())
    );
    assert!(substitute("rate(m[$nope])", &vars).is_err());
}

#[test]
fn the_dashboard_imports_into_grafana_as_is() {
    let dashboard = dashboard();
    // Import asks for a Prometheus data source for DS_PROMETHEUS and puts
    // the chosen one in place of ${DS_PROMETHEUS}.
    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS"
            && i["type"] == "datasource"
            && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    assert!(dashboard["id"].is_null(), "an exported dashboard has no id");
    let uid = dashboard["uid"].as_str().expect("a stable uid");
    assert!(
        !uid.is_empty()
            && uid.len() <= 40
            && uid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{uid}"
    );
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!(schema >= 39, "schemaVersion {schema}: Grafana 10 or later");

    let vars = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    let datasource = var("datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    assert_eq!(datasource["current"]["value"], "${DS_PROMETHEUS}");
    let tenant = var("tenant");
    assert_eq!(tenant["type"], "query");
    assert_eq!(tenant["datasource"], datasource_ref());
    let definition = "label_values(tenantry_http_requests_total, tenant)";
    assert_eq!(tenant["definition"], definition);
    assert_eq!(tenant["query"]["query"], definition);
    assert_eq!(tenant["includeAll"], true);
    assert_eq!(tenant["multi"], true);

    let all = panels(&dashboard);
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    let mut with_queries = 0;
    for panel in &all {
        let title = panel["title"].as_str().unwrap_or_default();
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{title:?}: no id"));
        assert!(ids.insert(id), "panel id {id} twice ({title:?})");
        assert!(!title.is_empty(), "panel {id} has no title");
        let grid = &panel["gridPos"];
        let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| {
            grid[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{title:?}: gridPos.{k} is missing"))
        });
        assert!(
            h >= 1 && (1..=24).contains(&w) && x + w <= 24,
            "{title:?}: {grid}"
        );
        // No two panels on the same cell (rows' collapsed panels keep
        // their own places when the row opens).
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "{title:?} overlaps another panel at {cx},{cy}"
                );
            }
        }
        if panel["type"] == "row" {
            assert!(panel.get("targets").is_none(), "row {title:?} has queries");
            continue;
        }
        assert_eq!(panel["datasource"], datasource_ref(), "{title:?}");
        let targets = panel["targets"]
            .as_array()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| panic!("{title:?} has no queries"));
        let mut refs = BTreeSet::new();
        for target in targets {
            let ref_id = target["refId"].as_str().unwrap_or_default();
            assert!(!ref_id.is_empty(), "{title:?}: a query without a refId");
            assert!(refs.insert(ref_id), "{title:?}: refId {ref_id} twice");
            assert!(
                target["expr"]
                    .as_str()
                    .is_some_and(|e| !e.trim().is_empty()),
                "{title:?} {ref_id}: no expr"
            );
            assert_eq!(target["datasource"], datasource_ref(), "{title:?} {ref_id}");
        }
        with_queries += 1;
    }
    assert!(
        with_queries >= 20,
        "only {with_queries} panels with queries"
    );

    // Ranges are Grafana's (so they follow the scrape interval and the
    // dashboard's range), never a fixed window.
    for (title, ref_id, expr) in queries(&dashboard) {
        let mut rest = expr.as_str();
        while let Some(open) = rest.find('[') {
            let close = rest[open..]
                .find(']')
                .map(|c| open + c)
                .expect("a closed range");
            let range = &rest[open + 1..close];
            assert!(
                range == "$__rate_interval" || range == "$__range",
                "{title:?} {ref_id}: range [{range}] in {expr}"
            );
            rest = &rest[close + 1..];
        }
        if expr.contains("histogram_quantile") {
            let by_le = expr.match_indices("by (").any(|(at, _)| {
                let list = &expr[at + 4..];
                list[..list.find(')').unwrap_or(0)]
                    .split(',')
                    .any(|label| label.trim() == "le")
            });
            assert!(
                expr.contains("_bucket") && by_le,
                "{title:?} {ref_id}: a quantile from the buckets, by le: {expr}"
            );
        }
    }

    // Only the contract's metrics, and all the issue asks to show.
    let metrics = dashboard_metrics(&dashboard);
    for (name, titles) in &metrics {
        assert!(
            CONTRACT_METRICS.contains(&name.as_str()),
            "{name} (in {titles:?}) is not a metric the service exports"
        );
    }
    for name in DASHBOARD_MUST_QUERY {
        assert!(metrics.contains_key(*name), "no panel shows {name}");
    }
}

/// promtool, as scripts/promtool.sh installed it.
fn promtool() -> String {
    std::env::var("TENANTRY_PROMTOOL").unwrap_or_else(|_| "promtool".to_owned())
}

/// `promtool check rules` on these rule groups: (success, its output).
fn promtool_check_rules(groups: &Value) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("tenantry-dashboard-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    // JSON is YAML: promtool reads it as a rules file.
    let file = dir.join("dashboard.rules.yml");
    std::fs::write(&file, serde_json::to_string_pretty(groups).expect("json"))
        .expect("write rules");
    let output = Command::new(promtool())
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}. scripts/test.sh installs promtool (scripts/promtool.sh install) \
                 and sets TENANTRY_PROMTOOL; PROMTOOL=0 scripts/test.sh skips this test",
                promtool()
            )
        });
    std::fs::remove_dir_all(&dir).expect("remove the temporary directory");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn promtool_accepts_every_dashboard_expression() {
    let dashboard = dashboard();
    let vars = variables(&dashboard);
    let rules: Vec<Value> = queries(&dashboard)
        .into_iter()
        .enumerate()
        .map(|(i, (title, ref_id, expr))| {
            let expr = substitute(&expr, &vars).unwrap_or_else(|e| panic!("{title:?}: {e}"));
            json!({
                "record": format!("tenantry_dashboard:query{i}:{ref_id}"),
                "expr": expr,
                "labels": {"panel": title},
            })
        })
        .collect();
    let count = rules.len();
    let (ok, output) =
        promtool_check_rules(&json!({"groups": [{"name": "dashboard", "rules": rules}]}));
    assert!(ok, "promtool refused a dashboard expression:\n{output}");
    assert!(
        output.contains(&format!("SUCCESS: {count} rules found")),
        "{output}"
    );

    // And it does read the expressions: a broken one is refused.
    let (ok, output) = promtool_check_rules(&json!({"groups": [{"name": "broken", "rules": [
        {"record": "tenantry_dashboard:broken", "expr": "sum(rate(tenantry_http_requests_total[5m])"}
    ]}]}));
    assert!(!ok, "promtool accepted an unclosed parenthesis:\n{output}");
}

/// One rule of alerts.yml: its alert name, its expression and its text.
#[derive(Debug)]
struct AlertRule {
    alert: String,
    expr: String,
    body: String,
}

/// The alerting rules of a rules file in alerts.yml's layout (`- alert:`
/// items, `expr:` inline or as a block scalar). promtool checks the YAML
/// itself; this reads only what the checks below need.
fn alert_rules(text: &str) -> Vec<AlertRule> {
    let lines: Vec<&str> = text.lines().collect();
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("- alert:"))
        .map(|(i, _)| i)
        .collect();
    assert!(
        !lines
            .iter()
            .any(|l| l.trim_start().starts_with("- record:")),
        "alerts.yml holds recording rules: read them here too"
    );
    let mut rules = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        let body = &lines[start..end];
        let alert = body[0]
            .trim_start()
            .trim_start_matches("- alert:")
            .trim()
            .to_owned();
        let at = body
            .iter()
            .position(|l| l.trim_start().starts_with("expr:"))
            .unwrap_or_else(|| panic!("{alert}: no expr"));
        let indent = body[at].len() - body[at].trim_start().len();
        let value = body[at].trim_start().trim_start_matches("expr:").trim();
        let expr = if value.starts_with('|') || value.starts_with('>') {
            body[at + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            value.trim_matches(|c| c == '"' || c == '\'').to_owned()
        };
        assert!(!expr.trim().is_empty(), "{alert}: empty expr");
        rules.push(AlertRule {
            alert,
            expr,
            body: body.join("\n"),
        });
    }
    rules
}

/// GitHub's anchors of a Markdown file's headings.
fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

#[test]
fn every_alert_uses_only_contract_metrics_and_has_a_runbook_and_unit_tests() {
    let rules = alert_rules(&repo_file("deploy/prometheus/alerts.yml"));
    let names: BTreeSet<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    assert_eq!(names, ALERTS.into_iter().collect(), "the contract's alerts");
    let runbooks = anchors(&repo_file("RELIABILITY.md"));
    let unit_tests = repo_file("deploy/prometheus/alerts.test.yml");
    let test_lines: Vec<&str> = unit_tests.lines().map(str::trim).collect();
    for rule in &rules {
        let alert = &rule.alert;
        let metrics = metric_names(&rule.expr);
        assert!(!metrics.is_empty(), "{alert} uses no metric: {}", rule.expr);
        for name in &metrics {
            assert!(
                CONTRACT_METRICS.contains(&name.as_str()),
                "{alert} uses {name}, which the service does not export"
            );
        }
        assert!(
            rule.body.contains("severity: critical") || rule.body.contains("severity: warning"),
            "{alert}: no severity label"
        );
        for annotation in ["summary:", "description:"] {
            assert!(rule.body.contains(annotation), "{alert}: no {annotation}");
        }
        let runbook = rule
            .body
            .lines()
            .find_map(|l| l.trim().strip_prefix("runbook:"))
            .map(|r| r.trim().trim_matches('"'))
            .unwrap_or_else(|| panic!("{alert}: no runbook"));
        let anchor = runbook
            .strip_prefix("RELIABILITY.md#")
            .unwrap_or_else(|| panic!("{alert}: the runbook {runbook} is not in RELIABILITY.md"));
        assert!(
            runbooks.contains(anchor),
            "{alert}: RELIABILITY.md has no section #{anchor}"
        );
    }
    // alerts.test.yml: each alert once expected to fire and once not.
    for alert in ALERTS {
        let mut fires = 0;
        let mut silent = 0;
        for (i, line) in test_lines.iter().enumerate() {
            if *line == format!("alertname: {alert}") {
                match test_lines.get(i + 1) {
                    Some(&"exp_alerts: []") => silent += 1,
                    Some(&"exp_alerts:") => fires += 1,
                    other => panic!("{alert}: after alertname, {other:?}"),
                }
            }
        }
        assert!(
            fires >= 1 && silent >= 1,
            "{alert}: {fires} firing and {silent} silent cases"
        );
    }
}

/// Does `/metrics` hold a sample of `name` (not merely a longer name that
/// starts with it)?
fn has_sample(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

/// Does `/metrics` hold a sample of `name` labelled with this tenant?
fn has_tenant_sample(text: &str, name: &str, tenant: &str) -> bool {
    let label = format!("tenant=\"{tenant}\"");
    text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{'))
            && l.contains(&label)
    })
}

#[tokio::test]
async fn every_metric_every_panel_queries_is_served_after_traffic() {
    let app = TestApp::spawn().await;
    let (acme, acme_token) = app.tenant_with("acme", json!({"max_users": 0})).await;
    let (globex, globex_token) = app.tenant_with("globex", json!({})).await;
    let (_, noisy_token) = app
        .tenant_with("noisy", json!({"requests_per_second": 1, "burst": 1}))
        .await;
    let (dormant, dormant_token) = app.tenant_with("dormant", json!({})).await;
    let (gone, _) = app.tenant_with("gone", json!({})).await;

    // 2xx for both tenants.
    for token in [&acme_token, &globex_token] {
        for _ in 0..3 {
            let (status, body) = app.call(token, Method::GET, "/v1/tenant", None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    // 4xx: a missing resource, and a quota rejection.
    let (status, _) = app
        .call(
            &globex_token,
            Method::GET,
            &format!("/v1/users/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .call(
            &acme_token,
            Method::POST,
            "/v1/users",
            Some(json!({"email": "over@example.com"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("quota_exceeded")),
        "{body}"
    );
    // Rate-limited: one request per second, ten at once.
    let burst = (0..10).map(|_| {
        app.with_token(Method::GET, "/v1/tenant", &noisy_token)
            .send()
    });
    let limited = futures_util::future::join_all(burst)
        .await
        .into_iter()
        .filter(|r| {
            r.as_ref()
                .is_ok_and(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        })
        .count();
    assert!(limited >= 1, "no request was rate-limited");
    // A suspended tenant's requests are refused; a deleted one awaits its purge.
    let (status, body) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{dormant}/suspend"),
            Some(json!({"reason": "billing hold"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .call(&dormant_token, Method::GET, "/v1/tenant", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("tenant_suspended")),
        "{body}"
    );
    let (status, body) = app
        .admin_call(
            Method::POST,
            &format!("/v1/admin/tenants/{gone}/delete"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // No tenant at all: unauthenticated.
    assert_eq!(
        app.get("/v1/tenant").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // The global and usage gauges are refreshed in the background
    // ([metrics] refresh_interval, 15s by default): wait for one refresh.
    let wanted = dashboard_metrics(&dashboard());
    let deadline = Instant::now() + Duration::from_secs(45);
    let (acme, globex) = (acme.to_string(), globex.to_string());
    let mut text;
    let missing = loop {
        text = app.metrics().await;
        let mut missing: Vec<String> = wanted
            .iter()
            .filter(|(name, _)| !has_sample(&text, name))
            .map(|(name, panels)| format!("{name} (panels {panels:?})"))
            .collect();
        for tenant in [&acme, &globex] {
            for name in [
                "tenantry_http_requests_total",
                "tenantry_http_request_duration_seconds_bucket",
                "tenantry_tenant_quota_used",
            ] {
                if !has_tenant_sample(&text, name, tenant) {
                    missing.push(format!("{name} of tenant {tenant}"));
                }
            }
        }
        if missing.is_empty() || Instant::now() >= deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        missing.is_empty(),
        "/metrics lacks what the dashboard queries:\n  {}\n/metrics:\n{text}",
        missing.join("\n  ")
    );
}

//! End-to-end specifications of Tenantry against a real PostgreSQL (the
//! throwaway cluster `make test` starts), connected as the service's role.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail loudly, like the tests"
)]

mod accounts;
mod admin;
mod citus;
mod cli;
mod console;
mod console_browser;
mod console_browser_walkthrough;
mod console_model;
mod console_overview;
mod console_tenants;
mod contract;
mod dashboard;
mod docs;
mod doctor;
mod domains;
mod environment;
mod faults;
mod guard;
mod health;
mod http;
mod idempotency;
mod import;
mod import_api;
mod limits;
mod members;
mod metrics;
mod migrations;
mod operations;
mod parsers;
mod pipeline;
mod placement;
mod plans;
mod pool_hygiene;
mod quotas;
mod retention;
mod retention_pace;
mod rls;
mod roles;
mod rolling;
mod security;
mod settings;
mod tenancy;
mod tenant_plane;
mod tokens;
mod traces;
mod usage;
mod webhooks;

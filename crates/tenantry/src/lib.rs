//! The `tenantry` service as a library: its [`Settings`](settings::Settings)
//! and the [`Application`] that `tenantry serve` runs — built the same way
//! by `main` and by the tests, so the tests run the isolation guard, the
//! background housekeeping and the shutdown sequence exactly as production
//! does.

pub mod app;
pub mod settings;
pub mod telemetry;

pub use app::{Application, BuildError};

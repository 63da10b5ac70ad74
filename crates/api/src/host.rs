//! Host names: see `tenantry_core::host` (the one implementation, shared
//! with custom domains).

pub use tenantry_core::host::*;

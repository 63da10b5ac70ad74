//! The tenant plane over HTTP: isolation, scopes, the tenant gate, addressing, errors.

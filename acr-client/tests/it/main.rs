//! acr-client integration tests: one binary, one module per area.

mod acr;
mod content;
mod interop;
mod layout;

//! acr-client integration tests: one binary, one module per area.

mod content;
mod interop;
mod layout;

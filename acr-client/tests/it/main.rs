//! acr-client integration tests: one binary, one module per area.

mod acr;
mod auth_edge;
mod content;
mod graph;
mod interop;
mod layout;

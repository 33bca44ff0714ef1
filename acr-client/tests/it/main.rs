//! acr-client integration tests: one binary, one module per area.

mod acr;
mod auth_edge;
mod content;
mod faults;
mod graph;
mod hostile;
mod interop;
mod layout;
mod management;

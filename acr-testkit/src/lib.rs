//! Test support for the workspace (not published): real parts to test against.
//!
//! Sits beside the layers, used only by tests, `xtask` and the demo. [`Registry`] starts
//! Debian's `docker-registry` (CNCF distribution 2.8) on a free loopback port with a temporary
//! storage directory, in anonymous, htpasswd basic-auth, token or TLS mode, and stops it on
//! drop. Without features it depends on nothing but std, so `xtask` stays cheap to compile.
//!
//! With the `server` feature it also provides the servers that token mode needs:
//! `TokenServer` (distribution token auth: users, grants, refresh tokens) and `AcrEmulator`
//! (Azure Container Registry's `/oauth2/exchange` and `/oauth2/token`, a fake AAD, and a
//! reverse proxy to a real docker-registry that trusts the emulator's tokens), both with
//! programmable faults and counters (`Faults`, `Stats`).
//!
//! ```no_run
//! use acr_testkit::{Registry, RegistryOptions};
//! let registry = Registry::start(RegistryOptions::default())?;
//! println!("registry at {}", registry.host());
//! # Ok::<(), acr_testkit::Error>(())
//! ```
#![forbid(unsafe_code)]

mod registry;
#[cfg(feature = "server")]
mod server;

pub use registry::{
    Auth, BASIC_PASSWORD, BASIC_USER, Error, Registry, RegistryOptions, TokenAuth,
    ensure_docker_registry,
};
#[cfg(feature = "server")]
pub use server::{
    ACR_AUDIENCE, ACR_ISSUER, AadToken, AcrEmulator, AcrEmulatorOptions, DEFAULT_TENANT, FakeAad,
    Fault, FaultAction, FaultPlan, FaultProxy, Faults, Grant, Identity, KeyId, Listener,
    NULL_GUID_USER, ProxyStats, SeenRequest, Stats, TokenServer, TokenServerOptions, User,
};

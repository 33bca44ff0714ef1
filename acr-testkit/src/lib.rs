//! Test support for the workspace (not published): real parts to test against.
//!
//! Sits beside the layers, used only by tests, `xtask` and the demo. [`Registry`] starts
//! Debian's `docker-registry` (CNCF distribution 2.8) on a free loopback port with a temporary
//! storage directory, in anonymous, htpasswd basic-auth or TLS mode, and stops it on drop.
//! It depends on nothing but std, so `xtask` stays cheap to compile.
//!
//! ```no_run
//! use acr_testkit::{Registry, RegistryOptions};
//! let registry = Registry::start(RegistryOptions::default())?;
//! println!("registry at {}", registry.host());
//! # Ok::<(), acr_testkit::Error>(())
//! ```
#![forbid(unsafe_code)]

mod registry;

pub use registry::{
    Auth, BASIC_PASSWORD, BASIC_USER, Error, Registry, RegistryOptions, ensure_docker_registry,
};

//! The registry token server and the ACR emulator (feature `server`).

mod acr;
mod fault_proxy;
mod faults;
mod grants;
mod http;
mod jwt;
mod keys;
mod token_server;

pub use acr::{
    ACR_AUDIENCE, ACR_ISSUER, AadToken, AcrEmulator, AcrEmulatorOptions, DEFAULT_TENANT, FakeAad,
    Identity, NULL_GUID_USER,
};
pub use fault_proxy::{
    Fault, FaultAction, FaultPlan, FaultProxy, Listener, ProxyStats, SeenRequest,
};
pub use faults::{Faults, Stats};
pub use grants::{Grant, User};
pub use jwt::KeyId;
pub use token_server::{TokenServer, TokenServerOptions};

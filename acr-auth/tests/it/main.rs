//! acr-auth integration tests.

mod aad;
mod docker_config;
mod recorded;

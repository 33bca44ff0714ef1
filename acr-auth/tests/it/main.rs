//! acr-auth integration tests.

mod docker_config;

pub mod c_build;
pub mod connect_proxy;
pub mod full_listener;
pub mod https_server;
pub mod mtls_server;
pub mod pki;
pub mod script_server;

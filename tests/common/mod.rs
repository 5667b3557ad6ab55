pub mod pki;
pub mod script_server;

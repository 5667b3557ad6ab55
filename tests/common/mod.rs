pub mod c_build;
pub mod pki;
pub mod script_server;

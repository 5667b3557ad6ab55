pub mod script_server;

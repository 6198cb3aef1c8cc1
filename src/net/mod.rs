//! Network layer: the pooled HTTP client (`client.rs`, its bindings in
//! `pyclient.rs`, JSON decoding straight to Python objects in `pyjson.rs`,
//! connection accounting in `sockets.rs`), and the rate limiter and circuit
//! breaker it uses, which are also public on their own (`py.rs`).

pub mod breaker;
pub mod client;
pub mod limiter;
pub mod py;
pub mod pyclient;
pub mod pyjson;
pub mod sockets;

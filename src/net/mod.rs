//! Network layer: rate limiting and circuit breaking (used standalone and,
//! next, by the pooled HTTP client).

pub mod breaker;
pub mod client;
pub mod limiter;
pub mod py;
pub mod pyclient;
pub mod pyjson;
pub mod sockets;

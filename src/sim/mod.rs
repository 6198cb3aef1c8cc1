//! A simulated exchange with Binance spot's REST and WebSocket rules, on the
//! shared tokio runtime, for tests and benchmarks on loopback.
//!
//! Layout, bottom up: `price` (the seeded price process, symbols, klines),
//! `book` (order books and their update ids), `limits` (weights, windows,
//! bans), `sign` (HMAC-SHA256 request signatures), `orders` (accounts and
//! matching), `config` (settings, clock, faults, counters), `state` (what the
//! tasks share), `market` (the driver task and stream events), `rest` and
//! `ws` (the endpoints), `server` (listener, start and stop), and `py` (the
//! Python binding).

pub mod book;
pub mod config;
pub mod limits;
pub mod market;
pub mod orders;
pub mod price;
pub mod py;
pub mod rest;
pub mod server;
pub mod sign;
pub mod state;
pub mod ws;

pub use config::{Faults, SimConfig};
pub use server::Sim;

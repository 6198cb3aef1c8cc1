//! The exchange client (Binance spot REST): request signing, the weight
//! budget checked before sending, server-time offset, safe order retries and
//! klines parsed straight into columns, and a local order book. `py.rs` holds the Python wrappers;
//! `ferrotick.exchange` the config and the seed's client class.

pub mod book;
pub mod budget;
pub mod klines;
pub mod py;
pub mod rest;
pub mod sign;
pub mod stream;

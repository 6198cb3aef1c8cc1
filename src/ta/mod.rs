//! Technical-indicator kernels: TA-Lib-exact state machines, whole-array
//! runs with the GIL released, multi-series batches on the compute (rayon)
//! pool, and O(1) streams.

pub mod batch;
pub mod buffers;
pub mod cols;
pub mod fast;
pub mod kernels;
pub mod ma;
pub mod py;
pub mod pystream;
pub mod registry;
pub mod specs;

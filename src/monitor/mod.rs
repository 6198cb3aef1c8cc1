//! Performance monitor: a lock-free metrics registry with Prometheus
//! buckets and HDR-style percentile sketches, exposition in the Prometheus
//! and OpenMetrics formats, and the operation tracker behind
//! `ferrotick.monitor.AsyncPerformanceMonitor`.

pub mod expo;
pub mod py;
pub mod registry;
pub mod sketch;

//! Metrics registry: counters, gauges, histograms and summaries per name
//! and label set, recorded without a global lock.
//!
//! A metric holds its series in a map keyed by a hash of the label values
//! (read-locked for lookups, write-locked only to add a series). Recording
//! into a series is atomic adds. Each metric caps its number of series;
//! label sets beyond the cap record into a shared sink that is never
//! exported, and are counted as dropped.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::sketch::{AtomicF64, Sketch, SketchOpts, WindowSketch};
use crate::errors::{FtError, FtResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// prometheus_client's default buckets.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

pub const DEFAULT_MAX_SERIES: usize = 1000;

/// One time series: a label set of one metric.
pub struct Series {
    pub labels: Box<[String]>,
    /// Counter/gauge value; histogram/summary sum.
    pub value: AtomicF64,
    pub count: AtomicU64,
    /// Histogram: per-bucket (non-cumulative) counts, the last is +Inf.
    pub buckets: Box<[AtomicU64]>,
    pub sketch: Option<Sketch>,
    pub window: Option<WindowSketch>,
    pub created: f64,
}

impl Series {
    #[inline]
    pub fn inc(&self, amount: f64) {
        self.value.add(amount);
    }

    #[inline]
    pub fn set(&self, v: f64) {
        self.value.store(v);
    }

    #[inline]
    pub fn observe(&self, metric: &Metric, v: f64) {
        if !metric.bounds.is_empty() {
            let i = metric
                .bounds
                .iter()
                .position(|b| v <= *b)
                .unwrap_or(metric.bounds.len() - 1);
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.value.add(v);
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = &self.sketch {
            s.record(v);
        }
        if let Some(w) = &self.window {
            w.record(v);
        }
    }

    pub fn get(&self) -> f64 {
        self.value.load()
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Cumulative bucket counts, as exposed (`le` order).
    pub fn cumulative_buckets(&self) -> Vec<u64> {
        let mut acc = 0;
        self.buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect()
    }

    pub fn reset(&self) {
        self.value.store(0.0);
        self.count.store(0, Ordering::Relaxed);
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
        if let Some(s) = &self.sketch {
            s.reset();
        }
        if let Some(w) = &self.window {
            w.reset();
        }
    }
}

#[derive(Default)]
struct SeriesMap {
    by_hash: HashMap<u64, Vec<Arc<Series>>>,
    order: Vec<Arc<Series>>,
}

/// How a metric is declared.
#[derive(Clone, Debug)]
pub struct MetricSpec {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub label_names: Vec<String>,
    pub buckets: Vec<f64>,
    pub max_series: usize,
    pub percentiles: bool,
    pub window_minutes: u32,
    pub sketch: SketchOpts,
}

impl MetricSpec {
    pub fn new(name: &str, help: &str, kind: Kind) -> Self {
        MetricSpec {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            label_names: Vec::new(),
            buckets: DEFAULT_BUCKETS.to_vec(),
            max_series: DEFAULT_MAX_SERIES,
            percentiles: matches!(kind, Kind::Histogram | Kind::Summary),
            window_minutes: 5,
            sketch: SketchOpts::default(),
        }
    }
}

pub struct Metric {
    /// Name as exposed, without `_total` for counters.
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub label_names: Box<[String]>,
    /// Histogram upper bounds, ending with +Inf; empty for other kinds.
    pub bounds: Box<[f64]>,
    pub max_series: usize,
    percentiles: bool,
    window_minutes: u32,
    sketch_opts: SketchOpts,
    series: RwLock<SeriesMap>,
    sink: OnceLock<Arc<Series>>,
    /// Distinct label sets refused by the series cap.
    pub dropped: AtomicU64,
    dropped_seen: parking_lot::Mutex<std::collections::HashSet<u64>>,
}

pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    !name.starts_with("__") && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn hash_labels<S: AsRef<str>>(values: &[S]) -> u64 {
    let mut h = DefaultHasher::new();
    for v in values {
        v.as_ref().hash(&mut h);
        0xffu8.hash(&mut h);
    }
    h.finish()
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Metric {
    pub fn new(spec: MetricSpec) -> FtResult<Metric> {
        let mut name = spec.name.clone();
        if !valid_metric_name(&name) {
            return Err(FtError::config(format!(
                "name: invalid metric name {name:?} (must match [a-zA-Z_:][a-zA-Z0-9_:]*)"
            )));
        }
        if spec.kind == Kind::Counter {
            if let Some(stripped) = name.strip_suffix("_total") {
                name = stripped.to_string();
            }
        }
        let mut seen = std::collections::HashSet::new();
        for l in &spec.label_names {
            if !valid_label_name(l) {
                return Err(FtError::config(format!(
                    "labelnames: invalid label name {l:?} for metric {name:?}"
                )));
            }
            if (spec.kind == Kind::Histogram && l == "le")
                || (spec.kind == Kind::Summary && l == "quantile")
            {
                return Err(FtError::config(format!(
                    "labelnames: {l:?} is reserved for {} metrics ({name:?})",
                    spec.kind.as_str()
                )));
            }
            if !seen.insert(l.as_str()) {
                return Err(FtError::config(format!(
                    "labelnames: duplicate label name {l:?} for metric {name:?}"
                )));
            }
        }
        if spec.max_series == 0 {
            return Err(FtError::config("max_series must be at least 1"));
        }
        let bounds: Box<[f64]> = if spec.kind == Kind::Histogram {
            let mut b: Vec<f64> = spec.buckets.clone();
            if b.iter().any(|x| x.is_nan()) {
                return Err(FtError::config("buckets: NaN is not a bucket bound"));
            }
            if b.windows(2).any(|w| w[0] >= w[1]) {
                return Err(FtError::config(
                    "buckets: bounds must be in strictly increasing order",
                ));
            }
            if b.last() != Some(&f64::INFINITY) {
                b.push(f64::INFINITY);
            }
            if b.len() < 2 {
                return Err(FtError::config(
                    "buckets: at least one finite bound is required",
                ));
            }
            b.into()
        } else {
            Box::new([])
        };
        Ok(Metric {
            name,
            help: spec.help,
            kind: spec.kind,
            label_names: spec.label_names.into(),
            bounds,
            max_series: spec.max_series,
            percentiles: spec.percentiles,
            window_minutes: spec.window_minutes,
            sketch_opts: spec.sketch,
            series: RwLock::new(SeriesMap::default()),
            sink: OnceLock::new(),
            dropped: AtomicU64::new(0),
            dropped_seen: parking_lot::Mutex::new(std::collections::HashSet::new()),
        })
    }

    fn new_series(&self, labels: Box<[String]>) -> Series {
        let percentiles = self.percentiles && matches!(self.kind, Kind::Histogram | Kind::Summary);
        Series {
            labels,
            value: AtomicF64::new(0.0),
            count: AtomicU64::new(0),
            buckets: self.bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sketch: percentiles.then(|| Sketch::new(self.sketch_opts)),
            window: (percentiles && self.window_minutes > 0).then(|| {
                WindowSketch::new(
                    self.window_minutes,
                    SketchOpts {
                        bits: 8,
                        ..self.sketch_opts
                    },
                )
            }),
            created: now_unix(),
        }
    }

    /// The series for `values` (one per label name), created on first use.
    pub fn series<S: AsRef<str>>(&self, values: &[S]) -> FtResult<Arc<Series>> {
        if values.len() != self.label_names.len() {
            return Err(FtError::config(format!(
                "labels: metric {:?} has {} label(s) {:?}, got {} value(s)",
                self.name,
                self.label_names.len(),
                self.label_names,
                values.len()
            )));
        }
        let h = hash_labels(values);
        {
            let map = self.series.read();
            if let Some(found) = find(&map, h, values) {
                return Ok(found);
            }
        }
        let mut map = self.series.write();
        if let Some(found) = find(&map, h, values) {
            return Ok(found);
        }
        if map.order.len() >= self.max_series {
            // count each refused label set once (remembering at most 65,536
            // of them; beyond that every new one counts)
            let mut seen = self.dropped_seen.lock();
            if seen.len() >= 65_536 || seen.insert(h) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            drop(seen);
            return Ok(self
                .sink
                .get_or_init(|| Arc::new(self.new_series(Box::new([]))))
                .clone());
        }
        let s = Arc::new(self.new_series(values.iter().map(|v| v.as_ref().to_string()).collect()));
        map.by_hash.entry(h).or_default().push(s.clone());
        map.order.push(s.clone());
        Ok(s)
    }

    /// Removes the series of one label set; whether it existed. The values
    /// must be one per label name (prometheus_client's "Incorrect label
    /// count" otherwise), and a metric without label names has nothing to
    /// remove.
    pub fn remove<S: AsRef<str>>(&self, values: &[S]) -> FtResult<bool> {
        if self.label_names.is_empty() {
            return Err(FtError::config(format!(
                "labelvalues: No label names were set when constructing {}:{}",
                self.kind.as_str(),
                self.name
            )));
        }
        if values.len() != self.label_names.len() {
            return Err(FtError::config(format!(
                "labelvalues: Incorrect label count (expected {}, got {})",
                self.label_names.len(),
                values.len()
            )));
        }
        let h = hash_labels(values);
        let mut map = self.series.write();
        let before = map.order.len();
        if let Some(v) = map.by_hash.get_mut(&h) {
            v.retain(|s| !same(&s.labels, values));
        }
        map.order.retain(|s| !same(&s.labels, values));
        Ok(before != map.order.len())
    }

    /// Removes every label set. A metric without label names keeps its only
    /// series (as prometheus_client's `clear()` does): the handles bound to
    /// it go on recording into what is exposed.
    pub fn clear(&self) {
        if self.label_names.is_empty() {
            return;
        }
        let mut map = self.series.write();
        map.by_hash.clear();
        map.order.clear();
    }

    pub fn all_series(&self) -> Vec<Arc<Series>> {
        self.series.read().order.clone()
    }

    pub fn series_count(&self) -> usize {
        self.series.read().order.len()
    }

    pub fn has_percentiles(&self) -> bool {
        self.percentiles
    }
}

fn same<S: AsRef<str>>(labels: &[String], values: &[S]) -> bool {
    labels.len() == values.len() && labels.iter().zip(values).all(|(a, b)| a == b.as_ref())
}

fn find<S: AsRef<str>>(map: &SeriesMap, h: u64, values: &[S]) -> Option<Arc<Series>> {
    map.by_hash
        .get(&h)
        .and_then(|v| v.iter().find(|s| same(&s.labels, values)).cloned())
}

/// A set of metrics exposed together.
#[derive(Default)]
pub struct Registry {
    metrics: RwLock<Vec<Arc<Metric>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The series names a metric exposes or clashes with, as
    /// prometheus_client's `CollectorRegistry._get_names` lists them: the
    /// family name and the suffixes of its type (OpenMetrics' `_created`
    /// included).
    fn sample_names(m: &Metric) -> Vec<String> {
        let suffixes: &[&str] = match m.kind {
            Kind::Counter => &["", "_total", "_created"],
            Kind::Gauge => &[""],
            Kind::Histogram => &["", "_bucket", "_sum", "_count", "_created"],
            Kind::Summary => &["", "_sum", "_count", "_created"],
        };
        suffixes.iter().map(|s| format!("{}{s}", m.name)).collect()
    }

    pub fn register(&self, metric: Arc<Metric>) -> FtResult<()> {
        let mut ms = self.metrics.write();
        let new_names = Self::sample_names(&metric);
        let mut dups: Vec<&String> = Vec::new();
        for m in ms.iter() {
            let names = Self::sample_names(m);
            dups.extend(new_names.iter().filter(|n| names.contains(n)));
        }
        if !dups.is_empty() {
            dups.sort();
            dups.dedup();
            let listed: Vec<String> = dups.iter().map(|d| format!("'{d}'")).collect();
            return Err(FtError::config(format!(
                "name: Duplicated timeseries in CollectorRegistry: {{{}}}",
                listed.join(", ")
            )));
        }
        ms.push(metric);
        Ok(())
    }

    pub fn unregister(&self, name: &str) -> bool {
        let mut ms = self.metrics.write();
        let before = ms.len();
        ms.retain(|m| m.name != name && format!("{}_total", m.name) != name);
        before != ms.len()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Metric>> {
        self.metrics
            .read()
            .iter()
            .find(|m| {
                m.name == name || (m.kind == Kind::Counter && format!("{}_total", m.name) == name)
            })
            .cloned()
    }

    pub fn metrics(&self) -> Vec<Arc<Metric>> {
        self.metrics.read().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(valid_metric_name("http_requests_total"));
        assert!(valid_metric_name("a:b_c"));
        assert!(!valid_metric_name("1abc"));
        assert!(!valid_metric_name("a-b"));
        assert!(!valid_metric_name(""));
        assert!(valid_label_name("method"));
        assert!(!valid_label_name("__reserved"));
        assert!(!valid_label_name("a.b"));
        let mut spec = MetricSpec::new("h", "", Kind::Histogram);
        spec.label_names = vec!["le".into()];
        assert!(Metric::new(spec).is_err());
    }

    #[test]
    fn histogram_buckets_and_series() {
        let mut spec = MetricSpec::new("lat_seconds", "latency", Kind::Histogram);
        spec.label_names = vec!["op".into()];
        spec.buckets = vec![0.1, 1.0];
        let m = Metric::new(spec).expect("valid");
        let s = m.series(&["a"]).expect("series");
        for v in [0.05, 0.1, 0.5, 2.0] {
            s.observe(&m, v);
        }
        assert_eq!(s.cumulative_buckets(), vec![2, 3, 4]);
        assert_eq!(s.count(), 4);
        assert!((s.get() - 2.65).abs() < 1e-12);
        assert!(Arc::ptr_eq(&s, &m.series(&["a"]).expect("again")));
        assert!(m.series(&["a", "b"]).is_err());
    }

    #[test]
    fn cardinality_is_capped() {
        let mut spec = MetricSpec::new("c", "", Kind::Counter);
        spec.label_names = vec!["k".into()];
        spec.max_series = 3;
        let m = Metric::new(spec).expect("valid");
        for i in 0..10 {
            m.series(&[i.to_string()]).expect("series").inc(1.0);
        }
        assert_eq!(m.series_count(), 3);
        assert_eq!(m.dropped.load(Ordering::Relaxed), 7);
    }

    #[test]
    fn clear_keeps_the_series_of_an_unlabelled_metric() {
        for kind in [Kind::Counter, Kind::Gauge, Kind::Histogram, Kind::Summary] {
            let m = Metric::new(MetricSpec::new("m", "", kind)).expect("valid");
            let s = m.series::<&str>(&[]).expect("series");
            m.clear();
            assert_eq!(m.series_count(), 1, "{kind:?}");
            assert!(Arc::ptr_eq(&s, &m.series::<&str>(&[]).expect("again")));
        }
        let mut spec = MetricSpec::new("l", "", Kind::Counter);
        spec.label_names = vec!["k".into()];
        let m = Metric::new(spec).expect("valid");
        m.series(&["a"]).expect("series");
        m.series(&["b"]).expect("series");
        m.clear();
        assert_eq!(m.series_count(), 0);
    }

    #[test]
    fn remove_checks_the_label_count() {
        let mut spec = MetricSpec::new("c", "", Kind::Counter);
        spec.label_names = vec!["a".into(), "b".into()];
        let m = Metric::new(spec).expect("valid");
        m.series(&["1", "2"]).expect("series");
        for bad in [&["1"][..], &["1", "2", "3"][..], &[][..]] {
            let e = m.remove(bad).expect_err("wrong count");
            assert!(e.message.contains("Incorrect label count"), "{}", e.message);
        }
        assert_eq!(m.series_count(), 1);
        assert!(m.remove(&["1", "2"]).expect("removed"));
        assert!(!m.remove(&["1", "2"]).expect("already gone"));
        let plain = Metric::new(MetricSpec::new("p", "", Kind::Gauge)).expect("valid");
        plain.series::<&str>(&[]).expect("series");
        let e = plain.remove::<&str>(&[]).expect_err("no label names");
        assert!(e.message.contains("No label names"), "{}", e.message);
        assert_eq!(plain.series_count(), 1);
    }

    #[test]
    fn names_clashing_with_generated_series_are_rejected() {
        let metric = |name: &str, kind| {
            Arc::new(Metric::new(MetricSpec::new(name, "", kind)).expect("valid"))
        };
        for (kind, name, other_kind, other) in [
            (Kind::Counter, "c", Kind::Gauge, "c_created"),
            (Kind::Counter, "c", Kind::Gauge, "c_total"),
            (Kind::Counter, "c", Kind::Gauge, "c"),
            (Kind::Histogram, "h", Kind::Gauge, "h_created"),
            (Kind::Histogram, "h", Kind::Gauge, "h_bucket"),
            (Kind::Histogram, "h", Kind::Counter, "h_count"),
            (Kind::Histogram, "h", Kind::Gauge, "h_sum"),
            (Kind::Summary, "s", Kind::Gauge, "s_created"),
            (Kind::Summary, "s", Kind::Gauge, "s_count"),
            (Kind::Summary, "s", Kind::Gauge, "s_sum"),
        ] {
            // in either order
            for (a, b) in [
                ((kind, name), (other_kind, other)),
                ((other_kind, other), (kind, name)),
            ] {
                let r = Registry::new();
                r.register(metric(a.1, a.0)).expect("first");
                let e = r.register(metric(b.1, b.0)).expect_err("clash");
                assert!(
                    e.message
                        .contains("Duplicated timeseries in CollectorRegistry"),
                    "{}",
                    e.message
                );
                assert_eq!(r.metrics().len(), 1);
            }
        }
        // a counter named c_created exposes c_created_total: no clash with c
        let r = Registry::new();
        r.register(metric("c", Kind::Gauge)).expect("gauge");
        r.register(metric("c_created", Kind::Counter))
            .expect("counter");
        let e = r
            .register(metric("c_created", Kind::Gauge))
            .expect_err("clash");
        assert!(e.message.ends_with("{'c_created'}"), "{}", e.message);
    }

    #[test]
    fn duplicates_are_rejected() {
        let r = Registry::new();
        let c = Metric::new(MetricSpec::new("x_total", "", Kind::Counter)).expect("valid");
        r.register(Arc::new(c)).expect("first");
        let g = Metric::new(MetricSpec::new("x_total", "", Kind::Gauge)).expect("valid");
        assert!(r.register(Arc::new(g)).is_err());
    }
}

//! Exposition: Prometheus text format 0.0.4 and OpenMetrics 1.0.

use std::fmt::Write as _;
use std::sync::Arc;

use super::registry::{Kind, Metric};

pub const CONTENT_TYPE_LATEST: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Quantiles exposed for summaries and reported in snapshots.
pub const QUANTILES: &[f64] = &[0.5, 0.9, 0.99, 0.999];

/// A metric family produced at collection time (runtime stats, collectors).
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: String,
    pub samples: Vec<Sample>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Appended to the family name (`_total`, `_bucket`, ...), may be empty.
    pub suffix: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Formats a float as Prometheus clients do (Python's repr style).
pub fn fmt_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v == v.trunc() && v.abs() < 1e16 {
        let _ = write!(out, "{v:.1}");
    } else {
        let _ = write!(out, "{v:?}");
    }
}

fn escape_help(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_labels(
    out: &mut String,
    names: &[String],
    values: &[String],
    extra: Option<(&str, &str)>,
) {
    if names.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (n, v) in names.iter().zip(values) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        escape_value(out, v);
        out.push('"');
    }
    if let Some((n, v)) = extra {
        if !first {
            out.push(',');
        }
        out.push_str(n);
        out.push_str("=\"");
        out.push_str(v);
        out.push('"');
    }
    out.push('}');
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_help(out, help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

fn sample_line(
    out: &mut String,
    name: &str,
    suffix: &str,
    names: &[String],
    values: &[String],
    extra: Option<(&str, &str)>,
    v: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    write_labels(out, names, values, extra);
    out.push(' ');
    fmt_float(out, v);
    out.push('\n');
}

fn le_string(b: f64) -> String {
    let mut s = String::new();
    fmt_float(&mut s, b);
    s
}

fn q_string(q: f64) -> String {
    let mut s = String::new();
    fmt_float(&mut s, q);
    s
}

/// Renders metrics and extra families. `openmetrics` switches to the
/// OpenMetrics 1.0 dialect (family names without `_total`, `# EOF`).
pub fn render(metrics: &[Arc<Metric>], extra: &[Family], openmetrics: bool) -> String {
    let mut out = String::with_capacity(metrics.len() * 256 + 64);
    let les: Vec<Vec<String>> = metrics
        .iter()
        .map(|m| m.bounds.iter().map(|b| le_string(*b)).collect())
        .collect();
    let qs: Vec<String> = QUANTILES.iter().map(|q| q_string(*q)).collect();
    for (m, les) in metrics.iter().zip(&les) {
        let series = m.all_series();
        match m.kind {
            Kind::Counter => {
                let fam = if openmetrics {
                    m.name.clone()
                } else {
                    format!("{}_total", m.name)
                };
                header(&mut out, &fam, &m.help, "counter");
                for s in &series {
                    sample_line(
                        &mut out,
                        &m.name,
                        "_total",
                        &m.label_names,
                        &s.labels,
                        None,
                        s.get(),
                    );
                    if openmetrics {
                        sample_line(
                            &mut out,
                            &m.name,
                            "_created",
                            &m.label_names,
                            &s.labels,
                            None,
                            s.created,
                        );
                    }
                }
            }
            Kind::Gauge => {
                header(&mut out, &m.name, &m.help, "gauge");
                for s in &series {
                    sample_line(
                        &mut out,
                        &m.name,
                        "",
                        &m.label_names,
                        &s.labels,
                        None,
                        s.get(),
                    );
                }
            }
            Kind::Histogram => {
                header(&mut out, &m.name, &m.help, "histogram");
                for s in &series {
                    let cum = s.cumulative_buckets();
                    for (le, c) in les.iter().zip(&cum) {
                        sample_line(
                            &mut out,
                            &m.name,
                            "_bucket",
                            &m.label_names,
                            &s.labels,
                            Some(("le", le)),
                            *c as f64,
                        );
                    }
                    let count = cum.last().copied().unwrap_or(0);
                    sample_line(
                        &mut out,
                        &m.name,
                        "_count",
                        &m.label_names,
                        &s.labels,
                        None,
                        count as f64,
                    );
                    sample_line(
                        &mut out,
                        &m.name,
                        "_sum",
                        &m.label_names,
                        &s.labels,
                        None,
                        s.get(),
                    );
                    if openmetrics {
                        sample_line(
                            &mut out,
                            &m.name,
                            "_created",
                            &m.label_names,
                            &s.labels,
                            None,
                            s.created,
                        );
                    }
                }
            }
            Kind::Summary => {
                header(&mut out, &m.name, &m.help, "summary");
                for s in &series {
                    if let Some(sk) = &s.sketch {
                        if sk.count() > 0 {
                            for (q, qs) in QUANTILES.iter().zip(&qs) {
                                sample_line(
                                    &mut out,
                                    &m.name,
                                    "",
                                    &m.label_names,
                                    &s.labels,
                                    Some(("quantile", qs)),
                                    sk.quantile(*q),
                                );
                            }
                        }
                    }
                    sample_line(
                        &mut out,
                        &m.name,
                        "_count",
                        &m.label_names,
                        &s.labels,
                        None,
                        s.count() as f64,
                    );
                    sample_line(
                        &mut out,
                        &m.name,
                        "_sum",
                        &m.label_names,
                        &s.labels,
                        None,
                        s.get(),
                    );
                    if openmetrics {
                        sample_line(
                            &mut out,
                            &m.name,
                            "_created",
                            &m.label_names,
                            &s.labels,
                            None,
                            s.created,
                        );
                    }
                }
            }
        }
    }
    // Series dropped by the cardinality cap, so that they are visible.
    let dropped: Vec<(&str, u64)> = metrics
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.dropped.load(std::sync::atomic::Ordering::Relaxed),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    if !dropped.is_empty() {
        let fam = if openmetrics {
            "ferrotick_metric_series_dropped"
        } else {
            "ferrotick_metric_series_dropped_total"
        };
        header(
            &mut out,
            fam,
            "Label sets not recorded because the metric reached its series cap.",
            "counter",
        );
        let names = ["metric".to_string()];
        for (name, n) in dropped {
            sample_line(
                &mut out,
                "ferrotick_metric_series_dropped",
                "_total",
                &names,
                &[name.to_string()],
                None,
                n as f64,
            );
        }
    }
    for f in extra {
        let fam = if f.kind == Kind::Counter && !openmetrics {
            format!("{}_total", f.name)
        } else {
            f.name.clone()
        };
        header(&mut out, &fam, &f.help, f.kind.as_str());
        for s in &f.samples {
            out.push_str(&f.name);
            out.push_str(&s.suffix);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push_str("=\"");
                    escape_value(&mut out, v);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            fmt_float(&mut out, s.value);
            out.push('\n');
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::registry::MetricSpec;
    use super::*;

    #[test]
    fn floats_format_like_prometheus_clients() {
        let mut s = String::new();
        for v in [1.0, 0.005, f64::INFINITY, f64::NAN, 2.5e-7, -3.0] {
            fmt_float(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "1.0 0.005 +Inf NaN 2.5e-7 -3.0 ");
    }

    #[test]
    fn renders_counter_and_histogram() {
        let mut c = MetricSpec::new("requests_total", "Requests \"served\"\nall", Kind::Counter);
        c.label_names = vec!["path".into()];
        let c = Arc::new(Metric::new(c).expect("valid"));
        c.series(&["/a\"b"]).expect("series").inc(3.0);
        let mut h = MetricSpec::new("lat", "Latency", Kind::Histogram);
        h.buckets = vec![0.1, 1.0];
        let h = Arc::new(Metric::new(h).expect("valid"));
        let hs = h.series::<&str>(&[]).expect("series");
        hs.observe(&h, 0.05);
        hs.observe(&h, 5.0);
        let text = render(&[c, h], &[], false);
        assert!(
            text.contains("# HELP requests_total Requests \"served\"\\nall\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE requests_total counter\n"));
        assert!(
            text.contains("requests_total{path=\"/a\\\"b\"} 3.0\n"),
            "{text}"
        );
        assert!(text.contains("lat_bucket{le=\"0.1\"} 1.0\n"));
        assert!(text.contains("lat_bucket{le=\"+Inf\"} 2.0\n"));
        assert!(text.contains("lat_count 2.0\n"));
        assert!(text.contains("lat_sum 5.05\n"));
    }
}

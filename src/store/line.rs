//! InfluxDB line protocol, encoded into one byte buffer.
//!
//! A line is `measurement[,tag=value...] field=value[,field=value...] [timestamp]`.
//! Escaping follows the specification: in measurements a backslash goes before
//! commas and spaces; in tag keys, tag values and field keys before commas,
//! equals signs and spaces; string field values are double-quoted with a
//! backslash before double quotes and backslashes. Newlines cannot be escaped
//! and are rejected. A name ending in a backslash would escape the separator
//! after it, and the 1.x parser reads a backslash before an escaped character
//! in a measurement or field key as part of the escape, so those are rejected
//! too (in tag keys and values it round-trips). Integers carry the `i` suffix; floats are
//! written in their shortest round-trip form and must be finite.

/// Which server API the lines are for: 2.x reserves names starting with `_`,
/// 1.x treats `time` as the timestamp column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    V1,
    V2,
}

/// Timestamp precision, as the `precision` query parameter names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Ns,
    Us,
    Ms,
    S,
}

impl Precision {
    pub fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "ns" | "n" => Precision::Ns,
            "us" | "u" => Precision::Us,
            "ms" => Precision::Ms,
            "s" => Precision::S,
            _ => return None,
        })
    }

    /// The value of the `precision` parameter: 1.x and 2.x both take these.
    pub fn query_name(self, target: Target) -> &'static str {
        match (self, target) {
            (Precision::Ns, Target::V1) => "n",
            (Precision::Us, Target::V1) => "u",
            (Precision::Ns, Target::V2) => "ns",
            (Precision::Us, Target::V2) => "us",
            (Precision::Ms, _) => "ms",
            (Precision::S, _) => "s",
        }
    }

    /// Units of this precision per second.
    pub fn per_second(self) -> i64 {
        match self {
            Precision::Ns => 1_000_000_000,
            Precision::Us => 1_000_000,
            Precision::Ms => 1_000,
            Precision::S => 1,
        }
    }
}

/// What kind of name is being written: decides the escaped characters and
/// the wording of errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Measurement,
    TagKey,
    TagValue,
    FieldKey,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Measurement => "measurement",
            Part::TagKey => "tag key",
            Part::TagValue => "tag value",
            Part::FieldKey => "field key",
        }
    }

    fn special(self, b: u8) -> bool {
        match self {
            Part::Measurement => b == b',' || b == b' ',
            _ => b == b',' || b == b'=' || b == b' ',
        }
    }
}

/// Writes `s` escaped for `part`, or explains why it cannot be written.
pub fn write_escaped(out: &mut Vec<u8>, part: Part, s: &str, target: Target) -> Result<(), String> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(format!("{} is empty", part.name()));
    }
    if target == Target::V2 && part != Part::TagValue && b[0] == b'_' {
        return Err(format!(
            "{} {:?} starts with '_', which InfluxDB 2.x reserves",
            part.name(),
            s
        ));
    }
    if target == Target::V1 && matches!(part, Part::TagKey | Part::FieldKey) && s == "time" {
        return Err(format!(
            "{} \"time\" is the timestamp column in InfluxDB 1.x",
            part.name()
        ));
    }
    if part == Part::Measurement && b[0] == b'#' {
        return Err(format!(
            "measurement {s:?} starts with '#', which marks a comment line"
        ));
    }
    out.reserve(b.len() + 4);
    let mut prev_backslash = false;
    for &c in b {
        if c == b'\n' || c == b'\r' {
            return Err(format!("{} {:?} contains a newline", part.name(), s));
        }
        if part.special(c) {
            if prev_backslash && matches!(part, Part::Measurement | Part::FieldKey) {
                return Err(format!(
                    "{} {:?} has a backslash before {:?}, which line protocol cannot represent",
                    part.name(),
                    s,
                    c as char
                ));
            }
            out.push(b'\\');
        }
        out.push(c);
        prev_backslash = c == b'\\';
    }
    if prev_backslash {
        return Err(format!(
            "{} {:?} ends with a backslash, which line protocol cannot represent",
            part.name(),
            s
        ));
    }
    Ok(())
}

/// Lines under construction in one buffer. `begin` starts a line, `tag` and
/// the `field_*` calls add to it, `end` finishes it; on any error, `abort`
/// takes the partial line back out.
pub struct LineBuf {
    pub buf: Vec<u8>,
    pub target: Target,
    line_start: usize,
    fields: usize,
    pub lines: usize,
}

impl LineBuf {
    pub fn new(target: Target, capacity: usize) -> LineBuf {
        LineBuf {
            buf: Vec::with_capacity(capacity),
            target,
            line_start: 0,
            fields: 0,
            lines: 0,
        }
    }

    pub fn begin(&mut self, measurement: &str) -> Result<(), String> {
        self.line_start = self.buf.len();
        self.fields = 0;
        write_escaped(&mut self.buf, Part::Measurement, measurement, self.target)
    }

    /// Starts a line with an already escaped measurement and tag set.
    pub fn begin_raw(&mut self, prefix: &[u8]) {
        self.line_start = self.buf.len();
        self.fields = 0;
        self.buf.extend_from_slice(prefix);
    }

    /// Adds a tag; tags must come before the first field (callers sort them by
    /// key, the order the server stores them in).
    pub fn tag(&mut self, key: &str, value: &str) -> Result<(), String> {
        debug_assert_eq!(self.fields, 0);
        self.buf.push(b',');
        write_escaped(&mut self.buf, Part::TagKey, key, self.target)?;
        self.buf.push(b'=');
        write_escaped(&mut self.buf, Part::TagValue, value, self.target)
            .map_err(|e| format!("tag {key:?}: {e}"))
    }

    fn field_key(&mut self, key: &str) -> Result<(), String> {
        self.buf.push(if self.fields == 0 { b' ' } else { b',' });
        self.fields += 1;
        write_escaped(&mut self.buf, Part::FieldKey, key, self.target)?;
        self.buf.push(b'=');
        Ok(())
    }

    pub fn field_f64(&mut self, key: &str, v: f64) -> Result<(), String> {
        if !v.is_finite() {
            return Err(format!("field {key:?} is {v}, which InfluxDB cannot store"));
        }
        self.field_key(key)?;
        push_f64(&mut self.buf, v);
        Ok(())
    }

    pub fn field_i64(&mut self, key: &str, v: i64) -> Result<(), String> {
        self.field_key(key)?;
        push_i64(&mut self.buf, v);
        self.buf.push(b'i');
        Ok(())
    }

    pub fn field_bool(&mut self, key: &str, v: bool) -> Result<(), String> {
        self.field_key(key)?;
        self.buf
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
        Ok(())
    }

    pub fn field_str(&mut self, key: &str, v: &str) -> Result<(), String> {
        if v.contains(['\n', '\r']) {
            return Err(format!("string field {key:?} contains a newline"));
        }
        self.field_key(key)?;
        self.buf.reserve(v.len() + 2);
        self.buf.push(b'"');
        for &c in v.as_bytes() {
            if c == b'"' || c == b'\\' {
                self.buf.push(b'\\');
            }
            self.buf.push(c);
        }
        self.buf.push(b'"');
        Ok(())
    }

    /// Finishes the line, with a timestamp in the batch's precision or none
    /// (the server's clock).
    pub fn end(&mut self, ts: Option<i64>) -> Result<(), String> {
        if self.fields == 0 {
            return Err("a point needs at least one field".into());
        }
        if let Some(t) = ts {
            self.buf.push(b' ');
            push_i64(&mut self.buf, t);
        }
        self.buf.push(b'\n');
        self.lines += 1;
        Ok(())
    }

    pub fn abort(&mut self) {
        self.buf.truncate(self.line_start);
        self.fields = 0;
    }
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    let mut tmp = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&tmp[i..]);
}

fn push_f64(out: &mut Vec<u8>, v: f64) {
    use std::io::Write;
    // Display gives the shortest digits that parse back to the same value.
    let _ = write!(out, "{v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(f: impl FnOnce(&mut LineBuf) -> Result<(), String>) -> Result<String, String> {
        let mut b = LineBuf::new(Target::V1, 64);
        f(&mut b)?;
        Ok(String::from_utf8(b.buf).unwrap())
    }

    #[test]
    fn plain_line() {
        let s = line(|b| {
            b.begin("trades")?;
            b.tag("side", "BUY")?;
            b.tag("symbol", "BTCUSDT")?;
            b.field_f64("price", 45000.5)?;
            b.field_i64("n", -3)?;
            b.field_bool("maker", true)?;
            b.field_str("note", "hi")?;
            b.end(Some(1_700_000_000_000))
        })
        .unwrap();
        assert_eq!(
            s,
            "trades,side=BUY,symbol=BTCUSDT price=45000.5,n=-3i,maker=true,note=\"hi\" 1700000000000\n"
        );
    }

    #[test]
    fn escaping_per_part() {
        let s = line(|b| {
            b.begin("m e,a=s")?;
            b.tag("t k,=", "v a,l=ue")?;
            b.field_str("f k,=", "say \"hi\" \\ there")?;
            b.end(None)
        })
        .unwrap();
        assert_eq!(
            s,
            "m\\ e\\,a=s,t\\ k\\,\\==v\\ a\\,l\\=ue f\\ k\\,\\==\"say \\\"hi\\\" \\\\ there\"\n"
        );
    }

    #[test]
    fn floats_round_trip_and_integers_at_the_limits() {
        let s = line(|b| {
            b.begin("m")?;
            b.field_f64("a", 0.1)?;
            b.field_f64("b", 1.0)?;
            b.field_f64("c", -2.5e-7)?;
            b.field_i64("d", i64::MIN)?;
            b.field_i64("e", i64::MAX)?;
            b.end(Some(-5))
        })
        .unwrap();
        assert_eq!(
            s,
            "m a=0.1,b=1,c=-0.00000025,d=-9223372036854775808i,e=9223372036854775807i -5\n"
        );
        let c: f64 = "-0.00000025".parse().unwrap();
        assert_eq!(c, -2.5e-7);
    }

    #[test]
    fn bad_points_are_refused_with_the_reason() {
        let err = |f: &dyn Fn(&mut LineBuf) -> Result<(), String>| {
            let mut b = LineBuf::new(Target::V1, 8);
            f(&mut b).unwrap_err()
        };
        assert!(err(&|b| b.field_f64("x", f64::NAN)).contains("NaN"));
        assert!(err(&|b| b.field_f64("x", f64::INFINITY)).contains("inf"));
        assert!(err(&|b| {
            b.begin("m")?;
            b.end(None)
        })
        .contains("at least one field"));
        assert!(err(&|b| b.begin("a\nb")).contains("newline"));
        assert!(err(&|b| b.field_str("k", "a\nb")).contains("newline"));
        assert!(err(&|b| b.begin("")).contains("empty"));
        assert!(err(&|b| {
            b.begin("m")?;
            b.tag("time", "x")
        })
        .contains("timestamp column"));
        assert!(err(&|b| {
            b.begin("m")?;
            b.tag("k", "a\\")
        })
        .contains("ends with a backslash"));
        assert!(err(&|b| {
            b.begin("m")?;
            b.field_i64("a\\=b", 1)
        })
        .contains("backslash before"));
        assert!(err(&|b| b.begin("#m")).contains("comment"));
        let mut v2 = LineBuf::new(Target::V2, 8);
        assert!(v2.begin("_m").unwrap_err().contains("reserves"));
        v2.begin("m").unwrap();
        // `time` is an ordinary name for 2.x; `_x` is not
        v2.tag("time", "x").unwrap();
        assert!(v2.field_i64("_f", 1).unwrap_err().contains("reserves"));
    }

    #[test]
    fn abort_removes_the_partial_line() {
        let mut b = LineBuf::new(Target::V1, 64);
        b.begin("m").unwrap();
        b.field_i64("a", 1).unwrap();
        b.end(None).unwrap();
        b.begin("m").unwrap();
        b.field_i64("a", 1).unwrap();
        assert!(b.field_f64("b", f64::NAN).is_err());
        b.abort();
        assert_eq!(b.buf, b"m a=1i\n");
        assert_eq!(b.lines, 1);
    }

    #[test]
    fn literal_backslashes_elsewhere_are_kept() {
        let s = line(|b| {
            b.begin("a\\b")?;
            b.tag("k", "c\\d")?;
            b.field_i64("v", 1)?;
            b.end(None)
        })
        .unwrap();
        assert_eq!(s, "a\\b,k=c\\d v=1i\n");
    }

    #[test]
    fn precision_names() {
        assert_eq!(Precision::parse("ns"), Some(Precision::Ns));
        assert_eq!(Precision::parse("x"), None);
        assert_eq!(Precision::Ns.query_name(Target::V1), "n");
        assert_eq!(Precision::Ns.query_name(Target::V2), "ns");
        assert_eq!(Precision::Ms.per_second(), 1000);
    }
}

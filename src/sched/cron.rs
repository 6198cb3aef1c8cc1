//! Cron expressions: the 5-field crontab (optionally with a leading seconds
//! field), the `@hourly`-style macros, `L`, `W`-less day-of-month, `FRI#3`
//! and `5L` day-of-week forms, and APScheduler's keyword form.
//!
//! Day-of-week numbers in crontab: 0 or 7 = Sunday .. 6 = Saturday. In the
//! keyword form (APScheduler's `day_of_week=`), 0 = Monday .. 6 = Sunday.
//! When both day-of-month and day-of-week are restricted, a crontab fires
//! when either matches (Vixie cron's OR; a field starting with `*` counts as
//! unrestricted); the keyword form requires both (APScheduler's AND).

use super::civil::{days_in_month, weekday_sun0, Civil, DAY};
use super::tz::{Local, Zone};
use crate::errors::{FtError, FtResult};

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS_SUN0: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MONTHS_FULL: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS_FULL: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// Index of `t` in a list of 3-letter names or their full forms.
fn name_index(t: &str, short: &[&str], full: &[&str]) -> Option<usize> {
    short
        .iter()
        .position(|n| *n == t)
        .or_else(|| full.iter().position(|n| *n == t))
}

type DowParts = (u8, Vec<(u32, u32)>, Vec<u32>, bool);

/// How far ahead a schedule is searched before it is declared impossible.
const HORIZON_YEARS: i64 = 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSpec {
    pub seconds: u64,
    pub minutes: u64,
    pub hours: u32,
    pub dom: u32,
    pub dom_last: bool,
    /// monthly(day, clamp=True): this day, or the month's last day if shorter.
    pub dom_clamp: Option<u32>,
    pub months: u16,
    pub dow: u8,
    /// (weekday Sunday=0, n): the n-th such weekday of the month.
    pub dow_nth: Vec<(u32, u32)>,
    /// weekday Sunday=0: the last such weekday of the month.
    pub dow_last: Vec<u32>,
    /// APScheduler's day field: "2nd fri" entries, (weekday Sunday=0, n).
    pub dom_wd_nth: Vec<(u32, u32)>,
    /// APScheduler's day field: "last fri" entries (weekday Sunday=0).
    pub dom_wd_last: Vec<u32>,
    /// APScheduler's `week` field: ISO week numbers (bits 1..=53).
    pub weeks: Option<u64>,
    pub years: Option<Vec<i64>>,
    pub dom_restricted: bool,
    pub dow_restricted: bool,
    pub or_days: bool,
    /// The hour field names specific hours (not `*` or a step): in a repeated
    /// (DST) hour such a job fires in the first fold only.
    pub hour_specific: bool,
    pub source: String,
}

fn err(field: &str, msg: impl std::fmt::Display) -> FtError {
    FtError::config(format!("{field}: {msg}"))
}

fn parse_value(
    field: &str,
    s: &str,
    names: Option<(&[&str], u32)>,
    lo: u32,
    hi: u32,
) -> FtResult<u32> {
    let t = s.trim().to_ascii_lowercase();
    if let Some((names, base)) = names {
        if let Some(i) = name_index(&t, names, &MONTHS_FULL) {
            return Ok(i as u32 + base);
        }
    }
    let v: u32 = t
        .parse()
        .map_err(|_| err(field, format!("{s:?} is not a number or a known name")))?;
    if v < lo || v > hi {
        return Err(err(field, format!("{v} is out of range {lo}-{hi}")));
    }
    Ok(v)
}

/// Parses one field into a bitmask over lo..=hi. Returns (mask, restricted).
fn parse_field(
    field: &str,
    expr: &str,
    lo: u32,
    hi: u32,
    names: Option<(&[&str], u32)>,
) -> FtResult<(u64, bool)> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Err(err(field, "empty field"));
    }
    let restricted = !expr.starts_with('*') && !expr.starts_with('?');
    let mut mask = 0u64;
    for item in expr.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(err(field, format!("empty list item in {expr:?}")));
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .trim()
                    .parse()
                    .map_err(|_| err(field, format!("bad step {s:?}")))?;
                if step == 0 || step > hi - lo + 1 {
                    return Err(err(field, format!("step {step} is out of range")));
                }
                (r.trim(), step)
            }
            None => (item, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((x, y)) = range.split_once('-') {
            let a = parse_value(field, x, names, lo, hi)?;
            let b = parse_value(field, y, names, lo, hi)?;
            if a > b {
                return Err(err(field, format!("range {range:?} runs backwards")));
            }
            (a, b)
        } else {
            let a = parse_value(field, range, names, lo, hi)?;
            // "a/step" means from a to the end
            (a, if step > 1 { hi } else { a })
        };
        let mut v = a;
        while v <= b {
            mask |= 1u64 << v;
            v += step;
        }
    }
    Ok((mask, restricted))
}

impl CronSpec {
    /// Parses a crontab line: 5 fields, or 6 with seconds first, or a macro.
    pub fn parse(expr: &str) -> FtResult<CronSpec> {
        let src = expr.trim();
        let expanded = match src.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@hourly" => "0 * * * *".to_string(),
            other if other.starts_with('@') => {
                return Err(err("expr", format!("unknown macro {src:?}")));
            }
            _ => src.to_string(),
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(err(
                    "expr",
                    format!("expected 5 fields (minute hour day month day_of_week) or 6 with seconds first, got {n} in {src:?}"),
                ))
            }
        };
        let (seconds, _) = parse_field("second", sec, 0, 59, None)?;
        let (minutes, _) = parse_field("minute", rest[0], 0, 59, None)?;
        let (hours, hr) = parse_field("hour", rest[1], 0, 23, None)?;
        let hour_specific = hr && !rest[1].contains('/');
        let (dom, dom_last, dom_r) = parse_dom("day", rest[2])?;
        let (months, _) = parse_field("month", rest[3], 1, 12, Some((&MONTHS, 1)))?;
        let (dow, nth, last, dow_r) = parse_dow("day_of_week", rest[4], false)?;
        let spec = CronSpec {
            seconds,
            minutes,
            hours: hours as u32,
            dom,
            dom_last,
            dom_clamp: None,
            months: months as u16,
            dow,
            dow_nth: nth,
            dow_last: last,
            dom_wd_nth: vec![],
            dom_wd_last: vec![],
            weeks: None,
            years: None,
            dom_restricted: dom_r,
            dow_restricted: dow_r,
            or_days: true,
            hour_specific,
            source: src.to_string(),
        };
        spec.check_possible()?;
        Ok(spec)
    }

    /// APScheduler's keyword form. Fields finer than the finest one given
    /// default to their minimum; coarser ones to `*`.
    #[allow(clippy::too_many_arguments)]
    pub fn from_fields(
        year: Option<&str>,
        month: Option<&str>,
        day: Option<&str>,
        week: Option<&str>,
        day_of_week: Option<&str>,
        hour: Option<&str>,
        minute: Option<&str>,
        second: Option<&str>,
    ) -> FtResult<CronSpec> {
        // order from coarse to fine
        let given = [
            year,
            month,
            day.or(day_of_week).or(week),
            hour,
            minute,
            second,
        ];
        let finest = given.iter().rposition(|f| f.is_some());
        let default = |i: usize, min: &'static str| -> &'static str {
            match finest {
                Some(f) if i > f => min,
                _ => "*",
            }
        };
        let second = second.unwrap_or(default(5, "0"));
        let minute = minute.unwrap_or(default(4, "0"));
        let hour_s = hour.unwrap_or(default(3, "0"));
        let day_s = day.unwrap_or(if day_of_week.is_some() || week.is_some() {
            "*"
        } else {
            default(2, "1")
        });
        let month_s = month.unwrap_or(default(1, "1"));
        let (seconds, _) = parse_field("second", second, 0, 59, None)?;
        let (minutes, _) = parse_field("minute", minute, 0, 59, None)?;
        let (hours, hr) = parse_field("hour", hour_s, 0, 23, None)?;
        let day_parts = parse_day_keyword("day", day_s)?;
        let weeks = match week {
            None => None,
            Some(w) => Some(parse_field("week", w, 1, 53, None)?.0),
        };
        let (months, _) = parse_field("month", month_s, 1, 12, Some((&MONTHS, 1)))?;
        let (dow, nth, last, dow_r) = match day_of_week {
            Some(d) => parse_dow("day_of_week", d, true)?,
            None => (0x7f, vec![], vec![], false),
        };
        let years = match year {
            None => None,
            Some(y) => Some(parse_years(y)?),
        };
        let spec = CronSpec {
            seconds,
            minutes,
            hours: hours as u32,
            dom: day_parts.mask,
            dom_last: day_parts.last,
            dom_clamp: None,
            months: months as u16,
            dow,
            dow_nth: nth,
            dow_last: last,
            dom_wd_nth: day_parts.nth,
            dom_wd_last: day_parts.last_wd,
            weeks,
            years,
            dom_restricted: day_parts.restricted,
            dow_restricted: dow_r,
            or_days: false,
            hour_specific: hr && !hour_s.contains('/'),
            source: format!(
                "year={} month={month_s} week={} day={day_s} day_of_week={} hour={hour_s} minute={minute} second={second}",
                year.unwrap_or("*"),
                week.unwrap_or("*"),
                day_of_week.unwrap_or("*")
            ),
        };
        spec.check_possible()?;
        Ok(spec)
    }

    /// Calendar helper: at hh:mm:ss on every day in `days` (weekday mask,
    /// Sunday=0 bits) of every month, or on day-of-month `dom` (clamped to
    /// the month's last day when `clamp`).
    pub fn calendar(
        hour: u32,
        minute: u32,
        second: u32,
        dow_mask: Option<u8>,
        dom: Option<(u32, bool)>,
        every_hour: bool,
    ) -> FtResult<CronSpec> {
        if hour > 23 || minute > 59 || second > 59 {
            return Err(err(
                "at",
                format!("{hour:02}:{minute:02}:{second:02} is not a time of day"),
            ));
        }
        let (dom_mask, clamp, dom_r) = match dom {
            Some((d, clamp)) => {
                if !(1..=31).contains(&d) {
                    return Err(err("day", format!("{d} is not a day of the month (1-31)")));
                }
                (1u32 << d, clamp.then_some(d), true)
            }
            None => (0xffff_fffe, None, false),
        };
        let spec = CronSpec {
            seconds: 1 << second,
            minutes: 1 << minute,
            hours: if every_hour { 0x00ff_ffff } else { 1 << hour },
            dom: dom_mask,
            dom_last: false,
            dom_clamp: clamp,
            months: 0x1ffe,
            dow: dow_mask.unwrap_or(0x7f),
            dow_nth: vec![],
            dow_last: vec![],
            dom_wd_nth: vec![],
            dom_wd_last: vec![],
            weeks: None,
            years: None,
            dom_restricted: dom_r,
            dow_restricted: dow_mask.is_some(),
            or_days: false,
            hour_specific: !every_hour,
            source: String::new(),
        };
        spec.check_possible()?;
        Ok(spec)
    }

    fn check_possible(&self) -> FtResult<()> {
        // Search a horizon from a fixed date in UTC: a schedule that never
        // fires (30 February) is rejected here, not at run time.
        let start = Civil {
            year: 2001,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        }
        .to_secs();
        if self.next_wall(start).is_none() {
            return Err(err(
                "expr",
                format!("the schedule {:?} can never fire", self.source),
            ));
        }
        Ok(())
    }

    fn day_matches(&self, y: i64, m: u32, d: u32) -> bool {
        let dim = days_in_month(y, m);
        let days = super::civil::days_from_civil(y, m, d);
        let wd = weekday_sun0(days);
        if let Some(weeks) = self.weeks {
            if weeks & (1u64 << iso_week(days)) == 0 {
                return false;
            }
        }
        let dom_ok = self.dom & (1 << d) != 0 && self.dom_clamp.is_none()
            || (self.dom_last && d == dim)
            || self.dom_clamp.is_some_and(|c| d == c.min(dim))
            || self
                .dom_wd_nth
                .iter()
                .any(|&(w, n)| w == wd && (d - 1) / 7 + 1 == n)
            || self.dom_wd_last.iter().any(|&w| w == wd && d + 7 > dim);
        let dow_ok = self.dow & (1 << wd) != 0
            || self
                .dow_nth
                .iter()
                .any(|&(w, n)| w == wd && (d - 1) / 7 + 1 == n)
            || self.dow_last.iter().any(|&w| w == wd && d + 7 > dim);
        // Vixie cron: OR only when neither field starts with '*'; otherwise
        // both must match ('*' alone matches every day, '*/2' still filters).
        if self.or_days && self.dom_restricted && self.dow_restricted {
            dom_ok || dow_ok
        } else {
            dom_ok && dow_ok
        }
    }

    /// The first wall-clock second >= `start` that matches, within the horizon.
    pub fn next_wall(&self, start: i64) -> Option<i64> {
        let mut c = Civil::from_secs(start);
        let limit = c.year + HORIZON_YEARS;
        loop {
            if c.year > limit {
                return None;
            }
            if let Some(years) = &self.years {
                if !years.contains(&c.year) {
                    match years.iter().find(|y| **y > c.year) {
                        Some(y) => {
                            c = Civil {
                                year: *y,
                                month: 1,
                                day: 1,
                                hour: 0,
                                minute: 0,
                                second: 0,
                            }
                        }
                        None => return None,
                    }
                    continue;
                }
            }
            if self.months & (1 << c.month) == 0 {
                c = next_month(c);
                continue;
            }
            if !self.day_matches(c.year, c.month, c.day) {
                c = Civil::from_secs((c.days() + 1) * DAY);
                continue;
            }
            if self.hours & (1 << c.hour) == 0 {
                match next_bit(self.hours as u64, c.hour + 1, 23) {
                    Some(h) => {
                        c = Civil {
                            hour: h,
                            minute: 0,
                            second: 0,
                            ..c
                        }
                    }
                    None => c = Civil::from_secs((c.days() + 1) * DAY),
                }
                continue;
            }
            if self.minutes & (1 << c.minute) == 0 {
                match next_bit(self.minutes, c.minute + 1, 59) {
                    Some(m) => {
                        c = Civil {
                            minute: m,
                            second: 0,
                            ..c
                        }
                    }
                    None => c = Civil::from_secs(c.days() * DAY + (c.hour as i64 + 1) * 3600),
                }
                continue;
            }
            if self.seconds & (1 << c.second) == 0 {
                match next_bit(self.seconds, c.second + 1, 59) {
                    Some(s) => c = Civil { second: s, ..c },
                    None => c = Civil::from_secs(c.to_secs() - c.second as i64 + 60),
                }
                continue;
            }
            return Some(c.to_secs());
        }
    }

    /// The first instant (unix seconds) strictly after `after` at which the
    /// schedule fires in `zone`, with the DST rules of the module docs.
    pub fn next_after(&self, after: i64, zone: &Zone) -> Option<i64> {
        const FOLD_SPAN: i64 = 3 * 3600;
        let wall_after = zone.local(after);
        // Near a transition, wall times earlier than `after`'s can still be
        // later instants (the second fold): search from a little before.
        let near = zone.offset_at(after - FOLD_SPAN) != zone.offset_at(after)
            || zone.offset_at(after) != zone.offset_at(after + FOLD_SPAN);
        let mut w = if near {
            wall_after - FOLD_SPAN
        } else {
            wall_after + 1
        };
        let mut best: Option<i64> = None;
        let mut first_hit: Option<i64> = None;
        loop {
            let cand = self.next_wall(w)?;
            if let Some(f) = first_hit {
                if cand > f + FOLD_SPAN {
                    break;
                }
            }
            let instants: [Option<i64>; 2] = match zone.resolve(cand) {
                Local::Single(t) => [Some(t), None],
                Local::Gap(t) => [Some(t), None],
                Local::Fold(a, b) => [Some(a), (!self.hour_specific).then_some(b)],
            };
            for t in instants.into_iter().flatten() {
                if t > after {
                    best = Some(best.map_or(t, |b| b.min(t)));
                    if first_hit.is_none() {
                        first_hit = Some(cand);
                    }
                }
            }
            if first_hit.is_some() && !near {
                break;
            }
            w = cand + 1;
        }
        best
    }
}

fn next_month(c: Civil) -> Civil {
    if c.month == 12 {
        Civil {
            year: c.year + 1,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        }
    } else {
        Civil {
            month: c.month + 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            ..c
        }
    }
}

fn next_bit(mask: u64, from: u32, hi: u32) -> Option<u32> {
    (from..=hi).find(|b| mask & (1u64 << b) != 0)
}

fn parse_dom(field: &str, expr: &str) -> FtResult<(u32, bool, bool)> {
    let mut last = false;
    let mut rest: Vec<&str> = Vec::new();
    for item in expr.split(',') {
        if item.trim().eq_ignore_ascii_case("l") {
            last = true;
        } else {
            rest.push(item);
        }
    }
    let restricted = !expr.trim_start().starts_with('*') && !expr.trim_start().starts_with('?');
    let mask = if rest.is_empty() {
        0
    } else {
        parse_field(field, &rest.join(","), 1, 31, None)?.0 as u32
    };
    Ok((mask, last, restricted))
}

/// ISO 8601 week number (1-53) of the day `days` after 1970-01-01.
fn iso_week(days: i64) -> u32 {
    let monday0 = (days + 3).rem_euclid(7); // 1970-01-01 was a Thursday
    let thursday = days - monday0 + 3; // the week belongs to its Thursday's year
    let (year, _, _) = super::civil::civil_from_days(thursday);
    ((thursday - super::civil::days_from_civil(year, 1, 1)) / 7 + 1) as u32
}

struct DayParts {
    mask: u32,
    last: bool,
    nth: Vec<(u32, u32)>,
    last_wd: Vec<u32>,
    restricted: bool,
}

/// APScheduler's `day` field: numbers, ranges and steps as in cron, plus
/// `last` (the month's last day), `last fri` and `1st`..`5th fri`.
fn parse_day_keyword(field: &str, expr: &str) -> FtResult<DayParts> {
    let weekday = |s: &str, item: &str| -> FtResult<u32> {
        name_index(s, &DAYS_SUN0, &DAYS_FULL)
            .map(|i| i as u32)
            .ok_or_else(|| err(field, format!("unknown weekday {s:?} in {item:?}")))
    };
    let mut parts = DayParts {
        mask: 0,
        last: false,
        nth: Vec::new(),
        last_wd: Vec::new(),
        restricted: !expr.trim_start().starts_with('*') && !expr.trim_start().starts_with('?'),
    };
    let mut rest: Vec<&str> = Vec::new();
    for item in expr.split(',') {
        let t = item.trim().to_ascii_lowercase();
        let words: Vec<&str> = t.split_whitespace().collect();
        match words.as_slice() {
            ["last"] | ["l"] => parts.last = true,
            ["last", wd] => parts.last_wd.push(weekday(wd, item)?),
            [ord, wd] => {
                let n = match *ord {
                    "1st" => 1,
                    "2nd" => 2,
                    "3rd" => 3,
                    "4th" => 4,
                    "5th" => 5,
                    _ => {
                        return Err(err(
                            field,
                            format!("{item:?}: expected 1st-5th or last before the weekday"),
                        ))
                    }
                };
                parts.nth.push((weekday(wd, item)?, n));
            }
            _ => rest.push(item),
        }
    }
    if !rest.is_empty() {
        parts.mask = parse_field(field, &rest.join(","), 1, 31, None)?.0 as u32;
    }
    Ok(parts)
}

/// Day-of-week field. `monday0` selects APScheduler numbering (0 = Monday).
fn parse_dow(field: &str, expr: &str, monday0: bool) -> FtResult<DowParts> {
    let restricted = !expr.trim_start().starts_with('*') && !expr.trim_start().starts_with('?');
    let mut mask: u8 = 0;
    let mut nth = Vec::new();
    let mut last = Vec::new();
    let one_day = |s: &str| -> FtResult<u32> {
        let t = s.trim().to_ascii_lowercase();
        if let Some(i) = name_index(&t, &DAYS_SUN0, &DAYS_FULL) {
            return Ok(i as u32);
        }
        let v: u32 = t
            .parse()
            .map_err(|_| err(field, format!("{s:?} is not a weekday number or name")))?;
        if monday0 {
            if v > 6 {
                return Err(err(field, format!("{v} is out of range 0-6 (0 = Monday)")));
            }
            Ok((v + 1) % 7)
        } else {
            if v > 7 {
                return Err(err(
                    field,
                    format!("{v} is out of range 0-7 (0 and 7 = Sunday)"),
                ));
            }
            Ok(v % 7)
        }
    };
    let mut plain: Vec<String> = Vec::new();
    for item in expr.split(',') {
        let it = item.trim();
        if let Some((d, n)) = it.split_once('#') {
            let w = one_day(d)?;
            let n: u32 = n
                .trim()
                .parse()
                .map_err(|_| err(field, format!("bad occurrence in {it:?}")))?;
            if !(1..=5).contains(&n) {
                return Err(err(field, format!("occurrence {n} in {it:?} must be 1-5")));
            }
            nth.push((w, n));
        } else if it.len() > 1
            && (it.ends_with('L') || it.ends_with('l'))
            && !it.eq_ignore_ascii_case("l")
        {
            last.push(one_day(&it[..it.len() - 1])?);
        } else if it.eq_ignore_ascii_case("last") || it.eq_ignore_ascii_case("l") {
            return Err(err(field, "'L' alone belongs in the day-of-month field"));
        } else {
            plain.push(it.to_string());
        }
    }
    // Positions in the field's own order: crontab 0..=7 (Sunday, Monday ..
    // Saturday, Sunday again, as in Vixie cron, where `*` spans 0-7 and `7-7`
    // is Sunday); keyword form 0..=6 (Monday .. Sunday).
    let last_pos: u32 = if monday0 { 6 } else { 7 };
    let pos = |s: &str| -> FtResult<u32> {
        let w = one_day(s)?;
        Ok(if monday0 {
            (w + 6) % 7
        } else if s.trim().parse::<u32>().ok() == Some(7) {
            7
        } else {
            w
        })
    };
    for it in plain {
        let (range, step) = match it.split_once('/') {
            Some((r, s)) => {
                let step = s.trim().parse::<u32>().ok().filter(|s| *s >= 1);
                // crontab: any step (Vixie cron); keyword form: APScheduler's
                // limit, the width of the field
                let step = if monday0 {
                    step.filter(|s| *s <= 7)
                } else {
                    step
                };
                (
                    r.to_string(),
                    step.ok_or_else(|| err(field, format!("bad step in {it:?}")))?,
                )
            }
            None => (it.clone(), 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (0, last_pos)
        } else if let Some((x, y)) = range.split_once('-') {
            let (pa, pb) = (pos(x)?, pos(y)?);
            if pa > pb {
                return Err(err(field, format!("range {range:?} runs backwards")));
            }
            (pa, pb)
        } else {
            // "a/step": from a to Saturday (crontab; "7/step" is Sunday alone)
            // or to Sunday (keyword form)
            let p = pos(&range)?;
            (p, if step > 1 { p.max(6) } else { p })
        };
        let mut p = a;
        while p <= b {
            let w = if monday0 { (p + 1) % 7 } else { p % 7 };
            mask |= 1 << w;
            match p.checked_add(step) {
                Some(next) => p = next,
                None => break,
            }
        }
    }
    Ok((mask, nth, last, restricted))
}

fn parse_years(expr: &str) -> FtResult<Vec<i64>> {
    let mut out = Vec::new();
    for item in expr.split(',') {
        let it = item.trim();
        let (a, b) = match it.split_once('-') {
            Some((x, y)) => (x.trim().parse::<i64>(), y.trim().parse::<i64>()),
            None => (it.parse::<i64>(), it.parse::<i64>()),
        };
        match (a, b) {
            (Ok(a), Ok(b)) if (1970..=9999).contains(&a) && a <= b && b <= 9999 => {
                out.extend(a..=b)
            }
            _ => {
                return Err(err(
                    "year",
                    format!("{it:?} is not a year or a year range (1970-9999)"),
                ))
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        Civil {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        }
        .to_secs()
    }

    fn zone(name: &str) -> Zone {
        let data = std::fs::read(format!("/usr/share/zoneinfo/{name}"))
            .expect("the system tz database (Debian's tzdata) is installed");
        Zone::from_tzif(name, &data).expect("valid TZif")
    }

    #[test]
    fn parses_and_rejects() {
        assert!(CronSpec::parse("*/5 * * * *").is_ok());
        assert!(CronSpec::parse("0 9 * * MON-FRI").is_ok());
        assert!(CronSpec::parse("0 0 L * *").is_ok());
        assert!(CronSpec::parse("0 0 * * FRI#3").is_ok());
        assert!(CronSpec::parse("@weekly").is_ok());
        for bad in [
            "",
            "* * * *",
            "61 * * * *",
            "* 24 * * *",
            "0 0 30 2 *",
            "*/0 * * * *",
            "5-1 * * * *",
            "@fortnightly",
            "0 0 * * 8",
            "0 0 * JANUARYX *",
        ] {
            let e = CronSpec::parse(bad);
            assert!(e.is_err(), "{bad:?} should fail");
        }
        let e = CronSpec::parse("0 0 30 2 *").unwrap_err();
        assert!(e.message.contains("never fire"), "{}", e.message);
    }

    #[test]
    fn next_fire_times_utc() {
        let z = Zone::utc();
        let s = CronSpec::parse("30 0 * * *").expect("valid");
        assert_eq!(
            s.next_after(utc(2024, 1, 1, 0, 30, 0), &z),
            Some(utc(2024, 1, 2, 0, 30, 0))
        );
        assert_eq!(
            s.next_after(utc(2024, 1, 1, 0, 29, 59), &z),
            Some(utc(2024, 1, 1, 0, 30, 0))
        );
        let s = CronSpec::parse("0 0 L * *").expect("valid");
        assert_eq!(
            s.next_after(utc(2024, 2, 1, 0, 0, 0), &z),
            Some(utc(2024, 2, 29, 0, 0, 0))
        );
        let s = CronSpec::parse("0 12 * * FRI#3").expect("valid");
        assert_eq!(
            s.next_after(utc(2024, 11, 1, 0, 0, 0), &z),
            Some(utc(2024, 11, 15, 12, 0, 0))
        );
        // Vixie OR: the 13th or any Friday
        let s = CronSpec::parse("0 0 13 * 5").expect("valid");
        assert_eq!(
            s.next_after(utc(2024, 9, 1, 0, 0, 0), &z),
            Some(utc(2024, 9, 6, 0, 0, 0))
        );
        assert_eq!(
            s.next_after(utc(2024, 9, 6, 0, 0, 0), &z),
            Some(utc(2024, 9, 13, 0, 0, 0))
        );
        // '*' day-of-month counts as unrestricted: every Friday only
        let s = CronSpec::parse("0 0 */1 * 5").expect("valid");
        assert_eq!(
            s.next_after(utc(2024, 9, 6, 0, 0, 0), &z),
            Some(utc(2024, 9, 13, 0, 0, 0))
        );
        let s = CronSpec::parse("15 10 * * * *").expect("valid seconds form");
        assert_eq!(
            s.next_after(utc(2024, 1, 1, 0, 0, 0), &z),
            Some(utc(2024, 1, 1, 0, 10, 15))
        );
        // 0 and 7 are both Sunday
        let a = CronSpec::parse("0 0 * * 0").expect("valid");
        let b = CronSpec::parse("0 0 * * 7").expect("valid");
        assert_eq!(
            a.next_after(utc(2024, 1, 1, 0, 0, 0), &z),
            b.next_after(utc(2024, 1, 1, 0, 0, 0), &z)
        );
    }

    #[test]
    fn day_of_week_seven_is_sunday_and_steps_are_unbounded() {
        const SUN: u8 = 1;
        const ALL: u8 = 0x7f;
        let mask = |dow: &str| CronSpec::parse(&format!("0 0 * * {dow}")).map(|s| s.dow);
        // bits: Sunday = 0 .. Saturday = 6
        for (dow, want) in [
            ("7-7", SUN),
            ("0-0", SUN),
            ("Sun-Sun", SUN),
            ("7", SUN),
            ("07-7", SUN),
            ("0-7", ALL),
            ("sun-7", ALL),
            ("*", ALL),
            ("*/8", SUN),
            ("0-7/8", SUN),
            ("*/7", SUN),
            ("*/4294967295", SUN),
            ("7-7/4294967295", SUN),
            ("*/2", 1 | 1 << 2 | 1 << 4 | 1 << 6),
            ("1-7/3", 1 << 1 | 1 << 4 | SUN),
            ("5-7/2", 1 << 5 | SUN),
            ("6-7", 1 << 6 | SUN),
            ("7/2", SUN),
            ("1/2", 1 << 1 | 1 << 3 | 1 << 5),
        ] {
            assert_eq!(mask(dow).ok(), Some(want), "{dow}");
        }
        for bad in [
            "7-0", "7-6", "7-sun", "*/0", "0-7/0", "8", "0-8", "*/x", "*/-1",
        ] {
            assert!(mask(bad).is_err(), "{bad:?} should fail");
        }
        // the keyword form keeps APScheduler's limit: a step within the field
        let kw =
            |dow: &str| CronSpec::from_fields(None, None, None, None, Some(dow), None, None, None);
        assert!(kw("*/7").is_ok());
        assert!(kw("*/8").is_err());
        // fire times: Sundays only
        let z = Zone::utc();
        let s = CronSpec::parse("0 0 * * 7-7").expect("valid");
        let a = s.next_after(utc(2024, 1, 1, 0, 0, 0), &z).expect("fires");
        assert_eq!(a, utc(2024, 1, 7, 0, 0, 0));
        assert_eq!(s.next_after(a, &z), Some(utc(2024, 1, 14, 0, 0, 0)));
    }

    #[test]
    fn keyword_form_defaults_and_monday0() {
        let z = Zone::utc();
        let s = CronSpec::from_fields(None, None, None, None, Some("mon"), Some("1"), None, None)
            .expect("valid");
        // 2024-11-25 is a Monday
        assert_eq!(
            s.next_after(utc(2024, 11, 23, 0, 0, 0), &z),
            Some(utc(2024, 11, 25, 1, 0, 0))
        );
        let s = CronSpec::from_fields(None, None, None, None, Some("0"), Some("1"), None, None)
            .expect("valid");
        assert_eq!(
            s.next_after(utc(2024, 11, 23, 0, 0, 0), &z),
            Some(utc(2024, 11, 25, 1, 0, 0))
        );
        let s = CronSpec::from_fields(None, None, Some("1"), None, None, Some("2"), None, None)
            .expect("valid");
        assert_eq!(
            s.next_after(utc(2024, 11, 23, 0, 0, 0), &z),
            Some(utc(2024, 12, 1, 2, 0, 0))
        );
    }

    #[test]
    fn keyword_day_expressions_and_iso_weeks() {
        let z = Zone::utc();
        let kw = |day: Option<&str>, week: Option<&str>, dow: Option<&str>| {
            CronSpec::from_fields(None, None, day, week, dow, Some("9"), None, None)
        };
        let after = utc(2024, 11, 23, 0, 0, 0);
        // the month's last day: 2024-11-30
        let s = kw(Some("last"), None, None).expect("valid");
        assert_eq!(s.next_after(after, &z), Some(utc(2024, 11, 30, 9, 0, 0)));
        // the last Friday of the month: 2024-11-29, then 2024-12-27
        let s = kw(Some("last fri"), None, None).expect("valid");
        let t = s.next_after(after, &z).expect("fires");
        assert_eq!(t, utc(2024, 11, 29, 9, 0, 0));
        assert_eq!(s.next_after(t, &z), Some(utc(2024, 12, 27, 9, 0, 0)));
        // the third Friday (options expiry): 2024-12-20, then 2025-01-17
        let s = kw(Some("3rd fri"), None, None).expect("valid");
        let t = s.next_after(after, &z).expect("fires");
        assert_eq!(t, utc(2024, 12, 20, 9, 0, 0));
        assert_eq!(s.next_after(t, &z), Some(utc(2025, 1, 17, 9, 0, 0)));
        // a list mixing forms: the 1st Monday or the 15th
        let s = kw(Some("1st mon,15"), None, None).expect("valid");
        let t = s.next_after(after, &z).expect("fires");
        assert_eq!(t, utc(2024, 12, 2, 9, 0, 0));
        assert_eq!(s.next_after(t, &z), Some(utc(2024, 12, 15, 9, 0, 0)));
        // ISO weeks: 2024-12-30 is in week 1 of 2025; week 1 Mondays
        let s = kw(None, Some("1"), Some("mon")).expect("valid");
        assert_eq!(s.next_after(after, &z), Some(utc(2024, 12, 30, 9, 0, 0)));
        // week 53 exists in 2026 (Mon 2026-12-28)
        let s = kw(None, Some("53"), Some("mon")).expect("valid");
        assert_eq!(s.next_after(after, &z), Some(utc(2026, 12, 28, 9, 0, 0)));
        assert_eq!(
            iso_week(crate::sched::civil::days_from_civil(2021, 1, 3)),
            53
        );
        assert_eq!(
            iso_week(crate::sched::civil::days_from_civil(2021, 1, 4)),
            1
        );
        // errors name the field
        for (day, week) in [
            (Some("6th fri"), None),
            (Some("last xyz"), None),
            (Some("first fri"), None),
            (None, Some("54")),
            (None, Some("0")),
        ] {
            let e = kw(day, week, None).expect_err("invalid");
            let field = if day.is_some() { "day" } else { "week" };
            assert!(e.to_string().contains(field), "{e}");
        }
    }
    #[test]
    fn dst_gap_fires_once_at_transition() {
        let z = zone("America/New_York");
        // 2024-03-10 02:30 does not exist (02:00 EST -> 03:00 EDT at 07:00Z)
        let s = CronSpec::parse("30 2 * * *").expect("valid");
        let t = s.next_after(utc(2024, 3, 10, 0, 0, 0), &z).expect("fires");
        assert_eq!(t, utc(2024, 3, 10, 7, 0, 0));
        let t2 = s.next_after(t, &z).expect("fires");
        assert_eq!(t2, utc(2024, 3, 11, 6, 30, 0)); // 02:30 EDT next day
                                                    // every 15 minutes: 01:45 EST then the transition instant, then 03:15 EDT
        let s = CronSpec::parse("*/15 * * * *").expect("valid");
        let a = s.next_after(utc(2024, 3, 10, 6, 45, 0), &z).expect("fires");
        assert_eq!(a, utc(2024, 3, 10, 7, 0, 0));
        let b = s.next_after(a, &z).expect("fires");
        assert_eq!(b, utc(2024, 3, 10, 7, 15, 0));
    }

    #[test]
    fn dst_fold_specific_hour_once_star_hour_twice() {
        let z = zone("America/New_York");
        // 2024-11-03 01:30 happens at 05:30Z (EDT) and 06:30Z (EST)
        let s = CronSpec::parse("30 1 * * *").expect("valid");
        let a = s.next_after(utc(2024, 11, 3, 0, 0, 0), &z).expect("fires");
        assert_eq!(a, utc(2024, 11, 3, 5, 30, 0));
        let b = s.next_after(a, &z).expect("fires");
        assert_eq!(b, utc(2024, 11, 4, 6, 30, 0));
        let s = CronSpec::parse("30 * * * *").expect("valid");
        let a = s.next_after(utc(2024, 11, 3, 5, 0, 0), &z).expect("fires");
        assert_eq!(a, utc(2024, 11, 3, 5, 30, 0));
        let b = s.next_after(a, &z).expect("fires");
        assert_eq!(b, utc(2024, 11, 3, 6, 30, 0));
        let c = s.next_after(b, &z).expect("fires");
        assert_eq!(c, utc(2024, 11, 3, 7, 30, 0));
    }

    #[test]
    fn lord_howe_half_hour_shift() {
        let z = zone("Australia/Lord_Howe");
        // Spring forward 2024-10-06 02:00 LHST (+10:30) -> 02:30 LHDT (+11)
        let s = CronSpec::parse("15 2 * * *").expect("valid");
        let t = s.next_after(utc(2024, 10, 5, 12, 0, 0), &z).expect("fires");
        assert_eq!(z.local(t) % 86_400, 2 * 3600 + 30 * 60); // the transition: 02:30 local
                                                             // Fall back 2024-04-07 02:00 LHDT -> 01:30 LHST: 01:45 happens twice
        let s = CronSpec::parse("45 1 * * *").expect("valid");
        let a = s.next_after(utc(2024, 4, 6, 12, 0, 0), &z).expect("fires");
        let b = s.next_after(a, &z).expect("fires");
        assert!(b - a > 23 * 3600, "specific hour fires once");
        let s = CronSpec::parse("45 * * * *").expect("valid");
        let a = s.next_after(utc(2024, 4, 6, 14, 0, 0), &z).expect("fires");
        let b = s.next_after(a, &z).expect("fires");
        assert_eq!(
            b - a,
            1800,
            "'*' hour fires in both folds, 30 minutes apart"
        );
    }
}

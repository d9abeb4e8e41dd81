//! `dateFormat`: dates read as RFC 3339 / ISO 8601, epoch numbers or a given layout, written in
//! a layout at a fixed UTC offset. The calendar itself is `civil_time`'s.

use handlebars::RenderError;
use serde_json::{Number, Value as Json};

use super::args::{type_name, Args};
use crate::civil_time::{self, MS_PER_DAY};

/// `{{dateFormat format date [input_format] [offset]}}`: `date` (an RFC 3339 / ISO 8601
/// string, `YYYY-MM-DD`, epoch milliseconds as a number, or text in `input_format`) written
/// in `format` at the fixed UTC offset `offset` (default UTC). A date without an offset of its
/// own is taken to be at `offset`.
pub(super) fn date_format(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    let format = args.text(0)?;
    let input_format = args.text(2)?;
    let offset_ms = match args.text(3)? {
        offset if offset.is_empty() => 0,
        offset => parse_offset(&offset).ok_or_else(|| args.error(OFFSET_EXPECTED))?,
    };
    let instant_ms = match args.value(1)? {
        None | Some(Json::Null) => return Err(args.error("no date")),
        Some(Json::Number(number)) => epoch_number(number, &input_format),
        Some(Json::String(text)) if input_format.is_empty() => parse_iso_date(text.trim(), offset_ms),
        Some(Json::String(text)) => parse_with_format(text.trim(), &input_format, offset_ms),
        Some(other) => {
            return Err(args.error(format_args!(
                "the date must be text or a number, not {}",
                type_name(other)
            )))
        }
    }
    .ok_or_else(|| args.error("the date is not a valid date in the expected format"))?;
    format_date(instant_ms, offset_ms, &format)
        .map(Json::String)
        .ok_or_else(|| args.error("the date is outside the years 0000-9999"))
}

/// What an offset must look like, for error messages.
pub(super) const OFFSET_EXPECTED: &str = "the offset must be `Z`, `UTC` or like `+02:00`, `-0530`, `+02`";

/// Epoch milliseconds, or seconds when the input format is `X`.
fn epoch_number(number: &Number, input_format: &str) -> Option<i64> {
    let scale = if input_format == "X" { 1000.0 } else { 1.0 };
    let value = number.as_f64()? * scale;
    // ±10^15 ms is ±31,000 years: beyond it the civil math below has no meaning anyway.
    (value.is_finite() && value.abs() < 1e15).then(|| value.floor() as i64)
}

/// `+02:00`, `-0530`, `+02`, `Z` or `UTC` → milliseconds east of UTC.
pub(super) fn parse_offset(text: &str) -> Option<i64> {
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
        return Some(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    if text[1..].contains(':') && (digits.len() != 4 || text.len() != 6 || &text[3..4] != ":") {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 60 + minutes) * 60_000)
}

/// The fields of a civil date-time, as parsed.
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    millisecond: i64,
}

impl Civil {
    /// Milliseconds since the epoch of this local time at `offset_ms`, if the fields are valid.
    fn to_epoch_ms(&self, offset_ms: i64) -> Option<i64> {
        let valid = (0..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && (1..=civil_time::days_in_month(self.year, self.month)).contains(&self.day)
            && (0..=23).contains(&self.hour)
            && (0..=59).contains(&self.minute)
            // 60: a leap second, as RFC 3339 allows; it reads as the next minute's first second.
            && (0..=60).contains(&self.second)
            && (0..=999).contains(&self.millisecond);
        let local = civil_time::days_from_civil(self.year, self.month, self.day) * MS_PER_DAY
            + ((self.hour * 60 + self.minute) * 60 + self.second) * 1000
            + self.millisecond;
        valid.then_some(local - offset_ms)
    }
}

/// A cursor over the date text being parsed.
struct Scanner<'a> {
    rest: &'a str,
}

impl Scanner<'_> {
    fn digits(&mut self, count: usize) -> Option<i64> {
        let digits = self.rest.get(..count)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.rest = &self.rest[count..];
        digits.parse().ok()
    }

    fn eat(&mut self, prefix: &str) -> bool {
        match self.rest.strip_prefix(prefix) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn eat_any(&mut self, choices: &[char]) -> bool {
        match self.rest.chars().next() {
            Some(c) if choices.contains(&c) => {
                self.rest = &self.rest[c.len_utf8()..];
                true
            }
            _ => false,
        }
    }

    /// An optionally signed integer, as long as it goes.
    fn integer(&mut self) -> Option<i64> {
        let length = self
            .rest
            .char_indices()
            .find(|(index, c)| !(c.is_ascii_digit() || (*index == 0 && *c == '-')))
            .map_or(self.rest.len(), |(index, _)| index);
        let value = self.rest[..length].parse().ok()?;
        self.rest = &self.rest[length..];
        Some(value)
    }

    /// `Z`, `z` or `±HH:MM` / `±HHMM` / `±HH`, if one is next.
    fn offset(&mut self) -> Option<i64> {
        if self.eat_any(&['Z', 'z']) {
            return Some(0);
        }
        let length = self
            .rest
            .char_indices()
            .find(|(index, c)| *index > 0 && !(c.is_ascii_digit() || *c == ':'))
            .map_or(self.rest.len(), |(index, _)| index);
        let offset = parse_offset(self.rest.get(..length)?)?;
        self.rest = &self.rest[length..];
        Some(offset)
    }
}

/// `YYYY-MM-DD`, optionally followed by `T` (or a space) and `HH:mm[:ss[.fraction]]`, then an
/// optional offset; without one the time is at `default_offset_ms`.
fn parse_iso_date(text: &str, default_offset_ms: i64) -> Option<i64> {
    let mut scanner = Scanner { rest: text };
    let mut civil = Civil {
        year: scanner.digits(4)?,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        millisecond: 0,
    };
    (scanner.eat("-")).then_some(())?;
    civil.month = scanner.digits(2)?;
    (scanner.eat("-")).then_some(())?;
    civil.day = scanner.digits(2)?;
    let mut offset_ms = default_offset_ms;
    if scanner.eat_any(&['T', 't', ' ']) {
        civil.hour = scanner.digits(2)?;
        scanner.eat(":").then_some(())?;
        civil.minute = scanner.digits(2)?;
        if scanner.eat(":") {
            civil.second = scanner.digits(2)?;
            if scanner.eat_any(&['.', ',']) {
                let fraction_length = scanner.rest.bytes().take_while(u8::is_ascii_digit).count();
                if fraction_length == 0 {
                    return None;
                }
                // Milliseconds: further digits are truncated.
                let fraction = &scanner.rest[..fraction_length];
                civil.millisecond = format!("{:0<3}", &fraction[..fraction_length.min(3)]).parse().ok()?;
                scanner.rest = &scanner.rest[fraction_length..];
            }
        }
        if !scanner.rest.is_empty() {
            offset_ms = scanner.offset()?;
        }
    }
    scanner.rest.is_empty().then_some(())?;
    civil.to_epoch_ms(offset_ms)
}

/// Date tokens, longest first so that `SSS` is not read as text.
const DATE_TOKENS: &[&str] = &["YYYY", "SSS", "MM", "DD", "HH", "mm", "ss", "X", "x", "Z"];

/// One piece of a date format: a token or literal text (`[…]` quotes literal text).
enum Piece<'a> {
    Token(&'static str),
    Literal(&'a str),
}

fn format_pieces(format: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = format;
    while !rest.is_empty() {
        if let Some(token) = DATE_TOKENS.iter().find(|token| rest.starts_with(**token)) {
            pieces.push(Piece::Token(token));
            rest = &rest[token.len()..];
        } else if let Some((quoted, after)) = rest.strip_prefix('[').and_then(|inner| inner.split_once(']')) {
            pieces.push(Piece::Literal(quoted));
            rest = after;
        } else {
            let length = rest.chars().next().map_or(1, char::len_utf8);
            pieces.push(Piece::Literal(&rest[..length]));
            rest = &rest[length..];
        }
    }
    pieces
}

/// Parses `text` laid out as `format`; fields the format lacks are the first of the month,
/// midnight. `X`/`x` (epoch seconds / milliseconds) give the instant outright.
fn parse_with_format(text: &str, format: &str, default_offset_ms: i64) -> Option<i64> {
    let mut scanner = Scanner { rest: text };
    let mut civil = Civil {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        millisecond: 0,
    };
    let mut offset_ms = default_offset_ms;
    let mut epoch_ms = None;
    for piece in format_pieces(format) {
        match piece {
            Piece::Literal(literal) => scanner.eat(literal).then_some(())?,
            Piece::Token("YYYY") => civil.year = scanner.digits(4)?,
            Piece::Token("MM") => civil.month = scanner.digits(2)?,
            Piece::Token("DD") => civil.day = scanner.digits(2)?,
            Piece::Token("HH") => civil.hour = scanner.digits(2)?,
            Piece::Token("mm") => civil.minute = scanner.digits(2)?,
            Piece::Token("ss") => civil.second = scanner.digits(2)?,
            Piece::Token("SSS") => civil.millisecond = scanner.digits(3)?,
            Piece::Token("X") => epoch_ms = Some(scanner.integer()?.checked_mul(1000)?),
            Piece::Token("x") => epoch_ms = Some(scanner.integer()?),
            Piece::Token(_) => offset_ms = scanner.offset()?,
        }
    }
    scanner.rest.is_empty().then_some(())?;
    match epoch_ms {
        Some(epoch_ms) => (epoch_ms.abs() < 1_000_000_000_000_000).then_some(epoch_ms),
        None => civil.to_epoch_ms(offset_ms),
    }
}

/// Writes the instant in `format` at `offset_ms`; `None` outside the years 0000-9999.
fn format_date(instant_ms: i64, offset_ms: i64, format: &str) -> Option<String> {
    let local_ms = instant_ms + offset_ms;
    let (year, month, day) = civil_time::civil_from_days(local_ms.div_euclid(MS_PER_DAY));
    if !(0..=9999).contains(&year) {
        return None;
    }
    let ms_of_day = local_ms.rem_euclid(MS_PER_DAY);
    let mut out = String::with_capacity(format.len() + 8);
    for piece in format_pieces(format) {
        use std::fmt::Write;
        let _ = match piece {
            Piece::Literal(literal) => write!(out, "{literal}"),
            Piece::Token("YYYY") => write!(out, "{year:04}"),
            Piece::Token("MM") => write!(out, "{month:02}"),
            Piece::Token("DD") => write!(out, "{day:02}"),
            Piece::Token("HH") => write!(out, "{:02}", ms_of_day / 3_600_000),
            Piece::Token("mm") => write!(out, "{:02}", ms_of_day / 60_000 % 60),
            Piece::Token("ss") => write!(out, "{:02}", ms_of_day / 1000 % 60),
            Piece::Token("SSS") => write!(out, "{:03}", ms_of_day % 1000),
            Piece::Token("X") => write!(out, "{}", instant_ms.div_euclid(1000)),
            Piece::Token("x") => write!(out, "{instant_ms}"),
            Piece::Token(_) => {
                let minutes = offset_ms.abs() / 60_000;
                let sign = if offset_ms < 0 { '-' } else { '+' };
                write!(out, "{sign}{:02}:{:02}", minutes / 60, minutes % 60)
            }
        };
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::civil_time::MS_PER_DAY;
    use crate::templates::tests::{ok, render};
    use serde_json::{json, Value as Json};

    #[test]
    fn date_format_inputs_outputs_and_offsets() {
        let f = |template: &str, date: Json| ok(template, json!({ "d": date }));
        // RFC 3339 with offset and fraction (truncated to ms).
        assert_eq!(
            f(
                r#"{{dateFormat "YYYY-MM-DD HH:mm:ss.SSS" d}}"#,
                json!("2024-02-29T23:59:59.123456+01:00")
            ),
            "2024-02-29 22:59:59.123"
        );
        assert_eq!(f(r#"{{dateFormat "x" d}}"#, json!("1970-01-01T00:00:00Z")), "0");
        assert_eq!(f(r#"{{dateFormat "X" d}}"#, json!("1969-12-31T23:59:59.500Z")), "-1");
        assert_eq!(f(r#"{{dateFormat "YYYY-MM-DD" d}}"#, json!(-1)), "1969-12-31");
        assert_eq!(
            f(r#"{{dateFormat "YYYY-MM-DDTHH:mm" d}}"#, json!("2024-03-05 14:07")),
            "2024-03-05T14:07"
        );
        assert_eq!(
            f(
                r#"{{dateFormat "HH:mmZ" d "" "-05:30"}}"#,
                json!("2024-03-05T00:00:00Z")
            ),
            "18:30-05:30"
        );
        // Without an offset of its own, the date is at the given offset.
        assert_eq!(
            f(r#"{{dateFormat "x" d "" "+01:00"}}"#, json!("1970-01-01T01:00:00")),
            "0"
        );
        assert_eq!(f(r#"{{dateFormat "YYYY-MM-DD" d "X"}}"#, json!(86400)), "1970-01-02");
        assert_eq!(
            f(r#"{{dateFormat "YYYY-MM-DD" d "x"}}"#, json!("172800000")),
            "1970-01-03"
        );
        assert_eq!(
            f(
                r#"{{dateFormat "YYYY-MM-DD HH:mm Z" d "MM/DD/YYYY HH:mm Z"}}"#,
                json!("12/31/1999 23:00 -0100")
            ),
            "2000-01-01 00:00 +00:00"
        );
        assert_eq!(f(r#"{{dateFormat "[YYYY] YYYY" d}}"#, json!("0001-01-01")), "YYYY 0001");
        // Civil math across centuries and leap years.
        for (date, days) in [
            ("2000-03-01", 11_017),
            ("1900-03-01", -25_508),
            ("2100-02-28", 47_540),
            ("0000-01-01", -719_528),
        ] {
            let expected = (days * MS_PER_DAY).to_string();
            assert_eq!(f(r#"{{dateFormat "x" d}}"#, json!(date)), expected, "{date}");
        }
        for bad in [
            json!("2023-02-29"),
            json!("2024-13-01"),
            json!("yesterday"),
            json!("2024-03-05T25:00"),
            json!(true),
        ] {
            assert!(
                render(r#"{{dateFormat "YYYY" d}}"#, json!({ "d": bad })).is_err(),
                "{bad}"
            );
        }
        assert!(render(r#"{{dateFormat "YYYY" d}}"#, json!({}))
            .unwrap_err()
            .contains("no date"));
        assert!(render(
            r#"{{dateFormat "YYYY" d "" tz}}"#,
            json!({"d": 0, "tz": "Europe/Paris"})
        )
        .is_err());
        assert!(render(r#"{{dateFormat "YYYY" d}}"#, json!({"d": 999_999_999_999_999_i64})).is_err());
    }
}

//! Timestamps a recipe checks against its tolerance: Unix seconds, or RFC 3339 (Zendesk). Strict
//! on purpose — a timestamp that could be read two ways is refused, not guessed.

use crate::civil_time;
use crate::config::recipe::TimestampFormat;
use crate::pipeline::verify::request::VerifyError;

/// A non-empty run of ASCII digits (no sign, no spaces) as a number.
fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into Unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(s.get(0..4)?)?;
    let month = digits(s.get(5..7)?)?;
    let day = digits(s.get(8..10)?)?;
    let hour = digits(s.get(11..13)?)?;
    let min = digits(s.get(14..16)?)?;
    let sec = digits(s.get(17..19)?)?;
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || ob[3] != b':' {
                return None;
            }
            let sign = match ob[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    if !(1..=12).contains(&month) || day < 1 || day > civil_time::days_in_month(year, month) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(
        civil_time::days_from_civil(year, month, day) * civil_time::SECONDS_PER_DAY + hour * 3600 + min * 60 + sec
            - offset,
    )
}

/// A timestamp as the recipe's format writes it, in Unix seconds; `Malformed` otherwise.
pub(crate) fn parse_timestamp(raw: &str, format: TimestampFormat) -> Result<i64, VerifyError> {
    match format {
        // Digits only: `+5`, `-5`, ` 5` and `5.0` are all refused.
        TimestampFormat::Unix => digits(raw).ok_or(VerifyError::Malformed),
        TimestampFormat::Rfc3339 => parse_rfc3339(raw).ok_or(VerifyError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2021-03-25T05:09:27Z"), Some(1_616_648_967));
        assert_eq!(parse_rfc3339("2021-03-25T07:09:27.123+02:00"), Some(1_616_648_967));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        for bad in [
            "2021-02-29T00:00:00Z",
            "2021-13-01T00:00:00Z",
            "2021-03-25 05:09:27Z",
            "2021-03-25T05:09:27",
            "x",
            "",
            "2021-03-25T05:09:27.Z",
            "2021-03-25T25:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}

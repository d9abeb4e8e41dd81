//! The expiry (`notAfter`) of an X.509 certificate, read from its DER with a few lines of
//! TLV walking: rustls validates certificates but exposes no validity period, and the one date
//! is not worth an X.509 parser as a dependency. Only what precedes `validity` in the
//! `TBSCertificate` is stepped over; anything unexpected gives `None`, never a panic.

use crate::civil_time::{days_from_civil, days_in_month, SECONDS_PER_DAY};

/// ASN.1 tags met on the way (RFC 5280, section 4.1).
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
/// `[0] EXPLICIT Version`, present unless the certificate is X.509 v1.
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The certificate's `notAfter`, in seconds since the Unix epoch; `None` when the DER does not
/// have the shape of a certificate.
pub fn not_after_unix(certificate_der: &[u8]) -> Option<i64> {
    let (certificate, _) = element(certificate_der, SEQUENCE)?;
    let (tbs, _) = element(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = element(rest, VERSION)?.1;
    }
    rest = element(rest, INTEGER)?.1; // serialNumber
    rest = element(rest, SEQUENCE)?.1; // signature algorithm
    rest = element(rest, SEQUENCE)?.1; // issuer
    let (validity, _) = element(rest, SEQUENCE)?;
    let (_, after_not_before) = any_element(validity)?;
    let (tag, not_after) = any_element(after_not_before).map(|((tag, content), _)| (tag, content))?;
    match tag {
        UTC_TIME => parse_time(not_after, false),
        GENERALIZED_TIME => parse_time(not_after, true),
        _ => None,
    }
}

/// The content of the element at the start of `input` if its tag is `tag`, and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let ((found, content), rest) = any_element(input)?;
    (found == tag).then_some((content, rest))
}

/// A DER element: its tag and its content.
type Element<'a> = (u8, &'a [u8]);

/// The tag and content of the element at the start of `input` (DER: single-byte tags, definite
/// lengths), and what follows it.
fn any_element(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte))
    };
    (rest.len() >= length).then(|| ((tag, &rest[..length]), &rest[length..]))
}

/// `YYMMDDHHMMSSZ` (UTCTime: years 1950-2049, RFC 5280) or `YYYYMMDDHHMMSSZ` (GeneralizedTime).
fn parse_time(text: &[u8], four_digit_year: bool) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_suffix('Z')?;
    let year_digits = if four_digit_year { 4 } else { 2 };
    if digits.len() != year_digits + 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |from: usize, to: usize| digits[from..to].parse::<i64>().ok();
    let mut year = number(0, year_digits)?;
    if !four_digit_year {
        year += if year < 50 { 2000 } else { 1900 };
    }
    let at = year_digits;
    let (month, day) = (number(at, at + 2)?, number(at + 2, at + 4)?);
    let (hour, minute, second) = (
        number(at + 4, at + 6)?,
        number(at + 6, at + 8)?,
        number(at + 8, at + 10)?,
    );
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    valid.then(|| days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate_until(year: i32, month: u8, day: u8) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_expiry_of_a_certificate_is_read_in_both_time_forms() {
        // rcgen writes UTCTime up to 2049 and GeneralizedTime from 2050, as RFC 5280 says.
        assert_eq!(not_after_unix(&certificate_until(2030, 1, 2)), Some(1_893_542_400));
        assert_eq!(not_after_unix(&certificate_until(2051, 6, 30)), Some(2_571_696_000));
    }

    #[test]
    fn anything_but_a_certificate_gives_none() {
        let der = certificate_until(2030, 1, 2);
        for cut in [0, 1, 2, 10, 100, der.len() / 2] {
            assert_eq!(not_after_unix(&der[..cut]), None, "cut at {cut}");
        }
        assert_eq!(not_after_unix(b"not der"), None);
        assert_eq!(not_after_unix(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(parse_time(b"301302000000Z", false), None, "month 13");
        assert_eq!(parse_time(b"300230000000Z", false), None, "30 February");
        assert_eq!(parse_time(b"3001020000000", false), None, "no Z");
        assert_eq!(parse_time(b"19700101000000Z", true), Some(0));
        assert_eq!(parse_time(b"491231235959Z", false), Some(2_524_607_999));
        assert_eq!(parse_time(b"500101000000Z", false), Some(-631_152_000));
    }
}

//! When to try a target again: exponential backoff with jitter, and `Retry-After`. Pure logic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often and how patiently a target is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per record, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// Cap on the backoff (before jitter).
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 = after the first failure): the exponential
    /// backoff `initial · 2^(retry-1)`, capped, of which the upper half is jittered by
    /// `jitter` ∈ [0, 1) — so waits never collapse to zero and concurrent workers spread out.
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(31);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// The wait a `Retry-After` value asks for: delta-seconds or an HTTP date (IMF-fixdate);
/// `None` when unreadable. A date in the past asks for no wait.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_imf_fixdate(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7's preferred format).
fn parse_imf_fixdate(value: &str) -> Option<SystemTime> {
    let rest = value.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as u32
        + 1;
    let year: i64 = year.parse().ok()?;
    let clock: Vec<u64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [hours, minutes, seconds] = clock.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *hours > 23 || *minutes > 59 || *seconds > 60 {
        return None;
    }
    let days = crate::civil_time::days_from_civil(year, i64::from(month), i64::from(day));
    let secs = days * crate::civil_time::SECONDS_PER_DAY + (*hours * 3600 + *minutes * 60 + *seconds) as i64;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(1_000),
    };

    #[test]
    fn backoff_doubles_caps_and_jitters_the_upper_half() {
        assert_eq!(POLICY.backoff(1, 0.0), Duration::from_millis(50));
        let almost_full = POLICY.backoff(1, 0.999_999);
        assert!(almost_full > Duration::from_millis(99) && almost_full < Duration::from_millis(100));
        assert_eq!(POLICY.backoff(2, 0.0), Duration::from_millis(100));
        assert_eq!(POLICY.backoff(3, 0.5), Duration::from_millis(300));
        assert_eq!(POLICY.backoff(4, 0.0), Duration::from_millis(400));
        // 100 · 2^4 = 1600 is capped at 1000.
        assert_eq!(POLICY.backoff(5, 0.0), Duration::from_millis(500));
        assert_eq!(POLICY.backoff(100, 1.0), Duration::from_millis(1_000));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_imf_fixdate("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_835_438_400))
        );
        for bad in [
            "",
            "-1",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}

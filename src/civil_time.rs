//! Civil-calendar arithmetic, written once: the recipe's RFC 3339 timestamps (Zendesk), the
//! templates' `dateFormat` and the import worker's `Retry-After` dates all turn a proleptic
//! Gregorian date into days since 1970-01-01 (and back) here.
//!
//! Howard Hinnant's algorithms (<https://howardhinnant.github.io/date_algorithms.html>): no
//! tables, no loops, exact for every year whose day count fits an `i64`. Time of day and
//! offsets stay with the callers, whose formats differ; only the calendar is shared.

/// Seconds in a civil day (Unix time has no leap seconds).
pub const SECONDS_PER_DAY: i64 = 86_400;

/// Milliseconds in a civil day.
pub const MS_PER_DAY: i64 = SECONDS_PER_DAY * 1000;

/// Whether `year` has a 29 February in the proleptic Gregorian calendar.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1-12) of `year`; callers check the month's range first (any other month
/// counts 31 days).
pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`); the
/// fields are not checked: validate them with [`days_in_month`] first.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // The year is counted from March, so that the leap day is the last day of the year.
    let year_from_march = if month <= 2 { year - 1 } else { year };
    let era = year_from_march.div_euclid(400);
    let year_of_era = year_from_march - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The `(year, month, day)` of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
pub fn civil_from_days(days_since_epoch: i64) -> (i64, i64, i64) {
    let days_since_era_zero = days_since_epoch + 719_468;
    let era = days_since_era_zero.div_euclid(146_097);
    let day_of_era = days_since_era_zero - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The recipe's copy before the merge (`verify/recipe.rs`), kept as the reference.
    fn recipe_days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The import worker's copy before the merge (`worker/backoff.rs`), kept as the reference.
    fn backoff_days_from_civil(year: i64, month: u32, day: u32) -> i64 {
        let year = if month <= 2 { year - 1 } else { year };
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = i64::from(month);
        let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The recipe's month lengths before the merge.
    fn recipe_month_days(year: i64, month: i64) -> i64 {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        month_days[(month - 1) as usize]
    }

    #[test]
    fn civil_date_round_trips() {
        for days in (-800_000..3_000_000).step_by(997) {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=days_in_month(year, month)).contains(&day));
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1900, 3, 1), -25_508);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert!(is_leap_year(2000) && is_leap_year(2024) && !is_leap_year(1900) && !is_leap_year(2023));
    }

    proptest! {
        #[test]
        fn merged_calendar_equals_each_former_copy(year in -100_000i64..100_000, month in 1i64..=12, day_seed in 0i64..31) {
            let day = day_seed % days_in_month(year, month) + 1;
            let days = days_from_civil(year, month, day);
            prop_assert_eq!(days, recipe_days_from_civil(year, month, day));
            prop_assert_eq!(days, backoff_days_from_civil(year, month as u32, day as u32));
            prop_assert_eq!(days_in_month(year, month), recipe_month_days(year, month));
            prop_assert_eq!(civil_from_days(days), (year, month, day));
        }
    }
}

//! Times as the contract carries them (RFC 3339), from the Unix timestamps many APIs answer
//! with. Hand-written (Howard Hinnant's civil-from-days): a date crate would grow every guest
//! for twenty lines.

/// `secs` since 1970-01-01T00:00:00Z as RFC 3339 in UTC (`2026-06-16T09:35:08Z`); `None` for a
/// time before year 0 or after year 9999, which no account was created at.
pub fn rfc3339_from_unix(secs: i64) -> Option<String> {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants_and_refuses_impossible_years() {
        assert_eq!(rfc3339_from_unix(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339_from_unix(1_767_225_600).as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(rfc3339_from_unix(951_782_400).as_deref(), Some("2000-02-29T00:00:00Z"));
        assert_eq!(rfc3339_from_unix(1_781_602_508).as_deref(), Some("2026-06-16T09:35:08Z"));
        assert_eq!(rfc3339_from_unix(-1).as_deref(), Some("1969-12-31T23:59:59Z"));
        assert_eq!(rfc3339_from_unix(i64::MAX / 2), None);
        assert_eq!(rfc3339_from_unix(-70_000_000_000), None);
    }
}

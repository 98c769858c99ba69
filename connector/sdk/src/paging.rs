//! Paging: a page handed to the caller, the upstream pages that fill it by offset, and the
//! continuation of a listing paged by key.

/// A page of items and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor of the next page; none on the last.
    pub next_cursor: Option<String>,
}

/// The upstream pages `(offset, limit)` that cover `count` items from `offset`, each at most
/// `max_page` long (an upstream API's largest page), stopping at `total` when it is known.
pub fn offset_pages(offset: u64, count: u32, max_page: u32, total: Option<u64>) -> Vec<(u64, u32)> {
    let end = offset.saturating_add(u64::from(count));
    let end = total.map_or(end, |t| end.min(t));
    let step = u64::from(max_page.max(1));
    let mut pages = Vec::new();
    let mut at = offset;
    while at < end {
        let limit = (end - at).min(step);
        pages.push((at, limit as u32));
        at += limit;
    }
    pages
}

/// The page size to use when the caller asked for `requested`: the connector's `default` when it
/// asked for none, at most `max`; zero is refused.
pub fn page_size(
    requested: Option<u32>,
    default: u32,
    max: u32,
) -> Result<u32, crate::ConnectorError> {
    match requested {
        None => Ok(default.min(max)),
        Some(0) => {
            Err(crate::ConnectorError::InvalidArgument("page size must be at least 1".to_string()))
        }
        Some(n) => Ok(n.min(max)),
    }
}

/// The key to continue a listing paged by key (`after=<key>` with `has_more`) after one of its
/// pages: `None` at its end. A page that says more follow but gives no key to continue from is
/// a broken answer, refused as `internal` rather than read again from the start for ever.
pub fn continuation(
    listing: &str,
    has_more: bool,
    key: Option<String>,
) -> Result<Option<String>, crate::ConnectorError> {
    match (has_more, key) {
        (false, _) => Ok(None),
        (true, Some(key)) if !key.is_empty() => Ok(Some(key)),
        (true, _) => Err(crate::ConnectorError::Internal(format!(
            "{listing}: the service said more items follow but gave no cursor to continue from; the listing stopped rather than start over"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_window_in_upstream_pages_and_stops_at_the_total() {
        assert_eq!(offset_pages(0, 250, 100, None), vec![(0, 100), (100, 100), (200, 50)]);
        assert_eq!(offset_pages(90, 30, 100, Some(100)), vec![(90, 10)]);
        assert_eq!(offset_pages(100, 30, 100, Some(100)), vec![]);
        assert_eq!(offset_pages(u64::MAX - 1, 10, 100, None), vec![(u64::MAX - 1, 1)]);
        assert_eq!(offset_pages(0, 3, 0, None), vec![(0, 1), (1, 1), (2, 1)]);
    }

    #[test]
    fn a_page_with_more_and_no_key_is_a_broken_answer() {
        assert_eq!(
            continuation("GET users", true, Some("u-9".into())).unwrap(),
            Some("u-9".into())
        );
        assert_eq!(continuation("GET users", false, None).unwrap(), None);
        for key in [None, Some(String::new())] {
            let error = continuation("GET users", true, key).unwrap_err();
            assert!(
                matches!(&error, crate::ConnectorError::Internal(m) if m.contains("GET users"))
            );
        }
    }

    #[test]
    fn a_zero_page_is_refused_and_a_large_one_capped() {
        assert!(page_size(Some(0), 50, 100).is_err());
        assert_eq!(page_size(Some(5000), 50, 100).unwrap(), 100);
        assert_eq!(page_size(None, 50, 100).unwrap(), 50);
    }
}

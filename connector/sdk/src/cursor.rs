//! Opaque listing cursors.
//!
//! A cursor records where a listing stands (which upstream listing, and the offset, or for a
//! listing paged by key the key to continue `after`) and is bound
//! to the tenant's scope it came from (a workspace, an organization). It is base64url text with a
//! checksum, so a cursor that was edited, truncated, or produced for another scope is refused as
//! `invalid-argument` instead of silently listing the wrong thing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::types::ConnectorError;

/// A listing a connector's cursors point into, named by one character in the cursor.
pub trait Listing: Copy + Eq {
    /// The character naming this listing in a cursor; distinct per listing of a connector.
    fn code(self) -> char;
}

/// A position in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor<L: Listing> {
    /// The listing.
    pub phase: L,
    /// Offset within it.
    pub offset: u64,
    /// The listing's length as the call that made the cursor last saw it, when known. Only a
    /// hint: the next call uses it to ask for its first pages together rather than one page
    /// first to learn the length, and the answers' own totals replace it.
    pub total: Option<u64>,
    /// For a listing paged by key (`after=<id>`, `has_more`): the key of the last item listed,
    /// from which the next page continues. `offset` then counts the items listed before it.
    pub after: Option<String>,
    /// What the connector carries from one call of a listing to the next, in its own words (for
    /// the ChatGPT connector, the console groups that held anyone at the listing's first call),
    /// so that later calls need not read it again. Checksummed with the rest; the connector
    /// still checks what it reads back.
    pub carried: Option<String>,
}

impl<L: Listing> Cursor<L> {
    /// The start of `phase`.
    pub fn start(phase: L) -> Self {
        Cursor { phase, offset: 0, total: None, after: None, carried: None }
    }

    /// `phase` at `offset`, with the listing's length when known.
    pub fn at(phase: L, offset: u64, total: Option<u64>) -> Self {
        Cursor { phase, offset, total, after: None, carried: None }
    }
}

const VERSION: &str = "a1";

impl<L: Listing> Cursor<L> {
    /// Encodes the cursor, bound to `account_id` (the scope its listing belongs to).
    pub fn encode(&self, account_id: &str) -> String {
        let mut body = format!("{VERSION}:{}:{}", self.phase.code(), self.offset);
        if let Some(total) = self.total {
            body.push_str(&format!(":{total}"));
        }
        if let Some(after) = &self.after {
            body.push_str(&format!(":k{}", URL_SAFE_NO_PAD.encode(after)));
        }
        if let Some(carried) = &self.carried {
            body.push_str(&format!(":c{}", URL_SAFE_NO_PAD.encode(carried)));
        }
        let sum = checksum(account_id, &body);
        URL_SAFE_NO_PAD.encode(format!("{body}:{sum:016x}"))
    }

    /// Decodes a cursor produced by [`encode`](Self::encode) for the same `account_id`, whose
    /// phase must be one of `phases` (a cursor of one listing is refused by another).
    pub fn decode(raw: &str, account_id: &str, phases: &[L]) -> Result<Self, ConnectorError> {
        let invalid = |why: &str| {
            ConnectorError::InvalidArgument(format!(
                "cursor {:?} is not valid: {why}; start the listing again without a cursor",
                abbreviate(raw)
            ))
        };
        let bytes = URL_SAFE_NO_PAD.decode(raw.as_bytes()).map_err(|_| invalid("not base64url"))?;
        let text = String::from_utf8(bytes).map_err(|_| invalid("not text"))?;
        let (body, sum) = text.rsplit_once(':').ok_or_else(|| invalid("no checksum"))?;
        let sum = u64::from_str_radix(sum, 16).map_err(|_| invalid("bad checksum"))?;
        if sum != checksum(account_id, body) {
            return Err(invalid("checksum mismatch (edited, or from another workspace)"));
        }
        let mut parts = body.split(':');
        if parts.next() != Some(VERSION) {
            return Err(invalid("unknown version"));
        }
        let phase = parts
            .next()
            .and_then(|code| {
                phases.iter().copied().find(|p| code.len() == 1 && code.starts_with(p.code()))
            })
            .ok_or_else(|| invalid("it belongs to another listing"))?;
        let offset = parts
            .next()
            .and_then(|o| o.parse::<u64>().ok())
            .ok_or_else(|| invalid("bad offset"))?;
        // Optional parts, each at most once and in this order: the total (cursors made before
        // it was carried end at the offset), a key (base64url after a `k`), what the connector
        // carries (base64url after a `c`; cursors made before it have none).
        let (mut total, mut after, mut carried) = (None, None, None);
        let text = |encoded: &str, what: &str| {
            let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| invalid(what))?;
            String::from_utf8(bytes).map_err(|_| invalid(what))
        };
        let mut next_part = 0;
        for part in parts {
            if let Some(key) = part.strip_prefix('k').filter(|_| next_part <= 1) {
                let key = text(key, "bad key")?;
                if key.is_empty() {
                    return Err(invalid("empty key"));
                }
                after = Some(key);
                next_part = 2;
            } else if let Some(state) = part.strip_prefix('c').filter(|_| next_part <= 2) {
                carried = Some(text(state, "bad carried state")?);
                next_part = 3;
            } else if next_part == 0 && !part.starts_with(['k', 'c']) {
                total = Some(part.parse::<u64>().map_err(|_| invalid("bad total"))?);
                next_part = 1;
            } else {
                return Err(invalid("trailing data"));
            }
        }
        Ok(Cursor { phase, offset, total, after, carried })
    }
}

/// FNV-1a over the workspace id and the cursor body: detects edits, not forgery (a caller gains
/// nothing by forging a cursor over its own tenant's listing).
fn checksum(account_id: &str, body: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in account_id.bytes().chain([0u8]).chain(body.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn abbreviate(raw: &str) -> String {
    if raw.chars().count() > 40 {
        format!("{}…", raw.chars().take(40).collect::<String>())
    } else {
        raw.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three listings, named as the ChatGPT connector names its own.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Phase {
        Members,
        Invites,
        Entitlements,
    }

    impl Listing for Phase {
        fn code(self) -> char {
            ['m', 'i', 'e'][self as usize]
        }
    }

    #[test]
    fn round_trips_and_binds_to_the_workspace() {
        let accounts = [Phase::Members, Phase::Invites];
        let known = Cursor::at(Phase::Members, 1000, Some(2500));
        assert_eq!(Cursor::decode(&known.encode("ws-a"), "ws-a", &accounts).unwrap(), known);
        let keyed = Cursor {
            after: Some("user-Ab:c/9".to_string()),
            ..Cursor::at(Phase::Members, 1000, None)
        };
        assert_eq!(Cursor::decode(&keyed.encode("ws-a"), "ws-a", &accounts).unwrap(), keyed);
        let both = Cursor { total: Some(3000), ..keyed.clone() };
        assert_eq!(Cursor::decode(&both.encode("ws-a"), "ws-a", &accounts).unwrap(), both);
        for carried in ["", "g-1,g-2", "ünïcode:and,colons"] {
            let carrying = Cursor { carried: Some(carried.to_string()), ..both.clone() };
            let raw = carrying.encode("ws-a");
            assert_eq!(Cursor::decode(&raw, "ws-a", &accounts).unwrap(), carrying);
            let alone =
                Cursor { carried: Some(carried.to_string()), ..Cursor::start(Phase::Members) };
            assert_eq!(Cursor::decode(&alone.encode("ws-a"), "ws-a", &accounts).unwrap(), alone);
        }
        let c = Cursor::at(Phase::Invites, 200, None);
        let raw = c.encode("ws-a");
        assert_eq!(Cursor::decode(&raw, "ws-a", &accounts).unwrap(), c);
        assert!(Cursor::decode(&raw, "ws-a", &[Phase::Entitlements]).is_err());
        assert!(matches!(
            Cursor::decode(&raw, "ws-b", &accounts),
            Err(ConnectorError::InvalidArgument(_))
        ));
    }

    #[test]
    fn refuses_every_single_character_edit() {
        let raw =
            Cursor { after: Some("user-1".into()), ..Cursor::at(Phase::Members, 100, Some(900)) }
                .encode("ws");
        for i in 0..raw.len() {
            let mut edited: Vec<u8> = raw.clone().into_bytes();
            edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(edited).unwrap();
            assert!(Cursor::decode(&edited, "ws", &[Phase::Members]).is_err(), "accepted {edited}");
        }
        for junk in ["", "!!!", "bm90IGEgY3Vyc29y", &"x".repeat(5000)] {
            assert!(Cursor::decode(junk, "ws", &[Phase::Members]).is_err());
        }
    }

    /// Signs `body` as `encode` does, for cursors `encode` would not make.
    fn signed(body: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{body}:{:016x}", checksum("ws", body)))
    }

    #[test]
    fn reads_cursors_made_before_the_total_was_carried_and_refuses_bad_totals() {
        assert_eq!(
            Cursor::decode(&signed("a1:m:300"), "ws", &[Phase::Members]).unwrap(),
            Cursor::at(Phase::Members, 300, None)
        );
        for body in [
            "a1:m:300:",
            "a1:m:300:-1",
            "a1:m:300:many",
            "a1:m:300:900:1",
            "a1:m:300:k",
            "a1:m:300:k!!",
            "a1:m:300:kdQ:kdQ",
            "a1:m:300:c!!",
            "a1:m:300:cdQ:cdQ",
            "a1:m:300:cdQ:kdQ",
            "a1:m:300:cdQ:900",
            "a1:m:300:c_w",
        ] {
            let error = Cursor::decode(&signed(body), "ws", &[Phase::Members]).unwrap_err();
            assert!(matches!(error, ConnectorError::InvalidArgument(_)), "{body}: {error:?}");
        }
    }
}

//! Property tests: no input, however malformed, makes the connector's parsers panic.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use chatgpt_connector::api::{
    InviteResponse, ListPage, Member, WorkspaceSettings, classify_failure, parse_json,
};
use chatgpt_connector::cursor::{Cursor, Phase};
use chatgpt_connector::settings::Settings;
use connector_sdk::transport::HttpResponse;
use proptest::prelude::*;

fn response(status: u16, content_type: Option<String>, body: Vec<u8>) -> HttpResponse {
    HttpResponse { status, content_type, retry_after: None, body }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn cursor_decoding_never_panics(raw in ".{0,200}", account in "[a-z0-9-]{1,20}") {
        let _ = Cursor::decode(&raw, &account, &[Phase::Members, Phase::Invites, Phase::Entitlements]);
    }

    #[test]
    fn only_cursors_we_made_decode(
        offset in any::<u64>(),
        total in proptest::option::of(any::<u64>()),
        flip in any::<prop::sample::Index>(),
    ) {
        let cursor = Cursor::at(Phase::Invites, offset, total);
        let raw = cursor.encode("ws");
        let phases = [Phase::Members, Phase::Invites];
        prop_assert_eq!(Cursor::decode(&raw, "ws", &phases).unwrap(), cursor);
        let mut bytes = raw.into_bytes();
        let i = flip.index(bytes.len());
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(bytes).unwrap();
        prop_assert!(Cursor::decode(&edited, "ws", &phases).is_err());
    }

    #[test]
    fn answers_of_any_status_type_and_body_are_typed(
        status in 100u16..600,
        content_type in proptest::option::of("(application/json|text/html|text/plain|[a-z/;= -]{0,30})"),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let answer = response(status, content_type, body);
        let _ = parse_json::<ListPage<Member>>("GET users", &answer);
        let _ = parse_json::<InviteResponse>("POST invites", &answer);
        let _ = parse_json::<WorkspaceSettings>("GET settings", &answer);
        let _ = classify_failure("GET users", &answer);
    }

    #[test]
    fn json_shaped_answers_are_typed(body in r#"\{("[a-z_]{1,12}":(null|[0-9]{1,5}|"[^"\\]{0,10}"|\[\]|\{\}|true),?){0,6}\}"#) {
        let answer = response(200, Some("application/json".into()), body.into_bytes());
        let _ = parse_json::<ListPage<Member>>("GET users", &answer);
        let _ = parse_json::<InviteResponse>("POST invites", &answer);
    }

    #[test]
    fn settings_of_any_text_are_validated(
        base in ".{0,60}", account in ".{0,40}", page in ".{0,8}", attempts in ".{0,5}",
    ) {
        let source: HashMap<String, String> = [
            ("base-url", base), ("account-id", account), ("page-size", page), ("max-attempts", attempts),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let _ = Settings::load(&source);
    }
}

//! Property tests: no answer of the service, however malformed, and no cursor or reference,
//! however mangled, makes the connector panic; each is a typed error or a result.

#![allow(clippy::unwrap_used)]

use connector_sdk::settings::RetryPolicy;
use connector_sdk::transport::{FakeTransport, HttpResponse};
use connector_sdk::types::{AccountRef, PageRequest};
use connector_sdk::{ChangeAction, ChangeRequest, Connector};
use openai_platform_connector::PlatformConnector;
use openai_platform_connector::settings::Settings;
use proptest::prelude::*;

/// A list-shaped answer with items of the service's fields, sometimes wrong.
const LISTS: &str = r#"\{"object":"list","data":\[(\{"id":"[a-z0-9_-]{0,6}","email":"[a-z@.]{0,8}","role":"(owner|reader|member|none|x)","status":"(pending|expired|accepted|active|archived)","name":"n"(,"projects":\[\{"id":"p","role":"(member|x)"\}\])?\},?){0,3}\],"has_more":(true|false)(,"last_id":"[a-z]{0,3}")?(,"next":(null|"c[0-9]"))?\}"#;

fn connector(answers: Vec<(u16, String)>) -> PlatformConnector<FakeTransport> {
    let transport = FakeTransport::new();
    for (status, body) in answers {
        transport.answer(Ok(HttpResponse::text(status, "application/json", &body)));
    }
    let settings = Settings {
        base_url: "https://api.test/v1".into(),
        page_size: 10,
        invite_on_role_grant: true,
        retry: RetryPolicy { max_attempts: 1, ..RetryPolicy::default() },
    };
    PlatformConnector::new(transport, settings)
}

fn answers() -> impl Strategy<Value = Vec<(u16, String)>> {
    let body = prop_oneof![
        4 => LISTS,
        1 => r#"\{"id":"[a-z0-9-]{0,5}","email":"a@b.co","role":"(owner|reader)","status":"(pending|accepted|expired)"\}"#,
        1 => ".{0,40}",
    ];
    let status =
        prop_oneof![6 => Just(200u16), 1 => Just(400u16), 1 => Just(404u16), 1 => Just(500u16)];
    proptest::collection::vec((status, body), 0..24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn reads_of_any_answers_are_typed(answers in answers()) {
        let _ = connector(answers.clone()).list_accounts(&PageRequest { cursor: None, size: Some(5) });
        let _ = connector(answers.clone()).list_entitlements(&PageRequest { cursor: None, size: Some(3) });
        let _ = connector(answers).get_account(&AccountRef::Email("ann@acme.com".into()));
    }

    #[test]
    fn writes_over_any_answers_are_typed(answers in answers(), entitlement in "(organization|org-role:owner|project:p:member|group:g|role:r|project:\\*:owner|.{0,12})") {
        let change = |action| ChangeRequest {
            action,
            account: AccountRef::Email("ann@acme.com".into()),
            entitlement: entitlement.clone(),
        };
        let _ = connector(answers.clone()).apply_batch(&[change(ChangeAction::Grant)], false);
        let _ = connector(answers).apply_batch(&[change(ChangeAction::Revoke), change(ChangeAction::Grant)], true);
    }

    #[test]
    fn any_cursor_or_reference_is_refused_or_read(cursor in ".{0,80}", id in ".{0,40}") {
        let _ = connector(Vec::new()).list_accounts(&PageRequest { cursor: Some(cursor.clone()), size: None });
        let _ = connector(Vec::new()).list_entitlements(&PageRequest { cursor: Some(cursor), size: None });
        let _ = connector(Vec::new()).get_account(&AccountRef::Id(id.clone()));
        let _ = connector(Vec::new()).get_account(&AccountRef::Email(id));
    }
}

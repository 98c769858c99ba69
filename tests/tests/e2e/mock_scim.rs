//! The mock's SCIM 2.0 surface called directly, as an identity provider would: paging, filters,
//! PATCH, errors, discovery, and what SCIM changes do to the console's view of the workspace.

#![allow(clippy::unwrap_used)]

use accessgov_mock::{
    Fault, FaultPlan, FaultScript, GenerateSpec, MockServer, MockService, SCIM_MAX_PAYLOAD_BYTES,
    SCIM_MAX_RESULTS, seed,
};
use serde_json::{Value, json};

use crate::common::{Reply, bearer, raw};

const WS: &str = "ws-scim";
const DIR: &str = "dir-7c1e";
const TOKEN: &str = "scim-token-9b2f";
const OWNER: &str = "owner-token-4a1d";
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A SCIM request with the directory's token.
async fn scim(server: &MockServer, method: &str, path: &str, body: Option<Value>) -> Reply {
    scim_as(server, TOKEN, method, path, body).await
}

async fn scim_as(
    server: &MockServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [bearer(token), ("content-type", "application/scim+json".to_string())];
    raw(server.addr(), method, &format!("/scim/v2.0/{DIR}{path}"), &headers, body.as_bytes()).await
}

/// A console request as the workspace Owner.
async fn console(server: &MockServer, method: &str, path: &str, body: Option<Value>) -> Reply {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [
        bearer(OWNER),
        ("chatgpt-account-id", WS.to_string()),
        ("content-type", "application/json".to_string()),
    ];
    let path = format!("/backend-api/accounts/{WS}{path}");
    raw(server.addr(), method, &path, &headers, body.as_bytes()).await
}

async fn start(members: usize) -> MockServer {
    let service = MockService::new();
    service.put_workspace(seed::generate(
        WS,
        GenerateSpec { members, invites: 2, seed: 3, join_requests: 0 },
    ));
    service.add_token(OWNER, WS, "account-owner");
    service.enable_scim(WS, DIR, TOKEN);
    MockServer::start_local(service).await.unwrap()
}

fn user_body(user_name: &str) -> Value {
    json!({"schemas": [USER_URN], "userName": user_name})
}

/// Creates a user; returns its id.
async fn create_user(server: &MockServer, body: Value) -> String {
    let reply = scim(server, "POST", "/Users", Some(body)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_string()
}

/// A user body of about `size` bytes.
fn padded(user_name: &str, size: usize) -> Value {
    let name = "x".repeat(size);
    json!({"schemas": [USER_URN], "userName": user_name, "displayName": name})
}

fn patch(ops: Value) -> Option<Value> {
    Some(json!({"schemas": [PATCH_URN], "Operations": ops}))
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_filter_and_project() {
    let server = start(3).await;
    let mut created = Vec::new();
    for i in 0..SCIM_MAX_RESULTS + 5 {
        created.push(create_user(&server, user_body(&format!("Person{i}@Acme.example"))).await);
    }
    let total = created.len();

    // Default page and the largest page are maxResults; totalResults counts everything.
    for query in ["", "?count=100000"] {
        let reply = scim(&server, "GET", &format!("/Users{query}"), None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/scim+json"));
        assert_eq!(reply.body["schemas"], json!([LIST_URN]));
        assert_eq!(reply.body["totalResults"], json!(total));
        assert_eq!(reply.body["itemsPerPage"], json!(SCIM_MAX_RESULTS));
        assert_eq!(reply.body["startIndex"], json!(1));
        assert_eq!(ids(&reply), created[..SCIM_MAX_RESULTS]);
    }

    // Pages of 60 from startIndex 1 walk every user once, in order.
    let mut walked = Vec::new();
    let mut start = 1;
    loop {
        let reply =
            scim(&server, "GET", &format!("/Users?startIndex={start}&count=60"), None).await;
        assert_eq!(reply.body["startIndex"], json!(start));
        assert_eq!(reply.body["totalResults"], json!(total));
        let page = ids(&reply);
        assert_eq!(reply.body["itemsPerPage"], json!(page.len()));
        walked.extend(page.clone());
        if page.len() < 60 {
            assert_eq!(page.len(), total % 60);
            break;
        }
        start += 60;
    }
    assert_eq!(walked, created);

    // Beyond the end; count=0; startIndex below 1; negative count.
    let reply = scim(&server, "GET", &format!("/Users?startIndex={}", total + 10), None).await;
    assert_eq!((reply.body["itemsPerPage"].clone(), ids(&reply).len()), (json!(0), 0));
    assert_eq!(reply.body["totalResults"], json!(total));
    let reply = scim(&server, "GET", "/Users?count=0", None).await;
    assert_eq!((reply.body["totalResults"].clone(), ids(&reply).len()), (json!(total), 0));
    let reply = scim(&server, "GET", "/Users?startIndex=0&count=2", None).await;
    assert_eq!((reply.body["startIndex"].clone(), ids(&reply)), (json!(1), created[..2].to_vec()));
    let reply = scim(&server, "GET", "/Users?startIndex=-4&count=-1", None).await;
    assert_eq!((reply.body["startIndex"].clone(), ids(&reply).len()), (json!(1), 0));
    let reply = scim(&server, "GET", "/Users?count=ten", None).await;
    assert_eq!(reply.scim_error(400).as_deref(), Some("invalidValue"));
    let reply = scim(&server, "GET", "/Users?startIndex=1.5", None).await;
    assert_eq!(reply.scim_error(400).as_deref(), Some("invalidValue"));

    // userName is caseExact false; ids are caseExact.
    let filter = |f: &str| format!("/Users?filter={}", urlencode(f));
    let reply = scim(&server, "GET", &filter(r#"userName eq "PERSON7@acme.EXAMPLE""#), None).await;
    assert_eq!(ids(&reply), [created[7].clone()]);
    assert_eq!(reply.body["Resources"][0]["userName"], json!("person7@acme.example"));
    let reply = scim(&server, "GET", &filter(&format!(r#"id eq "{}""#, created[9])), None).await;
    assert_eq!(ids(&reply), [created[9].clone()]);
    let reply =
        scim(&server, "GET", &filter(&format!(r#"id eq "{}""#, created[9].to_uppercase())), None)
            .await;
    assert_eq!(reply.body["totalResults"], json!(0));
    let reply = scim(
        &server,
        "GET",
        &filter(r#"emails.value eq "person1@acme.example" or userName eq "person2@acme.example""#),
        None,
    )
    .await;
    assert_eq!(ids(&reply), created[1..3]);
    let reply = scim(
        &server,
        "GET",
        &format!("{}&count=2", filter(r#"userName sw "person1" and active eq true"#)),
        None,
    )
    .await;
    // person1, person10..19, person100..199: 1 + 10 + 100.
    assert_eq!((reply.body["totalResults"].clone(), ids(&reply).len()), (json!(111), 2));
    for bad in
        [r#"userName xx "a""#, r#"nickName eq "a""#, r#"userName eq "a"#, "active eq \"true\""]
    {
        let reply = scim(&server, "GET", &filter(bad), None).await;
        assert_eq!(reply.scim_error(400).as_deref(), Some("invalidFilter"), "{bad}");
    }

    // attributes / excludedAttributes: id and schemas always come back.
    let reply = scim(
        &server,
        "GET",
        &format!("/Users/{}?attributes=USERNAME,name.givenName", created[0]),
        None,
    )
    .await;
    let mut keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["id", "schemas", "userName"]);
    let reply =
        scim(&server, "GET", "/Users?count=1&excludedAttributes=emails,meta,id", None).await;
    let first = &reply.body["Resources"][0];
    assert!(first.get("emails").is_none() && first.get("meta").is_none());
    assert_eq!(first["id"], json!(created[0]));
    assert_eq!(first["userName"], json!("person0@acme.example"));

    // The request log records the SCIM surface too.
    let log = server.service().requests();
    assert!(log.iter().any(|r| r.path == format!("/scim/v2.0/{DIR}/Users") && r.status == 201));
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_drive_the_console_workspace() {
    let server = start(6).await;
    let service = server.service();
    service.lock().workspaces.get_mut(WS).unwrap().default_seat_type = "usage_based".into();

    // A new active user is a SCIM-managed invite: role Member, the workspace's default seat.
    let reply = scim(
        &server,
        "POST",
        "/Users",
        Some(json!({
            "schemas": [USER_URN], "userName": "Carl@Acme.example", "externalId": "ext-carl",
            "name": {"givenName": "Carl", "familyName": "Ortiz"}, "active": true, "id": "ignored",
            "nickName": "unknown attributes are ignored",
        })),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let carl = reply.body["id"].as_str().unwrap().to_string();
    assert!(carl.starts_with("user-") && carl != "ignored");
    assert_eq!(reply.header("location"), reply.body["meta"]["location"].as_str());
    assert_eq!(
        reply.body["meta"]["location"].as_str().unwrap(),
        format!("{}/Users/{carl}", server.scim_base_url(DIR))
    );
    assert_eq!(reply.body["userName"], json!("carl@acme.example"));
    assert_eq!(
        reply.body["emails"],
        json!([{"value": "carl@acme.example", "type": "work", "primary": true}])
    );
    assert_eq!(reply.body["name"]["formatted"], json!("Carl Ortiz"));
    assert_eq!(reply.body["groups"], json!([]));
    let invites = console(&server, "GET", "/invites?limit=100", None).await;
    let invite = invites.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email_address"] == "carl@acme.example")
        .unwrap()
        .clone();
    assert_eq!(
        (&invite["is_scim_managed"], &invite["role"], &invite["seat_type"]),
        (&json!(true), &json!("standard-user"), &json!("usage_based"))
    );

    // Carl accepts: his member id is his SCIM id.
    let member = service.accept_invite(WS, "carl@acme.example").unwrap();
    assert_eq!((member.id.as_str(), member.is_scim_managed), (carl.as_str(), true));
    assert_eq!(member.name, "Carl Ortiz");
    let listed = console(&server, "GET", "/users?query=carl", None).await;
    assert_eq!(listed.body["items"][0]["id"], json!(carl));
    assert_eq!(console(&server, "GET", "/invites?query=carl", None).await.body["total"], json!(0));

    // An existing member is taken over: same id, now SCIM-managed, and the console refuses to
    // remove them.
    let existing = service.workspace(WS).unwrap().members[2].clone();
    let dana = create_user(&server, user_body(&existing.email.to_uppercase())).await;
    assert_eq!(dana, existing.id);
    assert!(
        service.workspace(WS).unwrap().member_by_email(&existing.email).unwrap().is_scim_managed
    );
    let refused = console(&server, "DELETE", &format!("/users/{dana}"), None).await;
    assert_eq!(
        (refused.status, refused.body["detail"].as_str()),
        (400, Some("User is managed by SCIM"))
    );

    // Deactivating (Entra's capitalised op) removes the member from the console listing.
    let reply = scim(
        &server,
        "PATCH",
        &format!("/Users/{carl}"),
        patch(json!([{"op": "Replace", "path": "active", "value": false}])),
    )
    .await;
    assert_eq!((reply.status, &reply.body["active"]), (200, &json!(false)));
    let listed = console(&server, "GET", "/users?limit=100", None).await;
    assert!(listed.body["items"].as_array().unwrap().iter().all(|m| m["id"] != json!(carl)));
    assert_eq!(listed.body["total"], json!(6));

    // Reactivating invites again; deleting cancels that invite.
    let reply = scim(
        &server,
        "PATCH",
        &format!("/Users/{carl}"),
        patch(json!([{"op": "replace", "value": {"active": true}}])),
    )
    .await;
    assert_eq!(reply.body["active"], json!(true));
    assert!(
        service
            .workspace(WS)
            .unwrap()
            .invite_by_email("carl@acme.example")
            .unwrap()
            .is_scim_managed
    );
    let reply = scim(&server, "DELETE", &format!("/Users/{carl}"), None).await;
    assert_eq!(reply.status, 204);
    assert!(service.workspace(WS).unwrap().invite_by_email("carl@acme.example").is_none());
    let reply = scim(&server, "GET", &format!("/Users/{carl}"), None).await;
    assert_eq!(reply.scim_error(404), None);

    // PUT with active false on the taken-over member removes them from the console.
    let reply = scim(
        &server,
        "PUT",
        &format!("/Users/{dana}"),
        Some(json!({
            "schemas": [USER_URN], "userName": existing.email, "active": false,
            "displayName": "Dana",
        })),
    )
    .await;
    assert_eq!((reply.status, &reply.body["displayName"]), (200, &json!("Dana")));
    assert!(service.workspace(WS).unwrap().member_by_email(&existing.email).is_none());

    // Created inactive: no invite.
    let eve = create_user(
        &server,
        json!({"schemas": [USER_URN], "userName": "eve@acme.example", "active": false}),
    )
    .await;
    assert!(service.workspace(WS).unwrap().invite_by_email("eve@acme.example").is_none());
    let reply = scim(&server, "GET", &format!("/Users/{eve}"), None).await;
    assert_eq!(reply.body["active"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_patches_follow_rfc_7644() {
    let server = start(2).await;
    let id = create_user(
        &server,
        json!({
            "schemas": [USER_URN], "userName": "fay",
            "emails": [{"value": "fay@acme.example", "type": "work", "primary": true}],
        }),
    )
    .await;
    let path = format!("/Users/{id}");
    let reply = scim(
        &server,
        "PATCH",
        &path,
        patch(json!([
            {"op": "add", "path": "name.givenName", "value": "Fay"},
            {"op": "Replace", "path": "displayName", "value": "Fay W"},
            {"op": "replace", "value": {"name.familyName": "Wong", "externalId": "ext-1"}},
            {"op": "replace", "path": "emails[type eq \"work\"].value",
                "value": "fay.wong@acme.example"},
            {"op": "add", "path": "emails",
                "value": [{"value": "fay@home.example", "type": "home"}]},
        ])),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["name"],
        json!({"formatted": "Fay Wong", "familyName": "Wong", "givenName": "Fay"})
    );
    assert_eq!(reply.body["displayName"], json!("Fay W"));
    assert_eq!(reply.body["externalId"], json!("ext-1"));
    assert_eq!(
        reply.body["emails"],
        json!([
            {"value": "fay.wong@acme.example", "type": "work", "primary": true},
            {"value": "fay@home.example", "type": "home", "primary": false}
        ])
    );
    // The pending invite follows the primary address.
    let ws = server.service().workspace(WS).unwrap();
    assert!(ws.invite_by_email("fay@acme.example").is_none());
    assert!(ws.invite_by_email("fay.wong@acme.example").unwrap().is_scim_managed);

    let reply =
        scim(&server, "PATCH", &path, patch(json!([{"op": "remove", "path": "displayName"}])))
            .await;
    assert!(reply.body.get("displayName").is_none());

    for (ops, kind) in [
        (json!([{"op": "replace", "path": "id", "value": "user-x"}]), "mutability"),
        (json!([{"op": "replace", "path": "nickName", "value": "x"}]), "invalidPath"),
        (
            json!([{"op": "replace", "path": "emails[type eq \"work\"", "value": "x"}]),
            "invalidPath",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "emails[type eq \"other\"].value",
                "value": "o@x.example"}]),
            "noTarget",
        ),
        (json!([{"op": "replace", "path": "active", "value": "False"}]), "invalidValue"),
        (json!([{"op": "remove", "path": "userName"}]), "invalidValue"),
        (json!([{"op": "jump", "path": "active", "value": true}]), "invalidSyntax"),
    ] {
        let reply = scim(&server, "PATCH", &path, patch(ops.clone())).await;
        assert_eq!(reply.scim_error(400).as_deref(), Some(kind), "{ops}");
    }
    let reply = scim(
        &server,
        "PATCH",
        &path,
        Some(json!({"Operations": [{"op": "replace", "path": "active", "value": false}]})),
    )
    .await;
    assert_eq!(reply.scim_error(400).as_deref(), Some("invalidSyntax"));
    // Nothing of the refused patches applied.
    let reply = scim(&server, "GET", &path, None).await;
    assert_eq!(
        (reply.body["active"].clone(), reply.body["userName"].clone()),
        (json!(true), json!("fay"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_keep_only_live_members() {
    let server = start(2).await;
    let ann = create_user(&server, user_body("ann@acme.example")).await;
    let bob = create_user(&server, user_body("bob@acme.example")).await;
    let cat = create_user(&server, user_body("cat@acme.example")).await;
    let off = create_user(
        &server,
        json!({"schemas": [USER_URN], "userName": "off@acme.example", "active": false}),
    )
    .await;

    let reply = scim(
        &server,
        "POST",
        "/Groups",
        Some(json!({"schemas": [GROUP_URN], "displayName": "Engineering",
        "members": [
            {"value": ann}, {"value": "user-nobody"}, {"value": off}, {"value": ann}
        ]})),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let group = reply.body["id"].as_str().unwrap().to_string();
    assert_eq!(reply.header("location"), reply.body["meta"]["location"].as_str());
    assert_eq!(
        reply.body["members"],
        json!([{
            "value": ann,
            "display": "ann@acme.example",
            "$ref": format!("{}/Users/{ann}", server.scim_base_url(DIR)),
            "type": "User",
        }])
    );
    assert_eq!(reply.body["meta"]["resourceType"], json!("Group"));

    let reply = scim(
        &server,
        "POST",
        "/Groups",
        Some(json!({"schemas": [GROUP_URN], "displayName": "ENGINEERING"})),
    )
    .await;
    assert_eq!(reply.scim_error(409).as_deref(), Some("uniqueness"));
    let reply =
        scim(&server, "POST", "/Groups", Some(json!({"schemas": [GROUP_URN], "members": []})))
            .await;
    assert_eq!(reply.scim_error(400).as_deref(), Some("invalidValue"));

    let path = format!("/Groups/{group}");
    let members = |reply: &Reply| -> Vec<String> {
        reply.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_string())
            .collect()
    };
    let reply = scim(
        &server,
        "PATCH",
        &path,
        patch(json!([{"op": "Add", "path": "members", "value": [
            {"value": bob}, {"value": ann}, {"value": "user-ghost"}, {"value": cat}
        ]}])),
    )
    .await;
    assert_eq!(members(&reply), [ann.clone(), bob.clone(), cat.clone()]);
    let reply = scim(
        &server,
        "PATCH",
        &path,
        patch(json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}])),
    )
    .await;
    assert_eq!(members(&reply), [ann.clone(), cat.clone()]);
    // Entra removes with a value list.
    let reply = scim(
        &server,
        "PATCH",
        &path,
        patch(json!([{"op": "Remove", "path": "members", "value": [{"value": cat}]}])),
    )
    .await;
    assert_eq!(members(&reply), std::slice::from_ref(&ann));
    let replace = json!([
        {"op": "REPLACE", "path": "members", "value": [{"value": cat}, {"value": off}]}
    ]);
    let reply = scim(&server, "PATCH", &path, patch(replace)).await;
    assert_eq!(members(&reply), std::slice::from_ref(&cat));
    let reply = scim(
        &server,
        "PATCH",
        &path,
        patch(json!([{"op": "add", "value": {"members": [{"value": bob}]}}])),
    )
    .await;
    assert_eq!(members(&reply), [cat.clone(), bob.clone()]);

    // A user's groups attribute is computed; filters find groups by name and member.
    let reply = scim(&server, "GET", &format!("/Users/{bob}"), None).await;
    assert_eq!(reply.body["groups"][0]["value"], json!(group));
    assert_eq!(reply.body["groups"][0]["display"], json!("Engineering"));
    let reply = scim(
        &server,
        "GET",
        &format!("/Groups?filter={}", urlencode(r#"displayName eq "engineering""#)),
        None,
    )
    .await;
    assert_eq!(ids(&reply), std::slice::from_ref(&group));
    let reply = scim(
        &server,
        "GET",
        &format!("/Groups?filter={}", urlencode(&format!(r#"members[value eq "{ann}"]"#))),
        None,
    )
    .await;
    assert_eq!(reply.body["totalResults"], json!(0));
    let reply = scim(&server, "GET", "/Groups?excludedAttributes=members", None).await;
    assert!(reply.body["Resources"][0].get("members").is_none());

    // Deleting a user takes them out of every group.
    assert_eq!(scim(&server, "DELETE", &format!("/Users/{bob}"), None).await.status, 204);
    let reply = scim(&server, "GET", &path, None).await;
    assert_eq!(members(&reply), std::slice::from_ref(&cat));
    // Deactivating too.
    scim(
        &server,
        "PATCH",
        &format!("/Users/{cat}"),
        patch(json!([{"op": "replace", "path": "active", "value": false}])),
    )
    .await;
    assert!(members(&scim(&server, "GET", &path, None).await).is_empty());

    let reply =
        scim(&server, "PATCH", &path, patch(json!([{"op": "remove", "path": "members"}]))).await;
    assert!(members(&reply).is_empty());
    let reply = scim(
        &server,
        "PUT",
        &path,
        Some(json!({"schemas": [GROUP_URN], "displayName": "Eng", "members": [{"value": ann}]})),
    )
    .await;
    assert_eq!(
        (reply.body["displayName"].clone(), members(&reply)),
        (json!("Eng"), vec![ann.clone()])
    );
    assert_eq!(
        server.service().workspace(WS).unwrap().groups[0].members,
        std::slice::from_ref(&ann)
    );

    // The helper follows the same rules.
    let other = server.service().add_group(WS, "Design", &[&ann, "user-ghost", &off]).unwrap();
    assert_eq!(
        server.service().workspace(WS).unwrap().groups[1].members,
        std::slice::from_ref(&ann)
    );
    assert!(server.service().add_group(WS, "design", &[]).is_none());

    assert_eq!(scim(&server, "DELETE", &format!("/Groups/{other}"), None).await.status, 204);
    let reply = scim(&server, "GET", &format!("/Groups/{other}"), None).await;
    assert_eq!(reply.scim_error(404), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_auth_and_limits() {
    let server = start(4).await;
    let service = server.service();

    // 401 without a token or with a console token; SCIM tokens are no console tokens.
    let reply = raw(server.addr(), "GET", &format!("/scim/v2.0/{DIR}/Users"), &[], b"").await;
    assert_eq!(reply.scim_error(401), None);
    assert!(reply.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")));
    assert_eq!(scim_as(&server, OWNER, "GET", "/Users", None).await.scim_error(401), None);
    let reply = raw(
        server.addr(),
        "GET",
        &format!("/backend-api/accounts/{WS}/users"),
        &[bearer(TOKEN), ("chatgpt-account-id", WS.to_string())],
        b"",
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["error"]["code"].as_str()),
        (401, Some("token_invalidated"))
    );

    // Another directory's token: 403. Unknown directory: 404. Unknown ids: 404.
    service.put_workspace(accessgov_mock::Workspace::new("ws-other"));
    service.enable_scim("ws-other", "dir-other", "scim-other");
    assert_eq!(scim_as(&server, "scim-other", "GET", "/Users", None).await.scim_error(403), None);
    let reply = raw(server.addr(), "GET", "/scim/v2.0/dir-nope/Users", &[bearer(TOKEN)], b"").await;
    assert_eq!(reply.scim_error(404), None);
    assert_eq!(scim(&server, "GET", "/Users/user-nope", None).await.scim_error(404), None);
    assert_eq!(scim(&server, "GET", "/Groups/nope", None).await.scim_error(404), None);
    assert_eq!(scim(&server, "GET", "/Widgets", None).await.scim_error(404), None);

    // Creation rules.
    create_user(&server, user_body("gus@acme.example")).await;
    let reply = scim(&server, "POST", "/Users", Some(user_body("GUS@Acme.Example"))).await;
    assert_eq!(reply.scim_error(409).as_deref(), Some("uniqueness"));
    let reply = scim(
        &server,
        "POST",
        "/Users",
        Some(json!({
            "schemas": [USER_URN], "userName": "gus2", "emails": [{"value": "Gus@acme.example"}],
        })),
    )
    .await;
    assert_eq!(reply.scim_error(409).as_deref(), Some("uniqueness"));
    for (body, kind) in [
        (
            json!({"schemas": [USER_URN], "userName": "hal@acme.example", "active": "true"}),
            "invalidSyntax",
        ),
        (json!({"userName": "hal@acme.example"}), "invalidSyntax"),
        (json!({"schemas": [GROUP_URN], "userName": "hal@acme.example"}), "invalidSyntax"),
        (json!({"schemas": [USER_URN], "userName": "hal"}), "invalidValue"),
        (json!({"schemas": [USER_URN]}), "invalidValue"),
        (
            json!({
                "schemas": [USER_URN], "userName": "hal", "emails": [{"value": "not-an-email"}],
            }),
            "invalidValue",
        ),
    ] {
        let reply = scim(&server, "POST", "/Users", Some(body.clone())).await;
        assert_eq!(reply.scim_error(400).as_deref(), Some(kind), "{body}");
    }
    let reply = raw(
        server.addr(),
        "POST",
        &format!("/scim/v2.0/{DIR}/Users"),
        &[bearer(TOKEN), ("content-type", "application/json".into())],
        b"{not json",
    )
    .await;
    assert_eq!(reply.scim_error(400).as_deref(), Some("invalidSyntax"));
    // application/json and a missing content type are accepted.
    for headers in
        [vec![bearer(TOKEN), ("content-type", "application/json".to_string())], vec![bearer(TOKEN)]]
    {
        let body = user_body(&format!("ct{}@acme.example", headers.len()));
        let reply = raw(
            server.addr(),
            "POST",
            &format!("/scim/v2.0/{DIR}/Users"),
            &headers,
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 201);
    }
    let gus = scim(
        &server,
        "GET",
        &format!("/Users?filter={}", urlencode(r#"userName eq "gus@acme.example""#)),
        None,
    )
    .await;
    let gus = gus.body["Resources"][0]["id"].as_str().unwrap().to_string();
    let reply =
        scim(&server, "PUT", &format!("/Users/{gus}"), Some(user_body("ct1@acme.example"))).await;
    assert_eq!(reply.scim_error(409).as_deref(), Some("uniqueness"));

    // Bodies over 2,000 KB: 413, below the server's read limit and above it.
    let big = padded("big@acme.example", SCIM_MAX_PAYLOAD_BYTES);
    let reply = scim(&server, "POST", "/Users", Some(big)).await;
    assert_eq!(reply.scim_error(413), None);
    // Past the 4 MiB the server reads at all, the refusal is SCIM-shaped too.
    let huge = vec![b' '; 4_500_000];
    let reply =
        raw(server.addr(), "POST", &format!("/scim/v2.0/{DIR}/Users"), &[bearer(TOKEN)], &huge)
            .await;
    assert_eq!(reply.scim_error(413), None);
    let fine = padded("fine@acme.example", SCIM_MAX_PAYLOAD_BYTES - 200);
    assert_eq!(scim(&server, "POST", "/Users", Some(fine)).await.status, 201);

    // Methods, /Bulk and /Me.
    let reply = scim(&server, "DELETE", "/Users", None).await;
    assert_eq!(reply.scim_error(405), None);
    assert_eq!(reply.header("allow"), Some("GET, POST"));
    assert_eq!(scim(&server, "POST", "/Bulk", Some(json!({}))).await.scim_error(501), None);
    assert_eq!(scim(&server, "GET", "/Me", None).await.scim_error(501), None);

    // Injected faults answer SCIM bodies; 429 carries Retry-After.
    service.set_faults(FaultPlan {
        scripts: vec![FaultScript {
            method: "GET".into(),
            path_suffix: "/Groups".into(),
            attempts: vec![
                Some(Fault::TooManyRequests { retry_after: Some(7) }),
                Some(Fault::ServerError { status: 503 }),
            ],
            seen: 0,
        }],
        ..FaultPlan::default()
    });
    let reply = scim(&server, "GET", "/Groups", None).await;
    assert_eq!(reply.scim_error(429), None);
    assert_eq!(reply.header("retry-after"), Some("7"));
    assert_eq!(scim(&server, "GET", "/Groups", None).await.scim_error(503), None);
    assert_eq!(scim(&server, "GET", "/Groups", None).await.status, 200);

    // drop_writes: the answer is a success, the state does not change.
    service.lock().workspaces.get_mut(WS).unwrap().drop_writes = true;
    let before = service.workspace(WS).unwrap();
    assert_eq!(
        scim(&server, "POST", "/Users", Some(user_body("lost@acme.example"))).await.status,
        201
    );
    assert_eq!(scim(&server, "DELETE", &format!("/Users/{gus}"), None).await.status, 204);
    assert_eq!(service.workspace(WS).unwrap(), before);

    // A deactivated workspace: 401.
    service.lock().workspaces.get_mut(WS).unwrap().deactivated = true;
    assert_eq!(scim(&server, "GET", "/Users", None).await.scim_error(401), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_matches_behaviour() {
    let server = start(1).await;
    let reply = scim(&server, "GET", "/ServiceProviderConfig", None).await;
    assert_eq!(reply.status, 200);
    let config = reply.body;
    assert_eq!(
        config["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(config["patch"]["supported"], json!(true));
    assert_eq!(config["bulk"]["supported"], json!(false));
    assert_eq!(config["bulk"]["maxPayloadSize"], json!(SCIM_MAX_PAYLOAD_BYTES));
    assert_eq!(config["filter"], json!({"supported": true, "maxResults": SCIM_MAX_RESULTS}));
    for feature in ["changePassword", "sort", "etag"] {
        assert_eq!(config[feature]["supported"], json!(false), "{feature}");
    }
    assert_eq!(config["authenticationSchemes"][0]["type"], json!("oauthbearertoken"));
    // Bulk unsupported: the endpoint says so. No ETags: none sent.
    assert_eq!(scim(&server, "POST", "/Bulk", Some(json!({}))).await.status, 501);
    let reply = scim(&server, "POST", "/Users", Some(user_body("ida@acme.example"))).await;
    assert!(reply.header("etag").is_none() && reply.body["meta"].get("version").is_none());
    // Discovery needs the token too.
    let reply =
        raw(server.addr(), "GET", &format!("/scim/v2.0/{DIR}/ServiceProviderConfig"), &[], b"")
            .await;
    assert_eq!(reply.scim_error(401), None);

    let reply = scim(&server, "GET", "/ResourceTypes", None).await;
    assert_eq!(
        (reply.body["schemas"].clone(), reply.body["totalResults"].clone()),
        (json!([LIST_URN]), json!(2))
    );
    let types: Vec<(String, String, String)> = reply.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["endpoint"].as_str().unwrap().into(),
                r["schema"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("User".into(), "/Users".into(), USER_URN.into()),
            ("Group".into(), "/Groups".into(), GROUP_URN.into())
        ]
    );
    assert_eq!(
        scim(&server, "GET", "/ResourceTypes/Group", None).await.body["endpoint"],
        json!("/Groups")
    );
    assert_eq!(scim(&server, "GET", "/ResourceTypes/Widget", None).await.scim_error(404), None);
    let filtered = format!("/Schemas?filter={}", urlencode(r#"id eq "x""#));
    assert_eq!(scim(&server, "GET", &filtered, None).await.scim_error(403), None);

    let reply = scim(&server, "GET", "/Schemas", None).await;
    assert_eq!(reply.body["totalResults"], json!(2));
    for (urn, resource) in [(USER_URN, "Users"), (GROUP_URN, "Groups")] {
        let schema = scim(&server, "GET", &format!("/Schemas/{urn}"), None).await.body;
        assert_eq!(schema["id"], json!(urn));
        assert_eq!(
            reply.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["id"] == json!(urn))
                .count(),
            1
        );
        for attr in schema["attributes"].as_array().unwrap() {
            for key in
                ["name", "type", "multiValued", "description", "required", "mutability", "returned"]
            {
                assert!(attr.get(key).is_some(), "{urn} {attr} lacks {key}");
            }
            if attr["type"] == "string" {
                assert!(
                    attr.get("caseExact").is_some() && attr.get("uniqueness").is_some(),
                    "{attr}"
                );
            }
            // Every advertised attribute can be filtered on.
            let name = attr["name"].as_str().unwrap();
            let reply = scim(
                &server,
                "GET",
                &format!("/{resource}?filter={}", urlencode(&format!("{name} pr"))),
                None,
            )
            .await;
            assert_eq!(reply.status, 200, "{name}: {}", reply.body);
            for sub in attr["subAttributes"].as_array().into_iter().flatten() {
                let path = format!("{name}.{} pr", sub["name"].as_str().unwrap());
                let reply =
                    scim(&server, "GET", &format!("/{resource}?filter={}", urlencode(&path)), None)
                        .await;
                assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            }
        }
    }
    let user = scim(&server, "GET", &format!("/Schemas/{USER_URN}"), None).await.body;
    let names: Vec<&str> = user["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["userName", "name", "displayName", "emails", "active", "groups"]);
    let user_name = &user["attributes"][0];
    assert_eq!(
        (&user_name["required"], &user_name["caseExact"], &user_name["uniqueness"]),
        (&json!(true), &json!(false), &json!("server"))
    );
    assert_eq!(user["attributes"][5]["mutability"], json!("readOnly"));
    assert_eq!(scim(&server, "GET", "/Schemas/urn:example:nope", None).await.scim_error(404), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_says_what_is_enforced_removing_active_is_refused_and_search_is_served() {
    let server = start(3).await;
    // `/Schemas` says what `POST /Users` enforces: at least one email, each with a value.
    let schema = scim(&server, "GET", &format!("/Schemas/{USER_URN}"), None).await;
    let emails = schema.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "emails")
        .unwrap()
        .clone();
    assert_eq!(emails["required"], json!(true), "{emails}");
    let value = emails["subAttributes"].as_array().unwrap().iter().find(|a| a["name"] == "value");
    assert_eq!(value.unwrap()["required"], json!(true));
    let refused = scim(&server, "POST", "/Users", Some(user_body("not-an-email-name"))).await;
    assert_eq!(refused.status, 400, "{}", refused.body);

    // Removing `active` is refused with the RFC's error, and changes nothing.
    let id = create_user(&server, user_body("rita@acme.example.com")).await;
    let reply = scim(
        &server,
        "PATCH",
        &format!("/Users/{id}"),
        patch(json!([{"op": "remove", "path": "active"}])),
    )
    .await;
    assert_eq!(reply.scim_error(400).as_deref(), Some("invalidValue"));
    assert!(reply.body["detail"].as_str().unwrap().contains("replace it instead"));
    let user = scim(&server, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(user.body["active"], json!(true));

    // `POST /Users/.search` filters and pages like `GET`.
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"rita@acme.example.com\"",
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 10,
    });
    let found = scim(&server, "POST", "/Users/.search", Some(search.clone())).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["schemas"], json!([LIST_URN]));
    assert_eq!(found.body["totalResults"], json!(1));
    assert_eq!(found.body["Resources"][0]["userName"], json!("rita@acme.example.com"));
    assert!(found.body["Resources"][0].get("emails").is_none(), "projected to userName");
    let mut unschemed = search.clone();
    unschemed["schemas"] = json!([]);
    let bad = scim(&server, "POST", "/Users/.search", Some(unschemed)).await;
    assert_eq!(bad.scim_error(400).as_deref(), Some("invalidSyntax"));
    // Across resource types it is not supported, and says so as other such endpoints do.
    let root = scim(&server, "POST", "/.search", Some(search)).await;
    root.scim_error(501);
}

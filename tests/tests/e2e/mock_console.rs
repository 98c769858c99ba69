//! The mock console API called directly, as any HTTP client would: the endpoints the connector
//! does not use yet, and the validation rules the real service applies.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{OWNER_TOKEN, mock};

/// Sends one HTTP/1.1 request and returns the status and JSON body.
async fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, payload) = call_raw(addr, method, path, token, body).await;
    (status, serde_json::from_str(payload.trim()).unwrap_or(Value::Null))
}

/// Sends one HTTP/1.1 request and returns the status and the body as sent.
async fn call_raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\nchatgpt-account-id: ws-api\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let status: u16 = raw[9..12].parse().unwrap();
    let (_, payload) = raw.split_once("\r\n\r\n").unwrap();
    (status, payload.to_string())
}

/// Where each of `keys` first appears in `body`, which must hold them all.
fn positions(body: &str, keys: &[&str]) -> Vec<usize> {
    keys.iter().map(|k| body.find(&format!("\"{k}\":")).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_keep_the_services_key_order() {
    let server = mock("ws-api", 5, 2).await;
    let base = "/backend-api/accounts/ws-api";
    let (status, users) = call_raw(
        server.addr(),
        "GET",
        &format!("{base}/users?limit=2&offset=1"),
        OWNER_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(users.starts_with(r#"{"items":[{"id":"#), "{users}");
    assert!(users.ends_with(r#"],"total":5,"limit":2,"offset":1}"#), "{users}");
    let first = &users[..users.find('}').unwrap()];
    let member = [
        "id",
        "account_user_id",
        "email",
        "name",
        "role",
        "seat_type",
        "created_time",
        "is_scim_managed",
        "deactivated_time",
    ];
    let at = positions(first, &member);
    assert!(at.is_sorted(), "member keys out of the service's order: {first}");

    let (status, invites) =
        call_raw(server.addr(), "GET", &format!("{base}/invites"), OWNER_TOKEN, None).await;
    assert_eq!(status, 200);
    assert!(invites.ends_with(r#"],"total":2,"limit":25,"offset":0}"#), "{invites}");
    let first = &invites[..invites.find('}').unwrap()];
    let invite =
        ["id", "email_address", "role", "seat_type", "status", "created_time", "is_scim_managed"];
    assert!(positions(first, &invite).is_sorted(), "invite keys out of order: {first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_seat_counts_and_validation_behave_like_the_service() {
    let server = mock("ws-api", 40, 2).await;
    server.service().add_token("member-token", "ws-api", "standard-user");
    let addr = server.addr();
    let base = "/backend-api/accounts/ws-api";

    let (status, settings) =
        call(addr, "GET", &format!("{base}/settings"), OWNER_TOKEN, None).await;
    assert_eq!(
        (status, settings["id"].as_str(), settings["default_seat_type"].as_str()),
        (200, Some("ws-api"), Some("default"))
    );

    let ws = server.service().workspace("ws-api").unwrap();
    let codex = ws
        .members
        .iter()
        .filter(|m| m.seat_type == "usage_based" && m.deactivated_time.is_none())
        .count();
    let (status, counts) =
        call(addr, "GET", &format!("{base}/users/seat_type_counts"), OWNER_TOKEN, None).await;
    assert_eq!(status, 200);
    assert_eq!(counts["seat_type_counts"]["usage_based"], json!(codex));

    // Only an Owner changes the default seat type; unknown values are 400.
    let path = format!("{base}/settings/default_seat_type");
    let (status, _) =
        call(addr, "POST", &path, "member-token", Some(json!({"value": "usage_based"}))).await;
    assert_eq!(status, 403);
    let (status, body) =
        call(addr, "POST", &path, OWNER_TOKEN, Some(json!({"value": "premium"}))).await;
    assert_eq!((status, body["detail"].as_str()), (400, Some("Invalid seat type: premium")));
    let (status, body) =
        call(addr, "POST", &path, OWNER_TOKEN, Some(json!({"value": "usage_based"}))).await;
    assert_eq!((status, body["default_seat_type"].as_str()), (200, Some("usage_based")));

    // An invite naming no seat type gets the (new) default; unknown roles are 400.
    let invites = format!("{base}/invites");
    let (status, body) = call(
        addr,
        "POST",
        &invites,
        OWNER_TOKEN,
        Some(json!({"email_addresses": ["a@new.example.com"], "role": "boss"})),
    )
    .await;
    assert_eq!((status, body["detail"].as_str()), (400, Some("Invalid role: boss")));
    let (status, body) = call(addr, "POST", &invites, OWNER_TOKEN, Some(json!({"email_addresses": ["a@new.example.com", "b@x.invalid"], "role": "standard-user"}))).await;
    assert_eq!(status, 200);
    assert_eq!(body["account_invites"][0]["seat_type"], "usage_based");
    assert_eq!(
        body["errored_emails"],
        json!([{"email_address": "b@x.invalid", "error": "Invalid email domain"}])
    );

    // Paging parameters are validated like the real (FastAPI) service.
    let (status, body) =
        call(addr, "GET", &format!("{base}/users?limit=500"), OWNER_TOKEN, None).await;
    assert_eq!((status, body["detail"][0]["loc"][1].as_str()), (422, Some("limit")));
    let (status, body) =
        call(addr, "GET", &format!("{base}/users?offset=30&limit=25"), OWNER_TOKEN, None).await;
    assert_eq!(
        (status, body["items"].as_array().unwrap().len(), body["total"].as_u64()),
        (200, 10, Some(40))
    );

    // Malformed JSON is 422; an unknown member is 404; a token for nothing is 401.
    let (status, _) = call(
        addr,
        "PATCH",
        &format!("{base}/users/user-nobody"),
        OWNER_TOKEN,
        Some(json!({"role": "account-admin"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = call(addr, "GET", &format!("{base}/users"), "forged", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("token_invalidated")));
}

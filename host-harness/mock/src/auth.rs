//! The console's authentication rules: bearer token, `chatgpt-account-id`, workspace state.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

pub use super::kit::bearer;
use super::model::{MockData, TokenInfo};

/// A refusal: status and JSON body, exactly as the real service answers.
pub type Refusal = (StatusCode, Value);

/// Checks that the request may act on `account_id` and returns the token's grant.
pub fn authorize(
    data: &MockData,
    headers: &HeaderMap,
    account_id: &str,
) -> Result<TokenInfo, Refusal> {
    let Some(token) = bearer(headers) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Could not parse your authentication token. Please try signing in again."}),
        ));
    };
    let grant = match data.tokens.get(&token) {
        Some(grant) if !grant.revoked => grant.clone(),
        _ => {
            return Err((
                StatusCode::UNAUTHORIZED,
                json!({"error": {"code": "token_invalidated", "message": "Your authentication token has been invalidated."}}),
            ));
        }
    };
    let header = headers.get("chatgpt-account-id").and_then(|v| v.to_str().ok());
    if header != Some(account_id) {
        return Err((
            StatusCode::FORBIDDEN,
            json!({"detail": "The chatgpt-account-id header must name the account in the request path."}),
        ));
    }
    if grant.account_id != account_id {
        return Err((
            StatusCode::FORBIDDEN,
            json!({"detail": "You do not have access to this account."}),
        ));
    }
    match data.workspaces.get(account_id) {
        Some(ws) if ws.deactivated => Err((
            StatusCode::UNAUTHORIZED,
            json!({"error": {"code": "account_deactivated", "message": "This workspace has been deactivated."}}),
        )),
        Some(_) => Ok(grant),
        None => Err((StatusCode::NOT_FOUND, json!({"detail": "Account not found"}))),
    }
}

//! The public ChatGPT Admin API as a read surface: active members, up to 1,000 a request, with
//! a workspace-scoped key that may hold nothing but `chatgpt.enterprise.user.read`.

use connector_sdk::ConnectorError;
use connector_sdk::client::encode_query;
use connector_sdk::transport::Transport;
use connector_sdk::types::Account;

use crate::accounts::admin_user_account;
use crate::api::{AdminList, AdminUser, ConsoleClient};
use crate::cursor::{Cursor, Phase};

/// The most members one Admin API request returns.
pub const MAX_ADMIN_PAGE: u32 = 1000;

/// The Admin API answers 404 for workspaces it does not serve, which only a tenant's settings
/// can fix.
fn unserved(error: ConnectorError) -> ConnectorError {
    crate::api::unserved(
        error,
        "the public Admin API serves only ChatGPT Enterprise and Edu workspaces; a Business workspace is read through the console (`base-url`), without `admin-api-base-url`",
    )
}

/// One page of members after `after` (from the start when `None`), at most `limit`.
fn members_page<T: Transport>(
    admin: &ConsoleClient<'_, T>,
    after: Option<&str>,
    limit: u32,
) -> Result<AdminList<AdminUser>, ConnectorError> {
    let mut path = format!("users?limit={limit}");
    if let Some(after) = after {
        path.push_str(&format!("&after={}", encode_query(after)));
    }
    admin.get_json(&path).map_err(unserved)
}

/// Lists up to `wanted` members from `cursor` (a members cursor), handing each to `take`;
/// returns where the listing stopped, or `None` when it ended. A page that says more follow
/// but gives no key to continue from, or the key it continued from, is a broken answer: the
/// listing stops with an error rather than loop or skip.
pub(crate) fn list_members<T: Transport>(
    admin: &ConsoleClient<'_, T>,
    cursor: &Cursor,
    wanted: u32,
    mut take: impl FnMut(Account),
) -> Result<Option<Cursor>, ConnectorError> {
    let (mut after, mut listed, mut left) = (cursor.after.clone(), cursor.offset, wanted);
    loop {
        let limit = left.min(MAX_ADMIN_PAGE);
        let page = members_page(admin, after.as_deref(), limit)?;
        let got = page.data.len() as u32;
        if got > limit {
            return Err(ConnectorError::Internal(format!(
                "GET users: the Admin API answered {got} members to a request for {limit}"
            )));
        }
        let last = page.data.last().map(|u| u.id.clone());
        page.data.into_iter().map(admin_user_account).for_each(&mut take);
        (listed, left) = (listed + u64::from(got), left - got);
        if !page.has_more {
            return Ok(None);
        }
        let next = page.last_id.or(last).filter(|next| after.as_ref() != Some(next));
        let Some(next) = next else {
            return Err(ConnectorError::Internal(
                "GET users: the Admin API said more members follow but gave no new key to continue after; a broken answer"
                    .to_string(),
            ));
        };
        after = Some(next);
        if left == 0 {
            return Ok(Some(Cursor { after, ..Cursor::at(Phase::Members, listed, None) }));
        }
    }
}

/// The member whose email is `email` (compared case-insensitively), if any.
pub(crate) fn member_by_email<T: Transport>(
    admin: &ConsoleClient<'_, T>,
    email: &str,
) -> Result<Option<Account>, ConnectorError> {
    let path = format!("users?limit=10&email={}", encode_query(email));
    let page: AdminList<AdminUser> = admin.get_json(&path).map_err(unserved)?;
    let found = page
        .data
        .into_iter()
        .find(|u| u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)));
    Ok(found.map(admin_user_account))
}

/// The member whose id is `id`, if any.
pub(crate) fn member_by_id<T: Transport>(
    admin: &ConsoleClient<'_, T>,
    id: &str,
) -> Result<Option<Account>, ConnectorError> {
    match admin.get_json::<AdminUser>(&format!("users/{}", encode_query(id))) {
        Ok(user) => Ok(Some(admin_user_account(user))),
        Err(ConnectorError::NotFound(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Reads one member, proving the key, its permission and that the Admin API serves the
/// workspace.
pub(crate) fn probe<T: Transport>(admin: &ConsoleClient<'_, T>) -> Result<(), ConnectorError> {
    members_page(admin, None, 1).map(|_| ())
}

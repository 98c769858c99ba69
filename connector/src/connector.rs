//! The connector's operations, over any transport.

use std::cell::OnceCell;

use crate::api::{ConsoleClient, Invite, ListPage, Member};
use crate::catalog;
use crate::cursor::{Cursor, Phase};
use crate::error::ConnectorError;
use crate::groups;
use crate::model::{
    Account, AccountRef, AccountStatus, Capabilities, ConnectorInfo, Entitlement, Page, PageRequest,
};
use crate::settings::{CONFIG_SCHEMA, MAX_PAGE_SIZE, Settings};
use crate::transport::Transport;

/// Prefix of the ids of accounts that are pending invites, so an id says which listing holds it.
pub const INVITE_ID_PREFIX: &str = "invite:";

/// The ChatGPT workspace connector for one tenant's settings.
pub struct ChatGptConnector<T: Transport> {
    pub(crate) transport: T,
    pub(crate) settings: Settings,
    default_seat: OnceCell<String>,
}

/// Describes the connector; needs no settings.
pub fn info() -> ConnectorInfo {
    ConnectorInfo {
        name: "chatgpt".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        application: "ChatGPT Business/Enterprise workspace".to_string(),
        entitlement_kinds: ["access", "role", "seat", "group"].map(String::from).to_vec(),
        exclusion_groups: catalog::exclusion_groups(),
        capabilities: Capabilities {
            read_accounts: true,
            read_entitlements: true,
            write: true,
            batch: true,
            dry_run: true,
        },
        config_schema: CONFIG_SCHEMA.to_string(),
    }
}

impl<T: Transport> ChatGptConnector<T> {
    /// A connector sending through `transport` with validated `settings`.
    pub fn new(transport: T, settings: Settings) -> Self {
        ChatGptConnector { transport, settings, default_seat: OnceCell::new() }
    }

    pub(crate) fn console(&self) -> ConsoleClient<'_, T> {
        ConsoleClient::new(&self.transport, self.settings.account_base(), self.settings.retry)
    }

    /// Reads the workspace settings, proving the token and account id work together.
    pub fn test_connection(&self) -> Result<(), ConnectorError> {
        let settings = self.console().settings()?;
        if settings.id != self.settings.account_id {
            return Err(ConnectorError::InvalidConfig(format!(
                "the service answered for workspace {:?}, not the configured `account-id` {:?}",
                settings.id, self.settings.account_id
            )));
        }
        let _ = self.default_seat.set(settings.default_seat_type);
        Ok(())
    }

    /// One page of accounts: members first, then pending invites.
    pub fn list_accounts(&self, page: &PageRequest) -> Result<Page<Account>, ConnectorError> {
        let size = self.settings.effective_page_size(page.size)?;
        let mut cursor = match &page.cursor {
            None => Cursor { phase: Phase::Members, offset: 0 },
            Some(raw) => {
                Cursor::decode(raw, &self.settings.account_id, &[Phase::Members, Phase::Invites])?
            }
        };
        let console = self.console();
        let mut items = Vec::new();
        loop {
            let want = (size - items.len() as u32).min(MAX_PAGE_SIZE);
            let (fetched, exhausted) = match cursor.phase {
                Phase::Invites => {
                    let page = console.list_invites(cursor.offset, want, "")?;
                    let (taken, exhausted) = take_page(page.items, page.total, cursor.offset, want);
                    for invite in &taken {
                        items.push(self.invite_account(invite)?);
                    }
                    (taken.len(), exhausted)
                }
                _ => {
                    let page = console.list_members(cursor.offset, want, "")?;
                    let (taken, exhausted) = take_page(page.items, page.total, cursor.offset, want);
                    let fetched = taken.len();
                    items.extend(taken.into_iter().map(member_account));
                    (fetched, exhausted)
                }
            };
            cursor = match (exhausted, cursor.phase) {
                (true, Phase::Invites) => {
                    self.add_groups(&mut items)?;
                    return Ok(Page { items, next_cursor: None });
                }
                (true, _) => Cursor { phase: Phase::Invites, offset: 0 },
                (false, phase) => Cursor { phase, offset: cursor.offset + fetched as u64 },
            };
            if items.len() as u32 >= size {
                let next_cursor = Some(cursor.encode(&self.settings.account_id));
                // Deliberate defect for the conformance kit's tests: hand back the same cursor.
                #[cfg(feature = "bug-repeat-cursor")]
                let next_cursor = page.cursor.clone().or(next_cursor);
                self.add_groups(&mut items)?;
                return Ok(Page { items, next_cursor });
            }
        }
    }

    /// One account by id or email, with the groups it is in.
    pub fn get_account(&self, reference: &AccountRef) -> Result<Account, ConnectorError> {
        let mut account = [self.console_account(reference)?];
        self.add_groups(&mut account)?;
        let [account] = account;
        Ok(account)
    }

    /// One account by id or email, as the console shows it.
    fn console_account(&self, reference: &AccountRef) -> Result<Account, ConnectorError> {
        match reference {
            AccountRef::Email(email) => {
                let email = validate_email(email)?;
                let console = self.console();
                let member = scan(
                    |offset, limit| console.list_members(offset, limit, &email),
                    |m| m.email.eq_ignore_ascii_case(&email),
                )?;
                if let Some(member) = member {
                    return Ok(member_account(member));
                }
                let invite = scan(
                    |offset, limit| console.list_invites(offset, limit, &email),
                    |i| i.email_address.eq_ignore_ascii_case(&email),
                )?;
                match invite {
                    Some(invite) => self.invite_account(&invite),
                    None => Err(ConnectorError::NotFound(format!(
                        "no member or pending invite has the email {email:?}"
                    ))),
                }
            }
            AccountRef::Id(id) => {
                let id = validate_id(id)?;
                let console = self.console();
                let found = match id.strip_prefix(INVITE_ID_PREFIX) {
                    Some(invite_id) => scan(
                        |offset, limit| console.list_invites(offset, limit, ""),
                        |i| i.id == invite_id,
                    )?
                    .map(|i| self.invite_account(&i))
                    .transpose()?,
                    None => scan(
                        |offset, limit| console.list_members(offset, limit, ""),
                        |m| m.id == id,
                    )?
                    .map(member_account),
                };
                found.ok_or_else(|| {
                    ConnectorError::NotFound(format!(
                        "no member or pending invite has the id {id:?}"
                    ))
                })
            }
        }
    }

    /// One page of entitlements: the fixed ones, then (with SCIM configured) one per group.
    /// The cursor's offset counts through both, so group `n` (1-based `startIndex` in SCIM)
    /// sits at offset `fixed + n - 1`.
    pub fn list_entitlements(
        &self,
        page: &PageRequest,
    ) -> Result<Page<Entitlement>, ConnectorError> {
        let size = self.settings.effective_page_size(page.size)? as usize;
        let offset = match &page.cursor {
            None => 0,
            Some(raw) => {
                Cursor::decode(raw, &self.settings.account_id, &[Phase::Entitlements])?.offset
            }
        };
        let fixed = catalog::fixed_entitlements();
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut items: Vec<Entitlement> = fixed.iter().skip(start).take(size).cloned().collect();
        let next = |offset: usize| {
            Some(
                Cursor { phase: Phase::Entitlements, offset: offset as u64 }
                    .encode(&self.settings.account_id),
            )
        };
        let reached = start.saturating_add(items.len());
        let Some(scim) = self.scim() else {
            let next_cursor = if reached < fixed.len() { next(reached) } else { None };
            return Ok(Page { items, next_cursor });
        };
        if items.len() == size {
            return Ok(Page { items, next_cursor: next(reached) });
        }
        let group_offset = reached.saturating_sub(fixed.len());
        let want = (size - items.len()) as u32;
        let groups = scim.list_groups(group_offset as u64 + 1, want)?;
        let got = groups.resources.len().min(want as usize);
        items.extend(groups.resources.iter().take(want as usize).map(groups::group_entitlement));
        let seen = group_offset + got;
        // An empty page ends the listing whatever `totalResults` says, so a miscounting
        // directory cannot hand out a cursor that never moves.
        let next_cursor = if got > 0 && (seen as u64) < groups.total_results {
            next(fixed.len() + seen)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    fn workspace_default_seat(&self) -> Result<&str, ConnectorError> {
        if let Some(seat) = self.default_seat.get() {
            return Ok(seat);
        }
        let seat = self.console().settings()?.default_seat_type;
        Ok(self.default_seat.get_or_init(|| seat))
    }

    pub(crate) fn invite_account(&self, invite: &Invite) -> Result<Account, ConnectorError> {
        let seat = match &invite.seat_type {
            Some(seat) => seat.clone(),
            None => self.workspace_default_seat()?.to_string(),
        };
        Ok(Account {
            id: format!("{INVITE_ID_PREFIX}{}", invite.id),
            email: Some(invite.email_address.clone()),
            display_name: None,
            status: AccountStatus::Invited,
            entitlements: vec![
                catalog::WORKSPACE.to_string(),
                catalog::role_entitlement(&invite.role),
                catalog::seat_entitlement(&seat),
            ],
            managed_by: invite.is_scim_managed.then(|| "scim".to_string()),
            created_at: invite.created_time.clone(),
        })
    }
}

/// Pages through a console listing until an item matches or the listing ends.
pub(crate) fn scan<I>(
    fetch: impl Fn(u64, u32) -> Result<ListPage<I>, ConnectorError>,
    matches: impl Fn(&I) -> bool,
) -> Result<Option<I>, ConnectorError> {
    let mut offset = 0;
    loop {
        let page = fetch(offset, MAX_PAGE_SIZE)?;
        let (items, exhausted) = take_page(page.items, page.total, offset, MAX_PAGE_SIZE);
        offset += items.len() as u64;
        if let Some(found) = items.into_iter().find(&matches) {
            return Ok(Some(found));
        }
        if exhausted {
            return Ok(None);
        }
    }
}

/// Keeps at most `want` items of a console page and says whether the listing is exhausted:
/// the console's paging ends when fewer than `limit` items come back or `offset + items >= total`.
pub(crate) fn take_page<I>(
    mut items: Vec<I>,
    total: u64,
    offset: u64,
    want: u32,
) -> (Vec<I>, bool) {
    let short = items.len() < want as usize;
    items.truncate(want as usize);
    let exhausted = short || offset + items.len() as u64 >= total;
    (items, exhausted)
}

pub(crate) fn member_account(member: Member) -> Account {
    Account {
        id: member.id,
        email: Some(member.email),
        display_name: member.name.filter(|n| !n.is_empty()),
        status: if member.deactivated_time.is_some() {
            AccountStatus::Suspended
        } else {
            AccountStatus::Active
        },
        entitlements: vec![
            catalog::WORKSPACE.to_string(),
            catalog::role_entitlement(&member.role),
            catalog::seat_entitlement(&member.seat_type),
        ],
        managed_by: member.is_scim_managed.then(|| "scim".to_string()),
        created_at: member.created_time,
    }
}

pub(crate) fn validate_email(raw: &str) -> Result<String, ConnectorError> {
    let email = raw.trim();
    let valid = email.len() <= 320
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if valid {
        Ok(email.to_string())
    } else {
        Err(ConnectorError::InvalidArgument(format!("{raw:?} is not an email address")))
    }
}

pub(crate) fn validate_id(raw: &str) -> Result<&str, ConnectorError> {
    if raw.is_empty() || raw.len() > 256 || raw.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ConnectorError::InvalidArgument(format!(
            "{raw:?} is not an account id (1 to 256 characters, no spaces)"
        )));
    }
    Ok(raw)
}

//! The workspace's SCIM 2.0 directory (RFC 7643/7644): the JSON shapes the connector reads and
//! the few requests it sends. Groups live only here; users are looked up to learn their SCIM id.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::accounts::{GROUP_PREFIX, SNAPSHOT_THRESHOLD};
use crate::api::{ConsoleClient, Surface};
use connector_sdk::ConnectorError;
use connector_sdk::client::{JsonClient, RetryClock, WriteError, encode_query};
use connector_sdk::settings::RetryPolicy;
use connector_sdk::transport::{Method, Transport};
use connector_sdk::types::Entitlement;

/// The PatchOp message schema.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Largest page the connector asks the directory for.
pub const PAGE: u32 = 100;

/// A SCIM list response (RFC 7644 §3.4.2).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ListResponse<T> {
    /// Matching resources in all pages.
    #[serde(rename = "totalResults")]
    pub total_results: u64,
    /// This page's resources; absent when empty.
    #[serde(rename = "Resources", default = "Vec::new")]
    pub resources: Vec<T>,
}

/// A SCIM user, as far as the connector needs one.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ScimUser {
    /// The directory's id of the user.
    pub id: String,
    /// The unique login name (an email address in ChatGPT workspaces).
    #[serde(rename = "userName")]
    pub user_name: String,
    /// Whether the user is active; RFC 7643 leaves it optional, and absent means active.
    #[serde(default)]
    pub active: Option<bool>,
}

/// A SCIM group.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ScimGroup {
    /// The directory's id of the group.
    pub id: String,
    /// Name shown to people.
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// Members; absent when empty or excluded from the answer.
    #[serde(default)]
    pub members: Vec<GroupMember>,
}

/// One member of a group.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupMember {
    /// The member's SCIM id.
    pub value: String,
}

impl ScimGroup {
    /// Whether the user with SCIM id `user_id` is a member.
    pub fn has_member(&self, user_id: &str) -> bool {
        self.members.iter().any(|m| m.value == user_id)
    }

    /// The SCIM ids of its members.
    pub fn member_ids(&self) -> BTreeSet<String> {
        self.members.iter().map(|m| m.value.clone()).collect()
    }
}

/// A typed client of the SCIM directory at `scim-base-url`.
pub struct ScimClient<'a, T: Transport> {
    http: ConsoleClient<'a, T>,
    /// Reads sent together at most (the connector's `read-concurrency`).
    concurrency: usize,
}

impl<'a, T: Transport> ScimClient<'a, T> {
    /// A client of the directory at `base` (no trailing slash), sending up to `concurrency`
    /// independent reads together.
    pub fn new(
        transport: &'a T,
        base: String,
        policy: RetryPolicy,
        retrying: RetryClock,
        concurrency: u32,
    ) -> Self {
        ScimClient {
            http: JsonClient::on(Surface::Scim, transport, base, policy, retrying),
            concurrency: usize::try_from(concurrency).unwrap_or(usize::MAX).max(1),
        }
    }

    /// `GET /Groups?startIndex&count` without the members, for listing the groups themselves.
    pub fn list_groups(
        &self,
        start_index: u64,
        count: u32,
    ) -> Result<ListResponse<ScimGroup>, ConnectorError> {
        self.get(&format!(
            "Groups?startIndex={start_index}&count={count}&excludedAttributes=members"
        ))
    }

    /// Every group with its members, page by page.
    pub fn all_groups(&self) -> Result<Vec<ScimGroup>, ConnectorError> {
        self.all("Groups")
    }

    /// `GET /Groups/{id}`; `not-found` names the entitlement.
    pub fn group(&self, id: &str) -> Result<ScimGroup, ConnectorError> {
        self.get(&group_path(id)).map_err(|e| match e {
            ConnectorError::NotFound(_) => ConnectorError::NotFound(format!(
                "no SCIM group {id:?} (entitlement group:{id}); see list-entitlements"
            )),
            other => other,
        })
    }

    /// For each of `emails`, in their order, the user whose `userName` it is (compared
    /// case-insensitively, as RFC 7643 defines `userName`), if the directory has one.
    ///
    /// Each is looked up on its own, `concurrency` lookups at a time, unless listing the whole
    /// directory takes fewer requests: for more than [`SNAPSHOT_THRESHOLD`] emails, the
    /// directory's first page tells its size, and the listing goes on if its other pages are
    /// fewer than the lookups would be. A big directory is then never listed for a few people,
    /// nor a small one asked about each of many.
    pub fn users_by_email(&self, emails: &[&str]) -> Result<Vec<Option<ScimUser>>, ConnectorError> {
        if emails.len() > SNAPSHOT_THRESHOLD {
            let first: ListResponse<ScimUser> = self.get(&page_path("Users", 1))?;
            let (listed, total) = (first.resources.len(), first.total_results);
            let left = usize::try_from(total).unwrap_or(usize::MAX).saturating_sub(listed);
            if listed > 0 && left.div_ceil(listed) < emails.len() {
                let by_name: HashMap<String, ScimUser> = self
                    .rest("Users", first)?
                    .into_iter()
                    .map(|u| (u.user_name.to_ascii_lowercase(), u))
                    .collect();
                let user = |email: &&str| by_name.get(&email.to_ascii_lowercase()).cloned();
                return Ok(emails.iter().map(user).collect());
            }
        }
        let mut users = Vec::with_capacity(emails.len());
        for round in emails.chunks(self.concurrency) {
            let paths: Vec<String> = round.iter().map(|email| user_by_email_path(email)).collect();
            for (email, page) in round.iter().zip(self.http.get_json_all(&paths)) {
                users.push(user_named(page?, email));
            }
        }
        Ok(users)
    }

    /// Sends a PatchOp (`body`, as [`membership_patch`] builds it) to a group. The answer is the
    /// group when the directory returns it (`200`), `None` when it answers `204 No Content`.
    pub fn patch_group(
        &self,
        id: &str,
        body: Option<String>,
    ) -> Result<Option<ScimGroup>, WriteError> {
        self.http.send_write(Method::Patch, &group_path(id), body)
    }

    /// Every resource of `endpoint` (`Users`, `Groups`): the first page, which tells how many
    /// there are, then the rest in rounds of up to `concurrency` pages sent together.
    fn all<R: DeserializeOwned>(&self, endpoint: &str) -> Result<Vec<R>, ConnectorError> {
        let first = self.get(&page_path(endpoint, 1))?;
        self.rest(endpoint, first)
    }

    /// The resources of `endpoint` from its `first` page on, as [`Self::all`] lists them.
    fn rest<R: DeserializeOwned>(
        &self,
        endpoint: &str,
        first: ListResponse<R>,
    ) -> Result<Vec<R>, ConnectorError> {
        let mut total = first.total_results;
        let mut all = first.resources;
        // A directory may answer fewer than asked per page (RFC 7644 §3.4.2.4): the later
        // pages of a round start where pages as long as the first would end.
        let step = all.len();
        loop {
            // An empty page ends the listing even if `totalResults` says otherwise, so a
            // directory that miscounts cannot keep the connector asking forever.
            let left = usize::try_from(total).unwrap_or(usize::MAX).saturating_sub(all.len());
            if step == 0 || left == 0 {
                return Ok(all);
            }
            let start = all.len() + 1;
            let paths: Vec<String> = (0..left.div_ceil(step).min(self.concurrency))
                .map(|i| page_path(endpoint, start + i * step))
                .collect();
            for page in self.http.get_json_all::<ListResponse<R>>(&paths) {
                let page = page?;
                let got = page.resources.len();
                total = page.total_results;
                all.extend(page.resources);
                if got == 0 {
                    return Ok(all);
                }
                // A page of another length leaves the round's later pages misplaced: the next
                // round starts where this one ended.
                if got != step {
                    break;
                }
            }
        }
    }

    fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ConnectorError> {
        self.http.send_json(Method::Get, path, None)
    }
}

/// The page of `endpoint` from the 1-based `start`, below `scim-base-url`.
fn page_path(endpoint: &str, start: usize) -> String {
    format!("{endpoint}?startIndex={start}&count={PAGE}")
}

/// The lookup of the user named `email`, below `scim-base-url`.
fn user_by_email_path(email: &str) -> String {
    let filter = format!("userName eq {}", Value::String(email.to_string()));
    format!("Users?filter={}&count=2", encode_query(&filter))
}

/// The user of `page` whose `userName` is `email`, compared case-insensitively.
fn user_named(page: ListResponse<ScimUser>, email: &str) -> Option<ScimUser> {
    page.resources.into_iter().find(|u| u.user_name.eq_ignore_ascii_case(email))
}

/// The path of a group below `scim-base-url`, without the leading slash.
pub fn group_path(id: &str) -> String {
    format!("Groups/{}", encode_query(id))
}

/// A PatchOp adding `add` to a group's members and removing `remove` (RFC 7644 §3.5.2).
pub fn membership_patch(add: &[&str], remove: &[&str]) -> Value {
    let mut operations = Vec::new();
    if !add.is_empty() {
        let members: Vec<Value> = add.iter().map(|id| json!({"value": id})).collect();
        operations.push(json!({"op": "add", "path": "members", "value": members}));
    }
    for id in remove {
        let path = format!("members[value eq {}]", Value::String(id.to_string()));
        operations.push(json!({"op": "remove", "path": path}));
    }
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// The entitlement of one group.
pub fn group_entitlement(group: &ScimGroup) -> Entitlement {
    Entitlement {
        id: format!("{GROUP_PREFIX}{}", group.id),
        kind: "group".to_string(),
        display_name: group.display_name.clone(),
        description: format!(
            "Member of the SCIM group {:?} from the identity provider (used for RBAC and GPT and project sharing); changed through the workspace's SCIM directory",
            group.display_name
        ),
        exclusion_group: None,
        grantable: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_membership_patch_adds_in_one_operation_and_removes_by_value_filter() {
        let body = membership_patch(&["user-1", "user-2"], &["user-\"3"]);
        assert_eq!(
            body,
            json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": "user-1"}, {"value": "user-2"}]},
                {"op": "remove", "path": "members[value eq \"user-\\\"3\"]"},
            ]})
        );
    }

    use std::cell::RefCell;

    use connector_sdk::transport::{HttpRequest, HttpResponse, TransportError};

    /// A test directory: `answer` turns a request's URL into what it asked for (a listing's
    /// start index, or `lookup`) and the list response's body; each batch's askings are recorded.
    struct Recording<A> {
        answer: A,
        batches: RefCell<Vec<Vec<String>>>,
    }

    impl<A: Fn(&str) -> (String, Value)> Transport for Recording<A> {
        fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
            self.send_all(std::slice::from_ref(request)).pop().unwrap()
        }

        fn send_all(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
            let (asked, bodies): (Vec<String>, Vec<Value>) =
                requests.iter().map(|r| (self.answer)(&r.url)).unzip();
            self.batches.borrow_mut().push(asked);
            let ok = |body: Value| HttpResponse {
                status: 200,
                content_type: Some("application/scim+json".into()),
                retry_after: None,
                body: body.to_string().into_bytes(),
            };
            bodies.into_iter().map(|body| Ok(ok(body))).collect()
        }
    }

    fn recording<A: Fn(&str) -> (String, Value)>(answer: A) -> Recording<A> {
        Recording { answer, batches: RefCell::default() }
    }

    /// The value of `name` in `url`'s query.
    fn param(url: &str, name: &str) -> usize {
        let query = url.split_once('?').unwrap().1;
        let value = query.split('&').find_map(|p| p.strip_prefix(name)).unwrap();
        value.parse().unwrap()
    }

    /// A directory of `groups` groups that claims `claimed` of them and answers at most `cap` per
    /// page (the page starting at `short_at` half of that).
    fn paged_groups(
        groups: usize,
        claimed: usize,
        cap: usize,
        short_at: Option<usize>,
    ) -> Recording<impl Fn(&str) -> (String, Value)> {
        recording(move |url| {
            let (start, count) = (param(url, "startIndex="), param(url, "count="));
            let cap = if short_at == Some(start) { cap / 2 } else { cap };
            let end = (start - 1 + count.min(cap)).min(groups);
            let resources: Vec<Value> = (start..=end)
                .map(|n| json!({"id": format!("g{n}"), "displayName": format!("G{n}")}))
                .collect();
            (start.to_string(), json!({"totalResults": claimed, "Resources": resources}))
        })
    }

    /// Lists every group of `directory` at `concurrency`; returns their numbers.
    fn list(directory: &impl Transport, concurrency: u32) -> Vec<usize> {
        let client = ScimClient::new(
            directory,
            "https://x/scim".into(),
            RetryPolicy::default(),
            RetryClock::default(),
            concurrency,
        );
        let groups = client.all_groups().unwrap();
        groups.iter().map(|g| g.id[1..].parse().unwrap()).collect()
    }

    #[test]
    fn groups_after_the_first_page_are_read_in_rounds_without_gaps_or_repeats() {
        let every = |n: usize| (1..=n).collect::<Vec<_>>();
        // The first page tells the length; the other two pages go out together.
        let directory = paged_groups(250, 250, 100, None);
        assert_eq!(list(&directory, 4), every(250));
        assert_eq!(*directory.batches.borrow(), [vec!["1"], vec!["101", "201"]]);
        // At a concurrency of 1, one page at a time, as before.
        let directory = paged_groups(250, 250, 100, None);
        assert_eq!(list(&directory, 1), every(250));
        assert_eq!(*directory.batches.borrow(), [vec!["1"], vec!["101"], vec!["201"]]);
        // A directory answering 40 per page: later pages step by 40.
        let directory = paged_groups(250, 250, 40, None);
        assert_eq!(list(&directory, 4), every(250));
        assert_eq!(
            *directory.batches.borrow(),
            [vec!["1"], vec!["41", "81", "121", "161"], vec!["201", "241"]]
        );
        // A page shorter than the first mid-round: the round's later pages are dropped and the
        // next round starts where it ended.
        let directory = paged_groups(450, 450, 100, Some(101));
        assert_eq!(list(&directory, 4), every(450));
        assert_eq!(
            *directory.batches.borrow(),
            [vec!["1"], vec!["101", "201", "301", "401"], vec!["151", "251", "351"]]
        );
        // A directory claiming more than it has: the first empty page ends the listing.
        let directory = paged_groups(150, 100_000, 100, None);
        assert_eq!(list(&directory, 4), every(150));
        assert_eq!(directory.batches.borrow().len(), 3);
    }

    /// A directory of `known` users (`u0@x.com`, `u1@x.com`, ...), answering `userName eq`
    /// lookups (case-insensitively, as `userName` compares) and listings.
    fn users(known: usize) -> Recording<impl Fn(&str) -> (String, Value)> {
        let user = |n: usize| json!({"id": format!("id-{n}"), "userName": format!("u{n}@x.com")});
        recording(move |url| {
            if url.contains("startIndex=") {
                let start = param(url, "startIndex=");
                let users: Vec<Value> =
                    (start..=(start + 99).min(known)).map(|n| user(n - 1)).collect();
                return (start.to_string(), json!({"totalResults": known, "Resources": users}));
            }
            let query = url.to_ascii_lowercase();
            let quoted = |n: usize| encode_query(&format!("\"u{n}@x.com\"")).to_ascii_lowercase();
            let found: Vec<Value> =
                (0..known).find(|&n| query.contains(&quoted(n))).into_iter().map(user).collect();
            ("lookup".to_string(), json!({"totalResults": found.len(), "Resources": found}))
        })
    }

    /// Looks up `emails` in `directory` at a concurrency of 4; returns the ids found.
    fn ids(directory: &impl Transport, emails: &[String]) -> Vec<Option<String>> {
        let client = ScimClient::new(
            directory,
            "https://x/scim".into(),
            RetryPolicy::default(),
            RetryClock::default(),
            4,
        );
        let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
        let found = client.users_by_email(&emails).unwrap();
        found.into_iter().map(|u| u.map(|u| u.id)).collect()
    }

    #[test]
    fn users_are_looked_up_in_rounds_or_listed_whichever_takes_fewer_requests() {
        let lookups = |batches: &[Vec<String>]| {
            batches.iter().flatten().filter(|asked| *asked == "lookup").count()
        };
        // A few people: looked up, four at a time, answers in the order asked.
        let directory = users(10);
        let emails =
            ["u3@x.com", "nobody@x.com", "U1@X.COM", "u3@x.com", "u9@x.com"].map(String::from);
        let found = ids(&directory, &emails);
        assert_eq!(
            found,
            [Some("id-3"), None, Some("id-1"), Some("id-3"), Some("id-9")]
                .map(|i| i.map(String::from))
        );
        assert_eq!(directory.batches.borrow().iter().map(Vec::len).collect::<Vec<_>>(), [4, 1]);
        assert!(ids(&directory, &[]).is_empty());
        assert_eq!(directory.batches.borrow().len(), 2, "nothing to look up, nothing sent");

        // Thirty people in a directory of 250: its three pages beat thirty lookups.
        let mut emails: Vec<String> = (0..29).map(|n| format!("u{}@x.com", n * 8)).collect();
        emails.push("nobody@x.com".to_string());
        let directory = users(250);
        let found = ids(&directory, &emails);
        let want: Vec<Option<String>> =
            (0..29).map(|n| Some(format!("id-{}", n * 8))).chain([None]).collect();
        assert_eq!(found, want);
        assert_eq!(*directory.batches.borrow(), [vec!["1"], vec!["101", "201"]]);

        // The same thirty in a directory of 10,000: its first page, then thirty lookups.
        let directory = users(10_000);
        assert_eq!(ids(&directory, &emails), want);
        let batches = directory.batches.borrow();
        assert_eq!(
            (batches[0].as_slice(), lookups(&batches), batches.len()),
            (&["1".to_string()][..], 30, 9)
        );
    }

    #[test]
    fn reads_a_list_response_without_resources() {
        let page: ListResponse<ScimGroup> = serde_json::from_str(
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"startIndex":1,"itemsPerPage":0}"#,
        )
        .unwrap();
        assert_eq!(page.total_results, 0);
        assert!(page.resources.is_empty());
    }
}

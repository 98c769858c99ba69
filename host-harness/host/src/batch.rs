//! Applying many changes so that every write is on the record, whatever happens to a call.
//!
//! A batch goes through the connector's `apply-batch` in three kinds of calls:
//!
//! 1. **Plan**: a dry run of up to [`PLAN_CHUNK`] items reads their state and says, per change,
//!    whether it is held already and which write requests would make it. Items needing no write
//!    are reported from the plan and never reach a writing call.
//! 2. **Apply**: the items needing writes go out in calls sized so that their planned writes fit
//!    a share of the tenant's call budget, at the write time measured in the calls before.
//! 3. **Read back**: when a change fails, or a call is cut off (deadline, trap, memory cap, the
//!    service gone), the changes without a confirmed result are planned again. A change held now
//!    that was not before was applied; one still planned was not. When even that read fails, the
//!    host's own egress record decides what can be said: a change none of whose writes may have
//!    reached the service was not applied; any other is `unknown`, with the writes listed.
//!
//! Each call's record (its writes as the host saw them, answered or not) and each item's report
//! go to the caller's sink as soon as they are known, so a caller that stops early keeps them.
//! Why the host's record and read-back rather than results the guest hands over as it goes: the
//! host's record needs nothing from the guest (a trapped or cut-off guest hands over nothing,
//! and a defective one may be wrong), and the contract stays standard, so connectors still run
//! in any component-model host.

use std::time::Duration;

use serde::Serialize;

use crate::call::CallReport;
use crate::egress::EgressRecord;
use crate::error::HostError;
use crate::host::Host;
use crate::types::{
    AccountStatus, Change, ChangeOptions, ChangeOutcome, ChangeResult, ConnectorError, Notice,
    PlannedRequest,
};

/// Items planned in one dry-run call.
pub const PLAN_CHUNK: usize = 1000;
/// Share of a call's time budget that its planned writes may be expected to take.
const BUDGET_SHARE: f64 = 0.4;
/// The time a write is assumed to take before one has been measured.
const FIRST_WRITE_ESTIMATE: Duration = Duration::from_millis(500);
/// Read-back calls tried before the host's record alone decides, each for the changes still
/// undecided; also the tries of a planning call (a dry run writes nothing, so it is safe to
/// repeat).
const READ_ATTEMPTS: usize = 3;

/// What became of one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeStatus {
    /// Made and confirmed.
    Applied,
    /// Accepted; it completes later (an invitation).
    Pending,
    /// Held already; nothing was sent for it.
    AlreadyInState,
    /// Dry run: it would be made by the item's requests.
    Planned,
    /// Not made: refused, failed, or never sent.
    NotApplied,
    /// A write for it may have reached the service and its state could not be read back.
    Unknown,
}

/// What became of one item (the changes of one subject, such as a CSV row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemOutcome {
    /// Every change made (or held already), at least one made.
    Applied,
    /// Every change made or held, one of them pending (an invitation).
    Pending,
    /// Every change held already; nothing was sent.
    AlreadyInState,
    /// Dry run: the item's requests would be sent.
    Planned,
    /// Some changes made, some not: see each change.
    Partial,
    /// No change made.
    Failed,
    /// A write may have reached the service and the item's state could not be read back.
    Unknown,
    /// Never planned or sent, because the batch stopped first.
    NotAttempted,
}

impl ItemOutcome {
    /// The outcome's name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemOutcome::Applied => "applied",
            ItemOutcome::Pending => "pending",
            ItemOutcome::AlreadyInState => "already-in-state",
            ItemOutcome::Planned => "planned",
            ItemOutcome::Partial => "partial",
            ItemOutcome::Failed => "failed",
            ItemOutcome::Unknown => "unknown",
            ItemOutcome::NotAttempted => "not-attempted",
        }
    }

    /// Whether the item is where it was asked to be (or, in a dry run, planned).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            ItemOutcome::Applied
                | ItemOutcome::Pending
                | ItemOutcome::AlreadyInState
                | ItemOutcome::Planned
        )
    }
}

/// One change of an item, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeReport {
    /// `grant`, `revoke` or `set`.
    pub action: &'static str,
    /// The entitlement.
    pub entitlement: String,
    /// What became of it.
    pub status: ChangeStatus,
    /// What was done or why not, for people.
    pub detail: String,
    /// Entitlements the account lost to it.
    pub replaced: Vec<String>,
    /// What the person approving it must know beyond the entitlement (see the contract's
    /// `notice`), in a plan as in a result.
    pub notices: Vec<Notice>,
}

/// A write request of an item, as planned or sent, with the answer the host saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemRequest {
    /// HTTP method.
    pub method: String,
    /// Path relative to the service's base URL.
    pub path: String,
    /// JSON body, if any.
    pub body: Option<String>,
    /// The status the service answered, as the host saw it; none when no answer came or it
    /// was not sent (dry run).
    pub status: Option<u16>,
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemReport {
    /// The item's index in the batch.
    pub item: usize,
    /// The item as a whole.
    pub outcome: ItemOutcome,
    /// Each change, in order.
    pub changes: Vec<ChangeReport>,
    /// The write requests sent for it (planned, in a dry run).
    pub requests: Vec<ItemRequest>,
    /// The call that carried its writes, if one did.
    pub call_id: Option<u64>,
}

/// Why a call of a batch was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallPurpose {
    /// A dry run reading and planning items.
    Plan,
    /// Writing items' changes.
    Apply,
    /// A dry run reading back changes whose outcome the apply call did not confirm.
    ReadBack,
}

/// One call of a batch, as the host saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    /// The call's id, as on its host logs.
    pub call_id: u64,
    /// Why it was made.
    pub purpose: CallPurpose,
    /// The items it carried.
    pub items: Vec<usize>,
    /// Why it gave no answer, if it did not.
    pub error: Option<String>,
    /// Every write request that may have reached the service during the call, answered or not.
    pub writes: Vec<EgressRecord>,
    /// Wall-clock duration.
    pub duration_ms: u64,
}

/// What the batch's caller is told, as soon as it is known.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum BatchEvent {
    /// A call ended.
    Call(CallRecord),
    /// An item's outcome is known.
    Item(ItemReport),
}

/// How the batch ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BatchSummary {
    /// Items reported.
    pub items: usize,
    /// Items whose outcome is not a success (see [`ItemOutcome::is_success`]).
    pub unsuccessful: usize,
    /// Why the batch stopped before its end, if it did; the items after were not attempted.
    pub stopped: Option<String>,
}

/// The results of one `apply-batch` call, one per change.
type Results = Vec<Result<ChangeResult, ConnectorError>>;

/// One item and its plan, one result per change.
struct Planned {
    item: usize,
    plan: Results,
}

impl Planned {
    /// The distinct write requests its plan names.
    fn requests(&self) -> Vec<&PlannedRequest> {
        let mut out: Vec<&PlannedRequest> = Vec::new();
        for request in self.plan.iter().flatten().flat_map(|r| &r.requests) {
            if !out.contains(&request) {
                out.push(request);
            }
        }
        out
    }

    fn needs_writes(&self) -> bool {
        self.plan
            .iter()
            .flatten()
            .any(|r| r.outcome == ChangeOutcome::Planned && !r.requests.is_empty())
    }
}

/// Applies `items` (each the changes of one subject, applied together) for `tenant`, telling
/// `sink` of every call and every item's outcome as soon as it is known. With `dry_run`, only
/// plans. Fails only when the tenant is unknown; everything else is reported through `sink`.
pub async fn apply(
    host: &Host,
    tenant: &str,
    items: &[Vec<Change>],
    dry_run: bool,
    sink: impl FnMut(BatchEvent),
) -> Result<BatchSummary, HostError> {
    let options = BatchOptions { dry_run, ..BatchOptions::default() };
    apply_with(host, tenant, items, &options, sink).await
}

/// How [`apply_with`] runs a batch.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Only plan.
    pub dry_run: bool,
    /// The most items one writing call carries (none: as many as fit the call's budget). A
    /// caller that reports progress or may cancel sets it, so a batch is not one call.
    pub max_items_per_call: Option<usize>,
    /// Set to stop the batch: no call starts after it is seen, the call under way finishes
    /// and is reported, and every item not yet sent is reported `not-attempted`.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl BatchOptions {
    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// [`apply`] with options: a cap on the items of a call, and cancellation.
pub async fn apply_with(
    host: &Host,
    tenant: &str,
    items: &[Vec<Change>],
    options: &BatchOptions,
    mut sink: impl FnMut(BatchEvent),
) -> Result<BatchSummary, HostError> {
    let dry_run = options.dry_run;
    let budget = host.tenant_limits(tenant)?.call_timeout;
    let mut run = Run { host, tenant, items, sink: &mut sink, summary: BatchSummary::default() };
    let mut per_write = FIRST_WRITE_ESTIMATE;
    let all: Vec<usize> = (0..items.len()).collect();
    let plan_chunk = options.max_items_per_call.map_or(PLAN_CHUNK, |n| n.clamp(1, PLAN_CHUNK));
    for chunk in all.chunks(plan_chunk) {
        if options.cancelled() && run.summary.stopped.is_none() {
            run.summary.stopped = Some(CANCELLED.to_string());
        }
        if run.summary.stopped.is_some() {
            run.not_attempted(chunk);
            continue;
        }
        let Some(plans) = run.plan(chunk).await? else {
            run.not_attempted(chunk);
            continue;
        };
        let mut queue: Vec<Planned> = Vec::new();
        for planned in plans {
            if dry_run || !planned.needs_writes() {
                let report = from_plan(&planned, &items[planned.item], dry_run);
                run.emit_item(report);
            } else {
                queue.push(planned);
            }
        }
        let mut queue = queue.into_iter().peekable();
        while queue.peek().is_some() {
            if options.cancelled() && run.summary.stopped.is_none() {
                run.summary.stopped = Some(CANCELLED.to_string());
            }
            if run.summary.stopped.is_some() {
                let rest: Vec<usize> = queue.by_ref().map(|p| p.item).collect();
                run.not_attempted(&rest);
                break;
            }
            // Items in order until their distinct planned writes would pass what fits.
            let target = writes_fitting(budget, per_write);
            let mut call: Vec<Planned> = Vec::new();
            let mut planned_writes: Vec<PlannedRequest> = Vec::new();
            while let Some(next) = queue.peek() {
                let new: Vec<PlannedRequest> = next
                    .requests()
                    .into_iter()
                    .filter(|r| !planned_writes.contains(r))
                    .cloned()
                    .collect();
                let full = options.max_items_per_call.is_some_and(|n| call.len() >= n.max(1));
                if !call.is_empty() && (full || planned_writes.len() + new.len() > target) {
                    break;
                }
                planned_writes.extend(new);
                call.extend(queue.next());
            }
            let report = run.write(&call).await?;
            let writes = report.egress.iter().filter(|r| r.may_have_written()).count();
            per_write = Duration::from_millis(report.duration_ms.max(1))
                .div_f64(writes.max(1) as f64)
                .max(Duration::from_millis(1));
            run.settle(&call, report).await?;
        }
    }
    Ok(run.summary)
}

/// Why a cancelled batch stopped.
pub const CANCELLED: &str = "the batch was cancelled";

/// How many writes fit the share of `budget` a call may fill, at `per_write` each.
fn writes_fitting(budget: Duration, per_write: Duration) -> usize {
    let fitting = budget.as_secs_f64() * BUDGET_SHARE / per_write.as_secs_f64().max(1e-3);
    (fitting.floor() as usize).max(1)
}

/// What is still to be decided of one change: its item's position in the call, the change's
/// index in the item, and why it is unsettled.
struct Unsettled {
    position: usize,
    change: usize,
    why: String,
}

/// A batch under way.
struct Run<'a, S: FnMut(BatchEvent)> {
    host: &'a Host,
    tenant: &'a str,
    items: &'a [Vec<Change>],
    sink: &'a mut S,
    summary: BatchSummary,
}

impl<S: FnMut(BatchEvent)> Run<'_, S> {
    fn emit_item(&mut self, report: ItemReport) {
        self.summary.items += 1;
        if !report.outcome.is_success() {
            self.summary.unsuccessful += 1;
        }
        (self.sink)(BatchEvent::Item(report));
    }

    fn emit_call<T>(&mut self, purpose: CallPurpose, items: &[usize], report: &CallReport<T>) {
        let record = CallRecord {
            call_id: report.call_id,
            purpose,
            items: items.to_vec(),
            error: report.result.as_ref().err().map(ToString::to_string),
            writes: report.egress.iter().filter(|r| r.may_have_written()).cloned().collect(),
            duration_ms: report.duration_ms,
        };
        (self.sink)(BatchEvent::Call(record));
    }

    /// Reports `items` as not attempted, for the reason the batch stopped.
    fn not_attempted(&mut self, items: &[usize]) {
        let reason = self.summary.stopped.clone().unwrap_or_default();
        for &item in items {
            let changes = self.items[item]
                .iter()
                .map(|change| {
                    let detail = format!("not attempted: {reason}");
                    report_of(change, (ChangeStatus::NotApplied, detail, Vec::new(), Vec::new()))
                })
                .collect();
            self.emit_item(ItemReport {
                item,
                outcome: ItemOutcome::NotAttempted,
                changes,
                requests: Vec::new(),
                call_id: None,
            });
        }
    }

    /// Plans `items` in one dry run, tried up to [`READ_ATTEMPTS`] times; `None`, with the batch
    /// stopped, when no try gave a plan (nothing was written, unless a defective connector
    /// wrote in a dry run, which the call's record then shows).
    async fn plan(&mut self, items: &[usize]) -> Result<Option<Vec<Planned>>, HostError> {
        let changes: Vec<Change> = items.iter().flat_map(|&i| self.items[i].clone()).collect();
        let mut failure = String::new();
        for _ in 0..READ_ATTEMPTS {
            let dry_run = ChangeOptions { dry_run: true };
            let report = self.host.apply_batch(self.tenant, changes.clone(), dry_run).await?;
            self.emit_call(CallPurpose::Plan, items, &report);
            let call_id = report.call_id;
            failure = match report.result {
                Ok(results) => match split(self.items, items, results) {
                    Some(per_item) => {
                        let zipped = items.iter().zip(per_item);
                        return Ok(Some(
                            zipped.map(|(&item, plan)| Planned { item, plan }).collect(),
                        ));
                    }
                    None => format!("planning call {call_id}: {MISCOUNT}"),
                },
                Err(error) => format!("planning call {call_id} failed: {error}"),
            };
        }
        self.summary.stopped = Some(failure);
        Ok(None)
    }

    /// One call writing the items of `call`.
    async fn write(&mut self, call: &[Planned]) -> Result<CallReport<Results>, HostError> {
        let changes: Vec<Change> = call.iter().flat_map(|p| self.items[p.item].clone()).collect();
        let report =
            self.host.apply_batch(self.tenant, changes, ChangeOptions { dry_run: false }).await?;
        let items: Vec<usize> = call.iter().map(|p| p.item).collect();
        self.emit_call(CallPurpose::Apply, &items, &report);
        Ok(report)
    }

    /// Reports the items of an apply call: from its results where they are confirmed, from a
    /// read-back where they are not.
    async fn settle(
        &mut self,
        call: &[Planned],
        report: CallReport<Results>,
    ) -> Result<(), HostError> {
        let items: Vec<usize> = call.iter().map(|p| p.item).collect();
        let call_id = report.call_id;
        let (per_item, call_error) = match report.result {
            Ok(results) => match split(self.items, &items, results) {
                Some(per_item) => (per_item.into_iter().map(Some).collect(), None),
                None => (vec![None; items.len()], Some(MISCOUNT.to_string())),
            },
            Err(error) => (vec![None; items.len()], Some(error.to_string())),
        };
        let writes: Vec<&EgressRecord> =
            report.egress.iter().filter(|r| r.may_have_written()).collect();
        let mut unsettled: Vec<Unsettled> = Vec::new();
        let mut reports: Vec<ItemReport> = Vec::new();
        for (position, (planned, results)) in call.iter().zip(per_item).enumerate() {
            let mut report = ItemReport {
                item: planned.item,
                outcome: ItemOutcome::Unknown,
                changes: Vec::new(),
                requests: Vec::new(),
                call_id: Some(call_id),
            };
            for (index, change) in self.items[planned.item].iter().enumerate() {
                let result = results.as_ref().map(|r| r[index].clone());
                let told = match (&planned.plan[index], result) {
                    (Ok(pre), _) if pre.outcome == ChangeOutcome::AlreadyInState => {
                        (ChangeStatus::AlreadyInState, pre.detail.clone(), Vec::new(), Vec::new())
                    }
                    (_, Some(Ok(result))) => {
                        for request in &result.requests {
                            push_request(&mut report.requests, request, &writes);
                        }
                        (status_of(result.outcome), result.detail, result.replaced, result.notices)
                    }
                    // The plan had no request for it, and the call refused it again.
                    (Err(_), Some(Err(error))) => {
                        (ChangeStatus::NotApplied, describe(error), Vec::new(), Vec::new())
                    }
                    (_, Some(Err(error))) => {
                        let why = describe(error);
                        unsettled.push(Unsettled { position, change: index, why: why.clone() });
                        (ChangeStatus::Unknown, why, Vec::new(), Vec::new())
                    }
                    (_, None) => {
                        let why = format!(
                            "call {call_id} gave no result ({})",
                            call_error.as_deref().unwrap_or_default()
                        );
                        unsettled.push(Unsettled { position, change: index, why: why.clone() });
                        (ChangeStatus::Unknown, why, Vec::new(), Vec::new())
                    }
                };
                report.changes.push(report_of(change, told));
            }
            reports.push(report);
        }
        let mut side_writes = vec![false; reports.len()];
        if !unsettled.is_empty() {
            side_writes = self.read_back(call, &mut reports, &unsettled, &writes, call_id).await?;
        }
        for (mut report, side_writes) in reports.into_iter().zip(side_writes) {
            report.outcome = outcome_of(&report, side_writes);
            self.emit_item(report);
        }
        Ok(())
    }

    /// Decides the `unsettled` changes of `call` by planning them again; when that fails too,
    /// by the host's record of the apply call's `writes` (and the batch stops: the service is
    /// not answering). Returns, per item of the call, whether the read-back shows a write of
    /// its plan made although none of its changes is (see [`outcome_of`]).
    async fn read_back(
        &mut self,
        call: &[Planned],
        reports: &mut [ItemReport],
        unsettled: &[Unsettled],
        writes: &[&EgressRecord],
        call_id: u64,
    ) -> Result<Vec<bool>, HostError> {
        let mut side_writes = vec![false; call.len()];
        // Which of `unsettled` are still undecided.
        let mut open: Vec<usize> = (0..unsettled.len()).collect();
        let mut last_error = String::new();
        for _ in 0..READ_ATTEMPTS {
            if open.is_empty() {
                break;
            }
            let changes: Vec<Change> = open
                .iter()
                .map(|&u| self.items[call[unsettled[u].position].item][unsettled[u].change].clone())
                .collect();
            let mut items: Vec<usize> =
                open.iter().map(|&u| call[unsettled[u].position].item).collect();
            items.dedup();
            let dry_run = ChangeOptions { dry_run: true };
            let report = self.host.apply_batch(self.tenant, changes.clone(), dry_run).await?;
            self.emit_call(CallPurpose::ReadBack, &items, &report);
            let results = match report.result {
                Ok(results) if results.len() == changes.len() => results,
                Ok(_) => {
                    last_error = MISCOUNT.to_string();
                    continue;
                }
                Err(error) => {
                    last_error = error.to_string();
                    continue;
                }
            };
            let mut still = Vec::new();
            for (&u, post) in open.iter().zip(results) {
                let Unsettled { position, change, why } = &unsettled[u];
                if let Ok(post) = &post {
                    side_writes[*position] |= dropped_from_plan(&call[*position], post);
                }
                let change = &mut reports[*position].changes[*change];
                (change.status, change.detail) = match post {
                    Ok(post) if post.outcome == ChangeOutcome::AlreadyInState => {
                        let invited = post
                            .account
                            .as_ref()
                            .is_some_and(|a| a.status == AccountStatus::Invited);
                        let status =
                            if invited { ChangeStatus::Pending } else { ChangeStatus::Applied };
                        (status, format!("{why}; reading back shows it made"))
                    }
                    Ok(_) => {
                        (ChangeStatus::NotApplied, format!("{why}; reading back shows it not made"))
                    }
                    Err(error) => {
                        last_error = describe(error);
                        still.push(u);
                        (
                            ChangeStatus::Unknown,
                            format!("{why}; it could not be read back ({last_error})"),
                        )
                    }
                };
            }
            open = still;
        }
        attribute_writes(call, reports, unsettled, writes);
        if open.is_empty() {
            return Ok(side_writes);
        }
        let unsettled: Vec<&Unsettled> = open.iter().map(|&u| &unsettled[u]).collect();
        // A write tied to no item's plan (a bulk request regrouped after a failure) may still
        // concern any item planning a request of the same method to the same path.
        let plans: Vec<Vec<&PlannedRequest>> = call.iter().map(Planned::requests).collect();
        let untied: Vec<&EgressRecord> = writes
            .iter()
            .copied()
            .filter(|w| !plans.iter().flatten().any(|r| same_request(w, r)))
            .collect();
        for u in &unsettled {
            let requests = &plans[u.position];
            let mine =
                requests.iter().filter(|r| writes.iter().any(|w| same_request(w, r))).count();
            let near = untied
                .iter()
                .filter(|w| {
                    requests.iter().any(|r| w.method == r.method && w.path.ends_with(&r.path))
                })
                .count();
            let change = &mut reports[u.position].changes[u.change];
            let why = &u.why;
            (change.status, change.detail) = if mine == 0 && near == 0 {
                (
                    ChangeStatus::NotApplied,
                    format!(
                        "{why}; no write for it reached the service (the host's record of call {call_id})"
                    ),
                )
            } else {
                (
                    ChangeStatus::Unknown,
                    format!(
                        "{why}; {} write(s) of call {call_id} that may concern it may have reached the service, and it could not be read back ({last_error}); check the account before retrying",
                        mine + near
                    ),
                )
            };
        }
        self.summary.stopped =
            Some(format!("call {call_id} failed and could not be read back ({last_error})"));
        Ok(side_writes)
    }
}

/// Whether a request the item's plan named, by method and path, is planned no more: it was made
/// (an invite cancelled before its re-invitation failed). Bodies are not compared, as a bulk
/// request planned again names fewer people.
fn dropped_from_plan(planned: &Planned, post: &ChangeResult) -> bool {
    post.outcome == ChangeOutcome::Planned
        && planned
            .requests()
            .iter()
            .any(|pre| !post.requests.iter().any(|r| r.method == pre.method && r.path == pre.path))
}

/// What a connector's error says, for people.
fn describe(error: ConnectorError) -> String {
    crate::call::CallError::Connector(error).to_string()
}

/// Why a call's results could not be used.
const MISCOUNT: &str = "the connector returned a different number of results than changes";

/// Lists on each unsettled item the writes of its call that match its plan.
fn attribute_writes(
    call: &[Planned],
    reports: &mut [ItemReport],
    unsettled: &[Unsettled],
    writes: &[&EgressRecord],
) {
    let mut positions: Vec<usize> = unsettled.iter().map(|u| u.position).collect();
    positions.dedup();
    for position in positions {
        for request in call[position].requests() {
            if writes.iter().any(|w| same_request(w, request)) {
                push_request(&mut reports[position].requests, request, writes);
            }
        }
    }
}

/// Splits the flat results of the changes of `items` into one list per item, or `None` when the
/// count does not match.
fn split(all: &[Vec<Change>], items: &[usize], results: Results) -> Option<Vec<Results>> {
    let expected: usize = items.iter().map(|&i| all[i].len()).sum();
    if results.len() != expected {
        return None;
    }
    let mut results = results.into_iter();
    Some(items.iter().map(|&i| results.by_ref().take(all[i].len()).collect()).collect())
}

/// Whether the host's record of a write is the planned `request`: the same method, a path
/// ending in the planned one (the record's includes the base URL's), the same body.
fn same_request(record: &EgressRecord, request: &PlannedRequest) -> bool {
    record.method == request.method
        && record.path.ends_with(&request.path)
        && (record.request_body_truncated || record.request_body == request.body)
}

/// Adds `request` to `requests` once, with the status the host saw answered for it.
fn push_request(
    requests: &mut Vec<ItemRequest>,
    request: &PlannedRequest,
    writes: &[&EgressRecord],
) {
    let status = writes.iter().rev().find(|w| same_request(w, request)).and_then(|w| w.status);
    let known = requests
        .iter()
        .any(|r| r.method == request.method && r.path == request.path && r.body == request.body);
    if !known {
        requests.push(ItemRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            body: request.body.clone(),
            status,
        });
    }
}

fn status_of(outcome: ChangeOutcome) -> ChangeStatus {
    match outcome {
        ChangeOutcome::Applied => ChangeStatus::Applied,
        ChangeOutcome::AlreadyInState => ChangeStatus::AlreadyInState,
        ChangeOutcome::Pending => ChangeStatus::Pending,
        ChangeOutcome::Planned => ChangeStatus::Planned,
    }
}

/// The report of an item that needs no write, or of a dry run, from its plan alone.
fn from_plan(planned: &Planned, changes: &[Change], dry_run: bool) -> ItemReport {
    let mut report = ItemReport {
        item: planned.item,
        outcome: ItemOutcome::Failed,
        changes: Vec::new(),
        requests: Vec::new(),
        call_id: None,
    };
    for (change, result) in changes.iter().zip(&planned.plan) {
        let told = match result {
            Ok(r) => {
                (status_of(r.outcome), r.detail.clone(), r.replaced.clone(), r.notices.clone())
            }
            Err(error) => {
                (ChangeStatus::NotApplied, describe(error.clone()), Vec::new(), Vec::new())
            }
        };
        report.changes.push(report_of(change, told));
    }
    if dry_run {
        for request in planned.requests() {
            push_request(&mut report.requests, request, &[]);
        }
    }
    report.outcome = outcome_of(&report, false);
    report
}

/// The item's outcome from its changes'. An item none of whose changes was made, but a write of
/// whose plan was (`side_writes`: an invite cancelled before its re-invitation failed), is
/// partial, not failed. A write's 2xx alone proves nothing: the service answers some refusals
/// with a 200 page, and read-back decides.
fn outcome_of(report: &ItemReport, side_writes: bool) -> ItemOutcome {
    let any = |status: ChangeStatus| report.changes.iter().any(|c| c.status == status);
    if any(ChangeStatus::Unknown) {
        return ItemOutcome::Unknown;
    }
    let made = any(ChangeStatus::Applied) || any(ChangeStatus::Pending) || side_writes;
    if any(ChangeStatus::NotApplied) {
        return if made { ItemOutcome::Partial } else { ItemOutcome::Failed };
    }
    if any(ChangeStatus::Planned) {
        ItemOutcome::Planned
    } else if any(ChangeStatus::Pending) {
        ItemOutcome::Pending
    } else if made {
        ItemOutcome::Applied
    } else {
        ItemOutcome::AlreadyInState
    }
}

/// What a change's report tells: its status, detail, replaced entitlements and notices.
type Told = (ChangeStatus, String, Vec<String>, Vec<Notice>);

/// A change's report, naming the change.
fn report_of(change: &Change, (status, detail, replaced, notices): Told) -> ChangeReport {
    let (action, entitlement) = match change {
        Change::Grant(c) => ("grant", c.entitlement.clone()),
        Change::Revoke(c) => ("revoke", c.entitlement.clone()),
        Change::Set(c) => ("set", c.entitlement.clone()),
    };
    ChangeReport { action, entitlement, status, detail, replaced, notices }
}

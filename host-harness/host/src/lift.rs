//! `list-accounts` pages lifted out of the guest's memory by hand.
//!
//! A sync lifts every account of a workspace, about seven strings each, and wasmtime's generic
//! lifting pays for each string again what it pays once per value: the call's canonical options
//! looked up twice, a `Cow` built and turned into a `String`, the record's layout walked field by
//! field: on a large sync, a large share of the syncing thread's CPU (`docs/benchmarks.md`).
//! [`LiftedAccountPage`] reads the same bytes with the layout computed once per page and
//! each string checked as ASCII before any UTF-8 decoding. wasmtime's lifting traits are public
//! but unstable (doc-hidden), so this leans on wasmtime 48's: the e2e tests (`sandbox`) check
//! every field of a page, with and without a value and beyond ASCII, against what the guest
//! returned, and that a string outside the guest's memory or not UTF-8 fails the call.
//!
//! Anything other than the contract's own shape is left to wasmtime: the type check is
//! [`AccountPage`]'s, and a component whose strings are not UTF-8 is lifted the generic way.

#![allow(unsafe_code)] // The lifting traits are `unsafe` to implement; see each `SAFETY`.

use wasmtime::Result;
use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};

use crate::bindings::types::{Account, AccountPage, AccountStatus};

/// Bytes of a string's or a list's pointer and length.
const PAIR: usize = <String as ComponentType>::SIZE32;

/// An [`AccountPage`] as `list-accounts` returns it, lifted by [`Lift`] below.
pub(crate) struct LiftedAccountPage(pub(crate) AccountPage);

// SAFETY: the same lowered form, layout and type check as `AccountPage`'s own (derived) impl,
// of which this is a wrapper.
unsafe impl ComponentType for LiftedAccountPage {
    type Lower = <AccountPage as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = <AccountPage as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        <AccountPage as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: every read of guest memory is bounds-checked (slices of `cx.memory()`), and the data
// lifted is owned by the result; nothing here depends on the guest's values being well-formed.
unsafe impl Lift for LiftedAccountPage {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> Result<Self> {
        // A page never fits in flat results; kept correct all the same.
        AccountPage::linear_lift_from_flat(cx, ty, src).map(Self)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> Result<Self> {
        if cx.options().string_encoding != StringEncoding::Utf8 {
            return AccountPage::linear_lift_from_memory(cx, ty, bytes).map(Self);
        }
        let types = PageTypes::of(cx, ty)?;
        let mut offset = 0;
        let accounts_at = <Vec<Account>>::ABI.next_field32_size(&mut offset);
        let cursor_at = <Option<String>>::ABI.next_field32_size(&mut offset);
        let memory = cx.memory();
        let accounts = list_in(cx, memory, field(bytes, accounts_at, PAIR)?, Account::ABI)?;
        let layout = AccountLayout::new();
        let mut lifted = Vec::with_capacity(accounts.len() / layout.size);
        for account in accounts.chunks_exact(layout.size) {
            lifted.push(layout.lift(cx, memory, account, types.status)?);
        }
        let cursor = field(bytes, cursor_at, <Option<String>>::SIZE32)?;
        let next_cursor = <Option<String>>::linear_lift_from_memory(cx, types.cursor, cursor)?;
        Ok(Self(AccountPage { accounts: lifted, next_cursor }))
    }
}

/// The interface types the generic lifts of a page's fields need, found once per page.
struct PageTypes {
    /// `account.status`.
    status: InterfaceType,
    /// `account-page.next-cursor`.
    cursor: InterfaceType,
}

impl PageTypes {
    /// Looks them up in the type of `account-page` (`ty`), already checked to be the contract's.
    fn of(cx: &LiftContext<'_>, ty: InterfaceType) -> Result<Self> {
        let InterfaceType::Record(page) = ty else {
            wasmtime::bail!("account-page is not a record")
        };
        let page = &cx.types[page];
        let (Some(accounts), Some(cursor)) = (page.fields.first(), page.fields.get(1)) else {
            wasmtime::bail!("account-page has not its two fields");
        };
        let InterfaceType::List(list) = accounts.ty else {
            wasmtime::bail!("accounts is not a list")
        };
        let InterfaceType::Record(account) = cx.types[list].element else {
            wasmtime::bail!("an account is not a record");
        };
        let Some(status) = cx.types[account].fields.get(3) else {
            wasmtime::bail!("account has no status field");
        };
        Ok(Self { status: status.ty, cursor: cursor.ty })
    }
}

/// Where each field of an `account` record lies, from the canonical ABI of its Rust fields (the
/// derived impl's type check has matched them with the component's).
struct AccountLayout {
    id: usize,
    email: usize,
    display_name: usize,
    status: usize,
    entitlements: usize,
    managed_by: usize,
    created_at: usize,
    size: usize,
}

impl AccountLayout {
    fn new() -> Self {
        let mut offset = 0;
        let string = <String>::ABI;
        let optional = <Option<String>>::ABI;
        Self {
            id: string.next_field32_size(&mut offset),
            email: optional.next_field32_size(&mut offset),
            display_name: optional.next_field32_size(&mut offset),
            status: AccountStatus::ABI.next_field32_size(&mut offset),
            entitlements: <Vec<String>>::ABI.next_field32_size(&mut offset),
            managed_by: optional.next_field32_size(&mut offset),
            created_at: optional.next_field32_size(&mut offset),
            size: Account::SIZE32,
        }
    }

    /// Lifts the account whose record is `bytes`.
    fn lift(
        &self,
        cx: &mut LiftContext<'_>,
        memory: &[u8],
        bytes: &[u8],
        status: InterfaceType,
    ) -> Result<Account> {
        let listed = list_in(cx, memory, field(bytes, self.entitlements, PAIR)?, String::ABI)?;
        let mut entitlements = Vec::with_capacity(listed.len() / PAIR);
        for pair in listed.chunks_exact(PAIR) {
            entitlements.push(string_in(cx, memory, pair)?);
        }
        Ok(Account {
            id: string_in(cx, memory, field(bytes, self.id, PAIR)?)?,
            email: optional_string_in(cx, memory, bytes, self.email)?,
            display_name: optional_string_in(cx, memory, bytes, self.display_name)?,
            status: AccountStatus::linear_lift_from_memory(
                cx,
                status,
                field(bytes, self.status, AccountStatus::SIZE32)?,
            )?,
            entitlements,
            managed_by: optional_string_in(cx, memory, bytes, self.managed_by)?,
            created_at: optional_string_in(cx, memory, bytes, self.created_at)?,
        })
    }
}

/// `len` bytes of a record at `offset`.
fn field(bytes: &[u8], offset: usize, len: usize) -> Result<&[u8]> {
    span(bytes, offset, len)
        .ok_or_else(|| wasmtime::format_err!("a record's field lies beyond the record"))
}

/// A pointer and a length, as the canonical ABI stores them.
fn pointer_pair(pair: &[u8]) -> Result<(usize, usize)> {
    match pair {
        [p0, p1, p2, p3, l0, l1, l2, l3] => Ok((
            usize::try_from(u32::from_le_bytes([*p0, *p1, *p2, *p3]))?,
            usize::try_from(u32::from_le_bytes([*l0, *l1, *l2, *l3]))?,
        )),
        _ => wasmtime::bail!("a pointer pair is {PAIR} bytes"),
    }
}

/// The bytes of the list whose pointer pair is `pair`, of elements laid out as `element`:
/// checked for alignment and bounds, and counted against the call's host-call fuel as wasmtime's
/// own lift does.
fn list_in<'m>(
    cx: &mut LiftContext<'_>,
    memory: &'m [u8],
    pair: &[u8],
    element: CanonicalAbiInfo,
) -> Result<&'m [u8]> {
    let (ptr, len) = pointer_pair(pair)?;
    let size = usize::try_from(element.size32)?;
    let align = usize::try_from(element.align32)?;
    if ptr % align != 0 {
        wasmtime::bail!("list pointer is not aligned");
    }
    cx.consume_fuel_array(len, size)?;
    len.checked_mul(size)
        .and_then(|bytes| span(memory, ptr, bytes))
        .ok_or_else(|| wasmtime::format_err!("list pointer/length out of bounds of memory"))
}

/// The `len` bytes of `bytes` from `offset`, if they all lie inside it.
fn span(bytes: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    bytes.get(offset..)?.get(..len)
}

/// The string whose pointer pair is `pair`: bounds-checked, counted against the call's fuel,
/// and checked as UTF-8.
fn string_in(cx: &mut LiftContext<'_>, memory: &[u8], pair: &[u8]) -> Result<String> {
    let (ptr, len) = pointer_pair(pair)?;
    let Some(bytes) = span(memory, ptr, len) else {
        wasmtime::bail!("string pointer/length out of bounds of memory");
    };
    cx.consume_fuel(len)?;
    // Nearly every string of a page is ASCII, which `is_ascii` checks a word at a time where
    // `from_utf8` sets up its general decoder for every short string.
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) }.to_owned())
    } else {
        Ok(std::str::from_utf8(bytes)?.to_owned())
    }
}

/// The `option<string>` at `offset` of a record.
fn optional_string_in(
    cx: &mut LiftContext<'_>,
    memory: &[u8],
    record: &[u8],
    offset: usize,
) -> Result<Option<String>> {
    // One discriminant byte, then the string, aligned as a string is.
    let payload = offset + usize::try_from(<String>::ALIGN32)?;
    match field(record, offset, 1)? {
        [0] => Ok(None),
        [1] => string_in(cx, memory, field(record, payload, PAIR)?).map(Some),
        _ => wasmtime::bail!("invalid option discriminant"),
    }
}

//! The attributes the SCIM surface supports, with their RFC 7643 §2 characteristics.
//!
//! One table drives `/Schemas`, filtering, `attributes` projection and PATCH paths, so discovery
//! cannot claim an attribute the other parts do not handle.

use serde_json::{Map, Value, json};

/// URN of the core User schema.
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// URN of the core Group schema.
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `string`
    String,
    /// `boolean`
    Boolean,
    /// `complex`
    Complex,
    /// `reference`
    Reference,
    /// `dateTime`
    DateTime,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::Complex => "complex",
            Kind::Reference => "reference",
            Kind::DateTime => "dateTime",
        }
    }
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug)]
pub struct Attr {
    /// Canonical name, as rendered.
    pub name: &'static str,
    /// Data type.
    pub kind: Kind,
    /// Multi-valued.
    pub multi_valued: bool,
    /// Description.
    pub description: &'static str,
    /// Required on create and replace.
    pub required: bool,
    /// Whether comparisons respect case.
    pub case_exact: bool,
    /// `readWrite`, `readOnly` or `immutable`.
    pub mutability: &'static str,
    /// `always` or `default`.
    pub returned: &'static str,
    /// `none` or `server`.
    pub uniqueness: &'static str,
    /// Sub-attributes of a complex attribute.
    pub sub_attributes: &'static [Attr],
    /// Reference types of a reference attribute.
    pub reference_types: &'static [&'static str],
    /// Canonical values, where the schema suggests some.
    pub canonical_values: &'static [&'static str],
}

const fn attr(name: &'static str, kind: Kind, description: &'static str) -> Attr {
    Attr {
        name,
        kind,
        multi_valued: false,
        description,
        required: false,
        case_exact: false,
        mutability: "readWrite",
        returned: "default",
        uniqueness: "none",
        sub_attributes: &[],
        reference_types: &[],
        canonical_values: &[],
    }
}

impl Attr {
    const fn many(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.mutability = "readOnly";
        self
    }
    const fn immutable(mut self) -> Self {
        self.mutability = "immutable";
        self
    }
    const fn always(mut self) -> Self {
        self.returned = "always";
        self
    }
    const fn unique(mut self) -> Self {
        self.uniqueness = "server";
        self
    }
    const fn subs(mut self, subs: &'static [Attr]) -> Self {
        self.sub_attributes = subs;
        self
    }
    const fn refs(mut self, types: &'static [&'static str]) -> Self {
        self.reference_types = types;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }

    /// The sub-attribute called `name`, case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&'static Attr> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether clients may not write it.
    pub fn is_read_only(&self) -> bool {
        self.mutability == "readOnly"
    }

    /// The attribute filters compare when they name this one without a sub-attribute: itself,
    /// or the `value` sub-attribute of a multi-valued complex attribute (RFC 7644 §3.4.2.2).
    pub fn compared(&'static self) -> Option<&'static Attr> {
        match self.kind {
            Kind::Complex => self.sub("value"),
            _ => Some(self),
        }
    }

    /// The definition as `/Schemas` renders it.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(self.name));
        out.insert("type".into(), json!(self.kind.as_str()));
        out.insert("multiValued".into(), json!(self.multi_valued));
        out.insert("description".into(), json!(self.description));
        out.insert("required".into(), json!(self.required));
        if !self.canonical_values.is_empty() {
            out.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if self.kind != Kind::Complex && self.kind != Kind::Boolean {
            out.insert("caseExact".into(), json!(self.case_exact));
        }
        out.insert("mutability".into(), json!(self.mutability));
        out.insert("returned".into(), json!(self.returned));
        if self.kind != Kind::Complex && self.kind != Kind::Boolean {
            out.insert("uniqueness".into(), json!(self.uniqueness));
        }
        if !self.reference_types.is_empty() {
            out.insert("referenceTypes".into(), json!(self.reference_types));
        }
        if !self.sub_attributes.is_empty() {
            let subs: Vec<Value> = self.sub_attributes.iter().map(Attr::to_json).collect();
            out.insert("subAttributes".into(), Value::Array(subs));
        }
        Value::Object(out)
    }
}

/// RFC 7643 §3.1: on every resource, outside the schemas.
static COMMON: [Attr; 3] = [
    attr("id", Kind::String, "Identifier of the resource, assigned by the service provider.")
        .exact()
        .read_only()
        .always()
        .unique(),
    attr("externalId", Kind::String, "Identifier of the resource in the provisioning client.")
        .exact(),
    attr("meta", Kind::Complex, "Resource metadata.").read_only().subs(&[
        attr("resourceType", Kind::String, "Name of the resource type.").exact().read_only(),
        attr("created", Kind::DateTime, "When the resource was created.").read_only(),
        attr("lastModified", Kind::DateTime, "When the resource was last changed.").read_only(),
        attr("location", Kind::Reference, "URI of the resource.")
            .exact()
            .read_only()
            .refs(&["uri"]),
    ]),
];

static USER: [Attr; 6] = [
    attr("userName", Kind::String, "The user's sign-in email; stored lowercased.")
        .required()
        .unique(),
    attr("name", Kind::Complex, "The components of the user's name.").subs(&[
        attr("formatted", Kind::String, "Full name, computed from givenName and familyName.")
            .read_only(),
        attr("familyName", Kind::String, "Family name."),
        attr("givenName", Kind::String, "Given name."),
    ]),
    attr("displayName", Kind::String, "Name of the user, suitable for display."),
    attr(
        "emails",
        Kind::Complex,
        "Email addresses, at least one: an email-shaped userName is copied here if none given.",
    )
    .many()
    .required()
    .subs(&[
        attr("value", Kind::String, "Email address; unique across users.").unique().required(),
        attr("type", Kind::String, "Label of the address.").canonical(&["work", "home", "other"]),
        attr("primary", Kind::Boolean, "The address the workspace uses; at most one."),
    ]),
    attr(
        "active",
        Kind::Boolean,
        "Whether the user has access: false removes them from the workspace and from every group. It cannot be removed, only replaced.",
    ),
    attr("groups", Kind::Complex, "Groups the user belongs to.").many().read_only().subs(&[
        attr("value", Kind::String, "Group id.").exact().read_only(),
        attr("$ref", Kind::Reference, "URI of the group.").exact().read_only().refs(&["Group"]),
        attr("display", Kind::String, "Group displayName.").read_only(),
        attr("type", Kind::String, "Membership kind.").read_only().canonical(&["direct"]),
    ]),
];

static GROUP: [Attr; 2] = [
    attr("displayName", Kind::String, "Name of the group; unique case-insensitively.")
        .required()
        .unique(),
    attr(
        "members",
        Kind::Complex,
        "Members: ids of active users. Values that name no active user are dropped.",
    )
    .many()
    .subs(&[
        attr("value", Kind::String, "User id.").exact().immutable(),
        attr("$ref", Kind::Reference, "URI of the user.").exact().read_only().refs(&["User"]),
        attr("display", Kind::String, "The user's userName.").read_only(),
        attr("type", Kind::String, "Kind of member.").immutable().canonical(&["User"]),
    ]),
];

/// The resource types served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `/Users`
    User,
    /// `/Groups`
    Group,
}

impl Resource {
    /// Both, in discovery order.
    pub const ALL: [Resource; 2] = [Resource::User, Resource::Group];

    /// Its name: `User` or `Group`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::User => "User",
            Resource::Group => "Group",
        }
    }

    /// Its endpoint path.
    pub fn endpoint(self) -> &'static str {
        match self {
            Resource::User => "/Users",
            Resource::Group => "/Groups",
        }
    }

    /// Its schema URN.
    pub fn urn(self) -> &'static str {
        match self {
            Resource::User => USER_URN,
            Resource::Group => GROUP_URN,
        }
    }

    /// The attributes of its schema (without the common ones).
    pub fn attributes(self) -> &'static [Attr] {
        match self {
            Resource::User => &USER,
            Resource::Group => &GROUP,
        }
    }

    /// A schema or common attribute, by name, case-insensitively.
    pub fn find(self, name: &str) -> Option<&'static Attr> {
        self.attributes().iter().chain(COMMON.iter()).find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// `path` without the schema URN prefix clients may put in front of attribute names
    /// (`urn:ietf:params:scim:schemas:core:2.0:User:userName`).
    pub fn strip_urn(self, path: &str) -> &str {
        let urn = self.urn();
        match path.get(..urn.len()) {
            Some(head) if head.eq_ignore_ascii_case(urn) => {
                path[urn.len()..].strip_prefix(':').unwrap_or(&path[urn.len()..])
            }
            _ => path,
        }
    }
}

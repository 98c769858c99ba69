//! SCIM filters (RFC 7644 §3.4.2.2): parsed against the supported attributes, so a filter on an
//! attribute the mock does not know is refused rather than silently matching nothing, and
//! evaluated on a resource's rendered JSON.
//!
//! Supported: `eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not (..)`, parentheses and value
//! paths (`emails[type eq "work"]`), operators and keywords case-insensitive, `and` binding
//! tighter than `or`.

use serde_json::Value;

use super::schema::{Attr, Kind, Resource};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Contains.
    Co,
    /// Starts with.
    Sw,
    /// Ends with.
    Ew,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less or equal.
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }
}

/// A parsed filter. Attributes are resolved definitions; inside a value path they are
/// sub-attributes of the path's attribute.
#[derive(Debug, Clone)]
pub enum Filter {
    /// `attr[.sub] op value`
    Compare {
        /// The attribute.
        attr: &'static Attr,
        /// Its sub-attribute, if named.
        sub: Option<&'static Attr>,
        /// The operator.
        op: Op,
        /// The literal.
        value: Value,
    },
    /// `attr[.sub] pr`
    Present {
        /// The attribute.
        attr: &'static Attr,
        /// Its sub-attribute, if named.
        sub: Option<&'static Attr>,
    },
    /// `attr[filter]`: some value of `attr` matches `filter`.
    ValuePath {
        /// The multi-valued or complex attribute.
        attr: &'static Attr,
        /// The filter on its values.
        filter: Box<Filter>,
    },
    /// Both.
    And(Box<Filter>, Box<Filter>),
    /// Either.
    Or(Box<Filter>, Box<Filter>),
    /// Negation.
    Not(Box<Filter>),
}

/// Parses a filter on `resource`'s attributes.
pub fn parse(text: &str, resource: Resource) -> Result<Filter, String> {
    Parser::new(text, resource, None)?.run()
}

/// Parses the filter of a value path: its attributes are sub-attributes of `scope`.
pub fn parse_scoped(
    text: &str,
    resource: Resource,
    scope: &'static Attr,
) -> Result<Filter, String> {
    Parser::new(text, resource, Some(scope))?.run()
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    LeftBracket,
    RightBracket,
    Str(String),
    Word(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::LeftBracket,
                    _ => Token::RightBracket,
                });
            }
            '"' => {
                chars.next();
                let mut escaped = false;
                let mut end = None;
                for (i, c) in chars.by_ref() {
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or("unterminated string")?;
                // The grammar's compValue strings are JSON strings (RFC 7644 §3.4.2.2).
                let value: String = serde_json::from_str(&text[start..=end])
                    .map_err(|e| format!("bad string literal: {e}"))?;
                tokens.push(Token::Str(value));
            }
            _ => {
                let mut end = text.len();
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || "()[]\"".contains(c) {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                tokens.push(Token::Word(text[start..end].to_string()));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    resource: Resource,
    scope: Option<&'static Attr>,
}

impl Parser {
    fn new(text: &str, resource: Resource, scope: Option<&'static Attr>) -> Result<Self, String> {
        Ok(Parser { tokens: tokenize(text)?, pos: 0, resource, scope })
    }

    fn run(mut self) -> Result<Filter, String> {
        if self.tokens.is_empty() {
            return Err("empty filter".into());
        }
        let filter = self.or()?;
        match self.tokens.get(self.pos) {
            None => Ok(filter),
            Some(token) => Err(format!("unexpected {token:?} after a complete filter")),
        }
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(word) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn expect(&mut self, token: Token) -> Result<(), String> {
        match self.next() {
            Some(t) if t == token => Ok(()),
            other => Err(format!("expected {token:?}, found {other:?}")),
        }
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.atom()?;
        while self.keyword("and") {
            left = Filter::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            self.expect(Token::Open)?;
            let inner = self.or()?;
            self.expect(Token::Close)?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                self.expect(Token::Close)?;
                Ok(inner)
            }
            Some(Token::Word(path)) => self.comparison(&path),
            other => Err(format!("expected an attribute, found {other:?}")),
        }
    }

    fn comparison(&mut self, path: &str) -> Result<Filter, String> {
        if self.tokens.get(self.pos) == Some(&Token::LeftBracket) {
            self.pos += 1;
            let (attr, sub) = self.attribute(path)?;
            if self.scope.is_some() || sub.is_some() || attr.kind != Kind::Complex {
                return Err(format!("{path} cannot take a value filter"));
            }
            self.scope = Some(attr);
            let inner = self.or();
            self.scope = None;
            let inner = inner?;
            self.expect(Token::RightBracket)?;
            return Ok(Filter::ValuePath { attr, filter: Box::new(inner) });
        }
        let (attr, sub) = self.attribute(path)?;
        let op = match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present { attr, sub });
            }
            Some(Token::Word(w)) => Op::parse(&w).ok_or_else(|| format!("unknown operator {w}"))?,
            other => return Err(format!("expected an operator after {path}, found {other:?}")),
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Value::String(s),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
            Some(Token::Word(w)) => serde_json::from_str::<serde_json::Number>(&w)
                .map(Value::Number)
                .map_err(|_| format!("{w} is not a value: quote strings"))?,
            other => return Err(format!("expected a value after the operator, found {other:?}")),
        };
        let target = sub
            .or_else(|| attr.compared())
            .ok_or_else(|| format!("{path} is complex: name a sub-attribute"))?;
        let fits = match (target.kind, &value) {
            (Kind::Boolean, Value::Bool(_)) => matches!(op, Op::Eq | Op::Ne),
            (Kind::String | Kind::Reference | Kind::DateTime, Value::String(_)) => true,
            _ => false,
        };
        if !fits {
            return Err(format!("{path} cannot be compared with {value} using {op:?}"));
        }
        Ok(Filter::Compare { attr, sub, op, value })
    }

    fn attribute(&self, path: &str) -> Result<(&'static Attr, Option<&'static Attr>), String> {
        let unknown = || format!("unknown attribute {path}");
        if let Some(scope) = self.scope {
            return Ok((scope.sub(path).ok_or_else(unknown)?, None));
        }
        let path = self.resource.strip_urn(path);
        let (name, sub) = match path.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (path, None),
        };
        let attr = self.resource.find(name).ok_or_else(unknown)?;
        let sub = match sub {
            Some(sub) => Some(attr.sub(sub).ok_or_else(unknown)?),
            None => None,
        };
        Ok((attr, sub))
    }
}

/// The field of `doc` called `name`: rendered documents use canonical names, clients may not.
pub fn field<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    let map = doc.as_object()?;
    map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

fn values<'a>(doc: &'a Value, attr: &Attr, sub: Option<&Attr>) -> Vec<&'a Value> {
    let Some(top) = field(doc, attr.name) else { return Vec::new() };
    let items: Vec<&Value> = match top {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let leaf = sub.map(|s| s.name).or(match attr.kind {
        Kind::Complex => Some("value"),
        _ => None,
    });
    items
        .into_iter()
        .filter_map(|item| match leaf {
            Some(leaf) => field(item, leaf),
            None => Some(item),
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn compare(found: &Value, op: Op, literal: &Value, case_exact: bool) -> bool {
    match (found, literal) {
        (Value::Bool(a), Value::Bool(b)) => match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            _ => false,
        },
        (Value::String(a), Value::String(b)) => {
            let (a, b) = if case_exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Co => a.contains(&b),
                Op::Sw => a.starts_with(&b),
                Op::Ew => a.ends_with(&b),
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Lt => a < b,
                Op::Le => a <= b,
            }
        }
        _ => false,
    }
}

impl Filter {
    /// Whether the rendered resource (or, inside a value path, the value) `doc` matches.
    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Filter::Compare { attr, sub, op, value } => {
                let case_exact = sub.or_else(|| attr.compared()).is_some_and(|a| a.case_exact);
                let found = values(doc, attr, *sub);
                match op {
                    // "Not equal" holds when no value equals, including when there is none.
                    Op::Ne => !found.iter().any(|f| compare(f, Op::Eq, value, case_exact)),
                    _ => found.iter().any(|f| compare(f, *op, value, case_exact)),
                }
            }
            Filter::Present { attr, sub } => values(doc, attr, *sub).iter().any(|v| match v {
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            }),
            Filter::ValuePath { attr, filter } => match field(doc, attr.name) {
                Some(Value::Array(items)) => items.iter().any(|item| filter.matches(item)),
                Some(item @ Value::Object(_)) => filter.matches(item),
                _ => false,
            },
            Filter::And(a, b) => a.matches(doc) && b.matches(doc),
            Filter::Or(a, b) => a.matches(doc) || b.matches(doc),
            Filter::Not(inner) => !inner.matches(doc),
        }
    }

    /// For `attr eq "literal"` (the shape of `emails[type eq "work"]`): the attribute and the
    /// literal, so a PATCH `add` can create the value the filter selects.
    pub fn equality(&self) -> Option<(&'static str, &Value)> {
        match self {
            Filter::Compare { attr, sub: None, op: Op::Eq, value } => Some((attr.name, value)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn user() -> Value {
        json!({
            "id": "user-1",
            "userName": "ann@acme.com",
            "displayName": "Ann Lee",
            "active": true,
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [
                {"value": "ann@acme.com", "type": "work", "primary": true},
                {"value": "ann@home.example", "type": "home", "primary": false}
            ],
            "meta": {"created": "2026-01-01T00:00:00Z"}
        })
    }

    fn check(text: &str) -> bool {
        parse(text, Resource::User).unwrap().matches(&user())
    }

    #[test]
    fn comparisons_follow_case_exactness_and_keywords_ignore_case() {
        assert!(check(r#"userName eq "ANN@acme.com""#));
        assert!(check(r#"USERNAME EQ "ann@acme.com""#));
        assert!(!check(r#"id eq "USER-1""#), "id is caseExact");
        assert!(check(r#"id eq "user-1""#));
        assert!(check(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "ann""#));
        assert!(check(r#"name.familyName co "e""#));
        assert!(check(r#"emails.value ew "home.example""#));
        assert!(check(r#"emails eq "ann@home.example""#), "complex multi-valued compares value");
        assert!(check("active eq true"));
        assert!(!check("active eq false"));
        assert!(check(r#"displayName ne "Bob""#));
        assert!(check(r#"externalId ne "x""#), "ne holds on an absent attribute");
        assert!(check("name.givenName pr"));
        assert!(!check("externalId pr"));
        assert!(check(r#"meta.created gt "2025-12-31T00:00:00Z""#));
        assert!(check(r#"userName eq "a\"b" or userName eq "ann@acme.com""#));
    }

    #[test]
    fn logic_and_value_paths() {
        assert!(check(r#"userName eq "x" or userName eq "y" or active eq true"#));
        // `and` binds tighter than `or`: false or (true and true).
        assert!(check(r#"userName eq "x" or active eq true and displayName sw "ann""#));
        assert!(!check(r#"(userName eq "x" or active eq true) and displayName sw "bob""#));
        assert!(check(r#"not (userName eq "x")"#));
        assert!(check(r#"emails[type eq "home" and value co "home"]"#));
        assert!(!check(r#"emails[type eq "home" and primary eq true]"#));
        assert!(check(r#"emails[TYPE eq "work"] and active eq true"#));
        let group =
            json!({"displayName": "Eng", "members": [{"value": "user-1"}, {"value": "user-2"}]});
        let f = parse(r#"members[value eq "user-2"]"#, Resource::Group).unwrap();
        assert!(f.matches(&group));
        let f = parse(r#"displayName eq "eng" and members eq "user-1""#, Resource::Group).unwrap();
        assert!(f.matches(&group));
        assert!(!parse(r#"members eq "USER-1""#, Resource::Group).unwrap().matches(&group));
    }

    #[test]
    fn malformed_and_unsupported_filters_are_refused() {
        for bad in [
            "",
            "userName",
            r#"userName eq"#,
            r#"userName eq "unterminated"#,
            r#"userName xx "a""#,
            r#"nickName eq "a""#,
            r#"name.middleName eq "a""#,
            r#"userName eq "a" and"#,
            r#"userName eq "a")"#,
            r#"(userName eq "a""#,
            r#"name eq "a""#,
            r#"active eq "true""#,
            "active gt true",
            r#"userName eq 12"#,
            r#"emails[type eq "work""#,
            r#"emails[nope eq "work"]"#,
            r#"userName[value eq "a"]"#,
            r#"userName eq ann@acme.com"#,
            r#"not userName eq "a""#,
        ] {
            assert!(parse(bad, Resource::User).is_err(), "accepted {bad:?}");
        }
        assert!(parse(r#"displayName eq "x""#, Resource::Group).is_ok());
        assert!(parse(r#"userName eq "x""#, Resource::Group).is_err());
    }
}

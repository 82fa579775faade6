//! Kafka's ACL model and its evaluation, sans-IO.
//!
//! An [`AclBinding`] says that a principal from a host is allowed (or denied) an operation
//! on the resources a pattern names: a LITERAL pattern names one resource (or every one of
//! its type with the name `*`), a PREFIXED pattern every resource whose name starts with it
//! (KIP-290). [`Acls`] holds the bindings of the cluster metadata, ordered so that the
//! bindings that can apply to one resource are found by range lookups (the literal name,
//! the literal `*`, and one lookup per prefix of the name), never by a scan of all of them.
//!
//! [`Acls::authorize`] decides as Kafka's `StandardAuthorizer` does: a matching DENY wins;
//! else a matching ALLOW grants; else the request is denied (no ACL means no access). A
//! binding matches when its principal is the request's or `User:*`, its host is the
//! request's or `*`, and its operation is the requested one or ALL; an ALLOW of READ, WRITE,
//! DELETE or ALTER also grants DESCRIBE, and an ALLOW of ALTER_CONFIGS grants
//! DESCRIBE_CONFIGS (Kafka's implied operations). Super users are the caller's business.
//!
//! [`AclFilter`] is the filter of DescribeAcls and DeleteAcls, with Kafka's ANY and MATCH.
//! The numeric codes of every enum are Kafka's wire values.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Bound;

/// The name of the one CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A literal resource name that names every resource of its type; also the any-host value.
pub const WILDCARD: &str = "*";
/// The principal that matches every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The principal of a connection that did not authenticate (Kafka's).
pub const ANONYMOUS: &str = "User:ANONYMOUS";
/// Longest resource name, principal or host a binding may hold (bytes).
pub const ACL_FIELD_BYTES_MAX: usize = 1024;
/// Most bindings the cluster metadata holds.
pub const MAX_ACLS: usize = 100_000;

/// Why an ACL or a filter is refused (Kafka answers INVALID_REQUEST).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclError(pub String);

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AclError {}

/// An enum whose variants are Kafka's wire codes (`i8`).
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $code:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($v),* }
        impl $name {
            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$v => $code),* }
            }
            /// The variant of a wire code; `None` for codes Kafka does not define.
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some($name::$v),)* _ => None }
            }
        }
    };
}

wire_enum!(
    /// Kafka's ResourceType.
    ResourceType {
        Unknown = 0,
        Any = 1,
        Topic = 2,
        Group = 3,
        Cluster = 4,
        TransactionalId = 5,
        DelegationToken = 6,
        User = 7,
    }
);

wire_enum!(
    /// Kafka's PatternType: LITERAL and PREFIXED in bindings, ANY and MATCH in filters too.
    PatternType {
        Unknown = 0,
        Any = 1,
        Match = 2,
        Literal = 3,
        Prefixed = 4,
    }
);

wire_enum!(
    /// Kafka's AclOperation.
    Operation {
        Unknown = 0,
        Any = 1,
        All = 2,
        Read = 3,
        Write = 4,
        Create = 5,
        Delete = 6,
        Alter = 7,
        Describe = 8,
        ClusterAction = 9,
        DescribeConfigs = 10,
        AlterConfigs = 11,
        IdempotentWrite = 12,
        CreateTokens = 13,
        DescribeTokens = 14,
    }
);

wire_enum!(
    /// Kafka's AclPermissionType.
    Permission {
        Unknown = 0,
        Any = 1,
        Deny = 2,
        Allow = 3,
    }
);

/// One ACL. The field order is the sort order [`Acls`] relies on: resource type, pattern
/// type and name first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub pattern_type: PatternType,
    pub resource_name: String,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

fn check_field(what: &str, value: &str) -> Result<(), AclError> {
    if value.is_empty() || value.len() > ACL_FIELD_BYTES_MAX {
        return Err(AclError(format!(
            "the {what} must be 1 to {ACL_FIELD_BYTES_MAX} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(AclError(format!(
            "the {what} may not hold control characters"
        )));
    }
    Ok(())
}

/// A principal is `Type:name` with both parts non-empty (Kafka's parse).
fn check_principal(principal: &str) -> Result<(), AclError> {
    check_field("principal", principal)?;
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(AclError(format!(
            "principal '{principal}' is not of the form User:<name>"
        ))),
    }
}

impl AclBinding {
    /// Whether the binding may be stored: concrete values only (no ANY, MATCH or UNKNOWN),
    /// a served resource type, the CLUSTER resource named `kafka-cluster`, bounded fields.
    pub fn validate(&self) -> Result<(), AclError> {
        use ResourceType as R;
        if !matches!(
            self.resource_type,
            R::Topic | R::Group | R::Cluster | R::TransactionalId
        ) {
            return Err(AclError(format!(
                "resource type {:?} cannot hold ACLs here",
                self.resource_type
            )));
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(AclError(format!(
                "pattern type {:?} is not LITERAL or PREFIXED",
                self.pattern_type
            )));
        }
        if matches!(self.operation, Operation::Unknown | Operation::Any) {
            return Err(AclError(format!("invalid operation {:?}", self.operation)));
        }
        if !matches!(self.permission, Permission::Allow | Permission::Deny) {
            return Err(AclError(format!(
                "invalid permission type {:?}",
                self.permission
            )));
        }
        check_field("resource name", &self.resource_name)?;
        if self.resource_type == R::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(AclError(format!(
                "the only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            )));
        }
        check_principal(&self.principal)?;
        check_field("host", &self.host)
    }
}

/// The filter of DescribeAcls and DeleteAcls: `None` and the ANY values match everything;
/// pattern MATCH selects the bindings that would apply to the named resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// A filter with an UNKNOWN value matches nothing Kafka can name: refused.
    pub fn validate(&self) -> Result<(), AclError> {
        let unknown = self.resource_type == ResourceType::Unknown
            || self.pattern_type == PatternType::Unknown
            || self.operation == Operation::Unknown
            || self.permission == Permission::Unknown;
        if unknown {
            return Err(AclError("the filter holds an UNKNOWN value".into()));
        }
        Ok(())
    }

    /// Whether `b` passes the filter (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, b: &AclBinding) -> bool {
        self.matches_pattern(b)
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == Operation::Any || self.operation == b.operation)
            && (self.permission == Permission::Any || self.permission == b.permission)
    }

    fn matches_pattern(&self, b: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != b.resource_type {
            return false;
        }
        let pattern = self.pattern_type;
        if !matches!(pattern, PatternType::Any | PatternType::Match) && pattern != b.pattern_type {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if pattern != PatternType::Match {
            return *name == b.resource_name;
        }
        match b.pattern_type {
            PatternType::Literal => *name == b.resource_name || b.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&b.resource_name),
            _ => false,
        }
    }
}

/// What a request asks to do: who, from where, which operation on which resource.
#[derive(Clone, Copy, Debug)]
pub struct Action<'a> {
    pub principal: &'a str,
    pub host: &'a str,
    pub operation: Operation,
    pub resource_type: ResourceType,
    pub resource_name: &'a str,
}

/// The operations an ALLOW of `op` grants besides `op` itself (Kafka's implied operations).
fn implied_by(op: Operation) -> &'static [Operation] {
    use Operation as O;
    match op {
        O::Describe => &[O::Read, O::Write, O::Delete, O::Alter],
        O::DescribeConfigs => &[O::AlterConfigs],
        _ => &[],
    }
}

/// The cluster's ACL bindings (a set: creating one twice stores it once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acls {
    bindings: BTreeSet<AclBinding>,
}

impl Acls {
    pub fn len(&self) -> usize {
        self.bindings.len()
    }
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.bindings.iter()
    }
    pub fn contains(&self, b: &AclBinding) -> bool {
        self.bindings.contains(b)
    }
    /// Add `b`; `false` if it was there already.
    pub fn insert(&mut self, b: AclBinding) -> bool {
        self.bindings.insert(b)
    }
    /// Remove `b`; `false` if it was not there.
    pub fn remove(&mut self, b: &AclBinding) -> bool {
        self.bindings.remove(b)
    }
    /// The bindings that pass `filter`, in the set's order.
    pub fn matching<'a>(&'a self, filter: &'a AclFilter) -> impl Iterator<Item = &'a AclBinding> {
        self.bindings.iter().filter(move |b| filter.matches(b))
    }

    /// The bindings stored for exactly this resource pattern.
    fn of_pattern<'a>(
        &'a self,
        resource_type: ResourceType,
        pattern_type: PatternType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> {
        let low = AclBinding {
            resource_type,
            pattern_type,
            resource_name: name.to_owned(),
            principal: String::new(),
            host: String::new(),
            operation: Operation::Unknown,
            permission: Permission::Unknown,
        };
        self.bindings
            .range((Bound::Included(low), Bound::Unbounded))
            .take_while(move |b| {
                b.resource_type == resource_type
                    && b.pattern_type == pattern_type
                    && b.resource_name == name
            })
    }

    /// Every binding whose pattern covers the resource of `action`: the literal name, the
    /// literal `*`, and every prefix of the name (at character boundaries).
    fn applying<'a>(&'a self, action: &Action<'a>) -> impl Iterator<Item = &'a AclBinding> {
        let (t, name) = (action.resource_type, action.resource_name);
        let literal = self.of_pattern(t, PatternType::Literal, name);
        let wildcard = (name != WILDCARD)
            .then(|| self.of_pattern(t, PatternType::Literal, WILDCARD))
            .into_iter()
            .flatten();
        let prefixes = name
            .char_indices()
            .map(|(i, c)| i + c.len_utf8())
            .flat_map(move |end| self.of_pattern(t, PatternType::Prefixed, &name[..end]));
        literal.chain(wildcard).chain(prefixes)
    }

    /// Whether the bindings allow `action` (DENY first, then ALLOW, else denied).
    pub fn authorize(&self, action: &Action<'_>) -> bool {
        let mut allowed = false;
        for b in self.applying(action) {
            let principal = b.principal == action.principal || b.principal == WILDCARD_PRINCIPAL;
            let host = b.host == action.host || b.host == WILDCARD;
            if !principal || !host {
                continue;
            }
            let exact = b.operation == action.operation || b.operation == Operation::All;
            match b.permission {
                Permission::Deny if exact => return false,
                Permission::Allow
                    if exact || implied_by(action.operation).contains(&b.operation) =>
                {
                    allowed = true
                }
                _ => {}
            }
        }
        allowed
    }

    /// Whether `principal` from `host` may do `operation` on some resource of
    /// `resource_type` (Kafka's `authorizeByResourceType`, used by InitProducerId without a
    /// transactional id: WRITE on any topic will do). Allowed when an ALLOW for the
    /// operation (or ALL) applies to the principal on any pattern, unless a DENY on the
    /// literal `*` covers every resource of the type.
    pub fn authorize_any(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let applies = |b: &AclBinding| {
            b.resource_type == resource_type
                && (b.principal == principal || b.principal == WILDCARD_PRINCIPAL)
                && (b.host == host || b.host == WILDCARD)
                && (b.operation == operation || b.operation == Operation::All)
        };
        let denied_everywhere = self
            .of_pattern(resource_type, PatternType::Literal, WILDCARD)
            .any(|b| applies(b) && b.permission == Permission::Deny);
        !denied_everywhere
            && self
                .bindings
                .iter()
                .any(|b| applies(b) && b.permission == Permission::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation as O;

    fn binding(
        resource_type: ResourceType,
        pattern_type: PatternType,
        name: &str,
        principal: &str,
        host: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            pattern_type,
            resource_name: name.into(),
            principal: principal.into(),
            host: host.into(),
            operation,
            permission,
        }
    }

    fn topic(
        pattern: PatternType,
        name: &str,
        principal: &str,
        op: O,
        p: Permission,
    ) -> AclBinding {
        binding(ResourceType::Topic, pattern, name, principal, "*", op, p)
    }

    fn may(acls: &Acls, principal: &str, host: &str, op: O, t: ResourceType, name: &str) -> bool {
        acls.authorize(&Action {
            principal,
            host,
            operation: op,
            resource_type: t,
            resource_name: name,
        })
    }

    fn on_topic(acls: &Acls, principal: &str, op: O, name: &str) -> bool {
        may(acls, principal, "10.0.0.1", op, ResourceType::Topic, name)
    }

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(ResourceType::Topic.code(), 2);
        assert_eq!(
            ResourceType::from_code(5),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(O::IdempotentWrite.code(), 12);
        assert_eq!(O::from_code(15), None);
        assert_eq!(Permission::from_code(3), Some(Permission::Allow));
        assert_eq!(Permission::from_code(-1), None);
    }

    #[test]
    fn no_acl_means_no_access() {
        let acls = Acls::default();
        assert!(!on_topic(&acls, "User:alice", O::Read, "orders"));
    }

    #[test]
    fn literal_prefixed_and_wildcard_patterns() {
        use PatternType::*;
        let mut acls = Acls::default();
        acls.insert(topic(
            Literal,
            "orders",
            "User:alice",
            O::Read,
            Permission::Allow,
        ));
        acls.insert(topic(
            Prefixed,
            "pay",
            "User:bob",
            O::Write,
            Permission::Allow,
        ));
        acls.insert(topic(
            Literal,
            "*",
            "User:carol",
            O::Read,
            Permission::Allow,
        ));
        assert!(on_topic(&acls, "User:alice", O::Read, "orders"));
        assert!(
            !on_topic(&acls, "User:alice", O::Read, "orders2"),
            "literal is exact"
        );
        assert!(
            !on_topic(&acls, "User:alice", O::Write, "orders"),
            "other operation"
        );
        assert!(
            !on_topic(&acls, "User:bob", O::Read, "orders"),
            "other principal"
        );
        assert!(on_topic(&acls, "User:bob", O::Write, "payments"));
        assert!(on_topic(&acls, "User:bob", O::Write, "pay"));
        assert!(
            !on_topic(&acls, "User:bob", O::Write, "pa"),
            "shorter than the prefix"
        );
        assert!(!on_topic(&acls, "User:bob", O::Write, "xpay"));
        assert!(on_topic(&acls, "User:carol", O::Read, "anything"));
        assert!(on_topic(&acls, "User:carol", O::Read, "*"));
        let group = may(&acls, "User:carol", "h", O::Read, ResourceType::Group, "g");
        assert!(!group, "a topic wildcard is not a group wildcard");
    }

    #[test]
    fn deny_beats_allow_and_wildcard_principal() {
        use PatternType::*;
        let mut acls = Acls::default();
        acls.insert(topic(Literal, "*", "User:*", O::All, Permission::Allow));
        acls.insert(topic(
            Prefixed,
            "secret",
            "User:alice",
            O::Read,
            Permission::Deny,
        ));
        assert!(on_topic(&acls, "User:alice", O::Read, "orders"));
        assert!(on_topic(&acls, "User:dave", O::Write, "secret-plans"));
        assert!(!on_topic(&acls, "User:alice", O::Read, "secret-plans"));
        assert!(
            on_topic(&acls, "User:alice", O::Write, "secret-plans"),
            "deny is per op"
        );
        acls.insert(topic(Literal, "orders", "User:*", O::All, Permission::Deny));
        assert!(!on_topic(&acls, "User:alice", O::Write, "orders"));
        assert!(!on_topic(&acls, "User:dave", O::Describe, "orders"));
    }

    #[test]
    fn host_must_match_unless_wildcard() {
        use PatternType::Literal;
        let mut acls = Acls::default();
        let mut b = topic(Literal, "t", "User:a", O::Read, Permission::Allow);
        b.host = "10.0.0.1".into();
        acls.insert(b);
        let from = |acls: &Acls, host| may(acls, "User:a", host, O::Read, ResourceType::Topic, "t");
        assert!(from(&acls, "10.0.0.1"));
        assert!(!from(&acls, "10.0.0.2"));
        let mut deny = topic(Literal, "t", "User:a", O::Read, Permission::Deny);
        deny.host = "10.0.0.9".into();
        acls.insert(deny);
        assert!(from(&acls, "10.0.0.1"));
        assert!(!from(&acls, "10.0.0.9"));
    }

    #[test]
    fn implied_operations() {
        use PatternType::*;
        let mut acls = Acls::default();
        acls.insert(topic(Literal, "t", "User:a", O::Write, Permission::Allow));
        acls.insert(topic(
            Literal,
            "t",
            "User:b",
            O::AlterConfigs,
            Permission::Allow,
        ));
        assert!(
            on_topic(&acls, "User:a", O::Describe, "t"),
            "WRITE implies DESCRIBE"
        );
        assert!(!on_topic(&acls, "User:a", O::Read, "t"));
        assert!(on_topic(&acls, "User:b", O::DescribeConfigs, "t"));
        assert!(!on_topic(&acls, "User:b", O::Describe, "t"));
        acls.insert(topic(Literal, "t", "User:a", O::Describe, Permission::Deny));
        assert!(
            !on_topic(&acls, "User:a", O::Describe, "t"),
            "an explicit DENY wins"
        );
    }

    #[test]
    fn authorize_any_topic_for_idempotent_producers() {
        use PatternType::*;
        let mut acls = Acls::default();
        let (a, h) = ("User:a", "h");
        assert!(!acls.authorize_any(a, h, O::Write, ResourceType::Topic));
        acls.insert(topic(Prefixed, "p", a, O::Write, Permission::Allow));
        assert!(acls.authorize_any(a, h, O::Write, ResourceType::Topic));
        assert!(!acls.authorize_any("User:b", h, O::Write, ResourceType::Topic));
        acls.insert(topic(Literal, "*", a, O::Write, Permission::Deny));
        assert!(!acls.authorize_any(a, h, O::Write, ResourceType::Topic));
    }

    #[test]
    fn filters_any_match_and_exact() {
        use PatternType::*;
        let mut acls = Acls::default();
        let bindings = [
            topic(Literal, "orders", "User:a", O::Read, Permission::Allow),
            topic(Literal, "*", "User:a", O::Read, Permission::Allow),
            topic(Prefixed, "ord", "User:b", O::Write, Permission::Deny),
            binding(
                ResourceType::Group,
                Literal,
                "orders",
                "User:a",
                "*",
                O::Read,
                Permission::Allow,
            ),
        ];
        for b in &bindings {
            acls.insert(b.clone());
        }
        let filter = |t, name: Option<&str>, pattern| AclFilter {
            resource_type: t,
            resource_name: name.map(str::to_owned),
            pattern_type: pattern,
            principal: None,
            host: None,
            operation: O::Any,
            permission: Permission::Any,
        };
        let count = |f: &AclFilter| acls.matching(f).count();
        assert_eq!(count(&filter(ResourceType::Any, None, Any)), 4);
        assert_eq!(count(&filter(ResourceType::Topic, None, Any)), 3);
        assert_eq!(count(&filter(ResourceType::Any, Some("orders"), Any)), 2);
        assert_eq!(
            count(&filter(ResourceType::Topic, Some("orders"), Match)),
            3
        );
        assert_eq!(
            count(&filter(ResourceType::Topic, Some("ord"), Prefixed)),
            1
        );
        assert_eq!(
            count(&filter(ResourceType::Topic, Some("orders"), Prefixed)),
            0
        );
        let mut by_principal = filter(ResourceType::Any, None, Any);
        by_principal.principal = Some("User:b".into());
        assert_eq!(count(&by_principal), 1);
        by_principal.permission = Permission::Allow;
        assert_eq!(count(&by_principal), 0);
        assert!(filter(ResourceType::Unknown, None, Any).validate().is_err());
        assert!(filter(ResourceType::Any, None, Match).validate().is_ok());
    }

    #[test]
    fn only_concrete_bindings_validate() {
        let good = topic(
            PatternType::Literal,
            "t",
            "User:a",
            O::Read,
            Permission::Allow,
        );
        assert!(good.validate().is_ok());
        let bad = |f: fn(&mut AclBinding)| {
            let mut b = good.clone();
            f(&mut b);
            b.validate().is_err()
        };
        assert!(bad(|b| b.resource_type = ResourceType::Any));
        assert!(bad(|b| b.pattern_type = PatternType::Match));
        assert!(bad(|b| b.operation = O::Any));
        assert!(bad(|b| b.permission = Permission::Any));
        assert!(bad(|b| b.resource_name.clear()));
        assert!(bad(|b| b.principal = "alice".into()));
        assert!(bad(|b| b.principal = "User:".into()));
        assert!(bad(|b| b.host = "x".repeat(ACL_FIELD_BYTES_MAX + 1)));
        assert!(bad(|b| b.resource_type = ResourceType::Cluster));
        let mut cluster = good.clone();
        cluster.resource_type = ResourceType::Cluster;
        cluster.resource_name = CLUSTER_NAME.into();
        assert!(cluster.validate().is_ok());
    }
}

//! The `aws` object's members beyond operation, region, request id and table, typed: what a
//! fact or a renderer reads (the named resource, the retries, a call's tables) is a field, and
//! the operation's other whitelisted parameters are written as they were recorded, never read
//! back by name.

use std::fmt;

use serde_json::Value as Json;

/// The resource an SQS, SNS, S3 or Lambda call names in its request (DynamoDB's table is the
/// span's `aws.table.name` attribute).
// Named only by the `aws` module's interceptor (feature `aws-sdk`).
#[cfg_attr(not(feature = "aws-sdk"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NamedResource {
    /// `queue_url`.
    Queue(String),
    /// `topic_arn`.
    Topic(String),
    /// `bucket_name`.
    Bucket(String),
    /// `function_name`.
    Function(String),
}

impl NamedResource {
    /// Its member of the `aws` object, as the X-Ray SDKs name it.
    pub(crate) fn member(&self) -> &'static str {
        match self {
            NamedResource::Queue(_) => "queue_url",
            NamedResource::Topic(_) => "topic_arn",
            NamedResource::Bucket(_) => "bucket_name",
            NamedResource::Function(_) => "function_name",
        }
    }

    /// What the request names it by.
    pub(crate) fn value(&self) -> &str {
        match self {
            NamedResource::Queue(s)
            | NamedResource::Topic(s)
            | NamedResource::Bucket(s)
            | NamedResource::Function(s) => s,
        }
    }
}

/// An operation's whitelisted parameters (`snake_case`, as the X-Ray SDKs write them), each
/// name once, in the order first recorded.
// Public (and hidden) only because `__private::AwsRecorded` holds one.
#[doc(hidden)]
#[cfg_attr(not(feature = "aws-sdk"), allow(unreachable_pub))]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(Vec<(&'static str, Json)>);

impl Params {
    /// Records `value` under `name`; a name given again keeps its place and takes the later
    /// value.
    pub(crate) fn put(&mut self, name: &'static str, value: Json) {
        match self.0.iter_mut().find(|(held, _)| *held == name) {
            Some(held) => held.1 = value,
            None => self.0.push((name, value)),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, &Json)> {
        self.0.iter().map(|(name, value)| (*name, value))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for Params {
    type Item = (&'static str, Json);
    type IntoIter = std::vec::IntoIter<(&'static str, Json)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The `aws` members an AWS call records beyond operation, region, request id and table.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AwsMembers {
    /// The attempts after the first (`retries`); set when the call ends.
    pub(crate) retries: Option<u32>,
    /// The resource the request names.
    pub(crate) resource: Option<NamedResource>,
    /// The tables of a call on several (`table_names`; a call on one has `table_name`).
    pub(crate) table_names: Vec<String>,
    /// The operation's other parameters.
    pub(crate) params: Params,
}

/// One member's value, borrowed, for a renderer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MemberValue<'a> {
    Text(&'a str),
    Count(u32),
    Names(&'a [String]),
    Json(&'a Json),
}

impl MemberValue<'_> {
    /// The value as JSON (for the renderers that build a JSON tree).
    pub(crate) fn to_json(self) -> Json {
        match self {
            MemberValue::Text(s) => Json::from(s),
            MemberValue::Count(n) => Json::from(n),
            MemberValue::Names(names) => Json::from(names),
            MemberValue::Json(value) => value.clone(),
        }
    }
}

impl fmt::Display for MemberValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberValue::Count(n) => write!(f, "{n}"),
            MemberValue::Json(value) => write!(f, "{value}"),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

impl AwsMembers {
    pub(crate) fn is_empty(&self) -> bool {
        self.retries.is_none()
            && self.resource.is_none()
            && self.table_names.is_empty()
            && self.params.is_empty()
    }

    /// Every member with its name in the `aws` object: the resource, the tables, the
    /// parameters, the retries.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, MemberValue<'_>)> {
        let resource = self
            .resource
            .as_ref()
            .map(|r| (r.member(), MemberValue::Text(r.value())));
        let tables = (!self.table_names.is_empty())
            .then(|| ("table_names", MemberValue::Names(&self.table_names)));
        let params = self
            .params
            .iter()
            .map(|(name, value)| (name, MemberValue::Json(value)));
        let retries = self.retries.map(|n| ("retries", MemberValue::Count(n)));
        resource
            .into_iter()
            .chain(tables)
            .chain(params)
            .chain(retries)
    }

    /// Adds what `other` holds; what both hold takes `other`'s.
    pub(crate) fn merge(&mut self, other: AwsMembers) {
        if other.retries.is_some() {
            self.retries = other.retries;
        }
        if other.resource.is_some() {
            self.resource = other.resource;
        }
        if !other.table_names.is_empty() {
            self.table_names = other.table_names;
        }
        for (name, value) in other.params {
            self.params.put(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_once_under_its_sdk_name() {
        let mut members = AwsMembers {
            retries: Some(2),
            resource: Some(NamedResource::Queue("https://q".into())),
            table_names: vec!["A".into(), "B".into()],
            ..AwsMembers::default()
        };
        members.params.put("limit", Json::from(5));
        members.params.put("limit", Json::from(7));
        let rendered: Vec<(&str, Json)> = members.iter().map(|(k, v)| (k, v.to_json())).collect();
        assert_eq!(
            rendered,
            [
                ("queue_url", Json::from("https://q")),
                ("table_names", serde_json::json!(["A", "B"])),
                ("limit", Json::from(7)),
                ("retries", Json::from(2)),
            ]
        );
        assert!(!members.is_empty());
        assert!(AwsMembers::default().is_empty());
    }

    #[test]
    fn a_later_merge_wins_per_member() {
        let mut held = AwsMembers {
            resource: Some(NamedResource::Bucket("a".into())),
            ..AwsMembers::default()
        };
        held.params.put("id_2", Json::from("x"));
        let mut later = AwsMembers {
            retries: Some(0),
            ..AwsMembers::default()
        };
        later.params.put("id_2", Json::from("y"));
        held.merge(later);
        assert_eq!(held.resource, Some(NamedResource::Bucket("a".into())));
        assert_eq!(held.retries, Some(0));
        assert_eq!(
            held.params.iter().collect::<Vec<_>>(),
            [("id_2", &Json::from("y"))]
        );
    }
}

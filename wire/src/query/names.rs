//! Serialized names on the query protocols' input, as botocore's serializers form them.

use crate::model::{Resolved, ShapeType};

/// Which query dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// EC2: `queryName`, else `locationName` capitalized; lists always `Name.N`.
    Ec2,
    /// awsQuery: `locationName`; lists `Name.member.N` unless flattened.
    Query,
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Flavor {
    /// The name of a reference, `default` when it has none.
    pub fn name_of(self, r: &Resolved<'_>, default: &str) -> String {
        match self {
            Self::Ec2 => {
                if let Some(q) = &r.member.query_name {
                    q.clone()
                } else if let Some(l) = r.location_name() {
                    capitalized(l)
                } else {
                    default.to_string()
                }
            }
            Self::Query => r.location_name().unwrap_or(default).to_string(),
        }
    }

    /// The name of a structure member: for a flattened awsQuery list whose element has
    /// a `locationName`, that name stands in for the member's.
    pub fn member_name(
        self,
        r: &Resolved<'_>,
        element: Option<&Resolved<'_>>,
        name: &str,
    ) -> String {
        if self == Self::Query
            && r.kind() == ShapeType::List
            && r.flattened()
            && let Some(el) = element
            && let Some(n) = el.location_name()
        {
            return n.to_string();
        }
        self.name_of(r, name)
    }

    /// Whether lists and maps may be flattened (EC2 ignores the trait).
    pub fn flattens(self, r: &Resolved<'_>) -> bool {
        self == Self::Query && r.flattened()
    }
}

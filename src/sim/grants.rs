//! Entitlements: what each agent is granted (CONTRACT.md section 2), and wildcard matching.

use serde::{Deserialize, Serialize};

/// One grant: the actions and resources it allows. Patterns use `*` as a wildcard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSpec {
    /// Action patterns, e.g. `s3:GetObject` or `s3:List*`.
    pub actions: Vec<String>,
    /// Resource patterns, e.g. `s3://bucket/*`.
    pub resources: Vec<String>,
}

impl GrantSpec {
    /// True when the grant allows `action` on `resource`.
    pub fn covers(&self, action: &str, resource: &str) -> bool {
        self.actions.iter().any(|p| glob_match(p, action))
            && self.resources.iter().any(|p| glob_match(p, resource))
    }
}

/// A grant held by a simulated agent.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    /// Grant id, unique within the agent.
    pub id: String,
    /// What it allows.
    pub spec: GrantSpec,
}

impl Grant {
    pub(crate) fn new(id: impl Into<String>, actions: &[&str], resources: &[String]) -> Grant {
        Grant {
            id: id.into(),
            spec: GrantSpec {
                actions: actions.iter().map(|s| s.to_string()).collect(),
                resources: resources.to_vec(),
            },
        }
    }
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters (possibly empty).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Grants an agent holds but never exercises in benign traffic. Which ones fit depends on the
/// archetype; the fleet picks one to three of them per agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unused {
    /// Send mail anywhere.
    MailAny,
    /// Full IAM and role assumption.
    IamAdmin,
    /// Move money.
    PaymentsTransfer,
    /// Production secrets.
    ProdSecrets,
    /// The HR database.
    HrRead,
    /// Every table of every database.
    DbAllRead,
    /// Every bucket.
    DataLakeRead,
    /// The finance team's secure bucket.
    FinanceSecure,
    /// Cluster administration.
    K8sAdmin,
    /// Every CRM object.
    CrmAll,
}

impl Unused {
    pub(crate) fn grant(self) -> Grant {
        let r = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self {
            Unused::MailAny => Grant::new("mail-outbound", &["mail:*"], &r(&["mailto:*"])),
            Unused::IamAdmin => {
                Grant::new("iam-admin", &["iam:*", "sts:AssumeRole"], &r(&["iam://*"]))
            }
            Unused::PaymentsTransfer => Grant::new(
                "payments-transfer",
                &["payments:Transfer", "payments:CreatePayee"],
                &r(&["payments://*"]),
            ),
            Unused::ProdSecrets => Grant::new(
                "prod-secrets",
                &["secrets:Get", "secrets:List"],
                &r(&["secrets://prod/*"]),
            ),
            Unused::HrRead => Grant::new("hr-read", &["db:Select"], &r(&["postgres://hr/*"])),
            Unused::DbAllRead => Grant::new(
                "db-read-all",
                &["db:Select", "db:Describe*"],
                &r(&["postgres://*"]),
            ),
            Unused::DataLakeRead => {
                Grant::new("data-lake-read", &["s3:Get*", "s3:List*"], &r(&["s3://*"]))
            }
            Unused::FinanceSecure => Grant::new(
                "finance-secure-read",
                &["s3:GetObject", "s3:ListObjects"],
                &r(&["s3://finance-secure/*"]),
            ),
            Unused::K8sAdmin => Grant::new("k8s-admin", &["k8s:*"], &r(&["k8s://*"])),
            Unused::CrmAll => Grant::new("crm-all", &["crm:*"], &r(&["crm://*"])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(glob_match("s3://bucket/*", "s3://bucket/a/b.json"));
        assert!(glob_match("s3://bucket/*", "s3://bucket/"));
        assert!(!glob_match("s3://bucket/*", "s3://bucket2/a"));
        assert!(glob_match("s3:List*", "s3:ListObjects"));
        assert!(glob_match("*", ""));
        assert!(glob_match(
            "mailto:*@customer.example",
            "mailto:c1@customer.example"
        ));
        assert!(!glob_match(
            "mailto:*@customer.example",
            "mailto:x@evil.example"
        ));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn specs_cover() {
        let g = Unused::DataLakeRead.grant();
        assert!(g.spec.covers(
            "s3:GetObject",
            "s3://billing-raw/2026/01/05/part-0001.json.gz"
        ));
        assert!(!g.spec.covers("s3:PutObject", "s3://billing-raw/x"));
    }
}

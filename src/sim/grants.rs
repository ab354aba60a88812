//! The grants of simulated agents.

pub use crate::grants::{GrantSpec, glob_match};

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
    fn specs_cover() {
        let g = Unused::DataLakeRead.grant();
        assert!(g.spec.covers(
            "s3:GetObject",
            "s3://billing-raw/2026/01/05/part-0001.json.gz"
        ));
        assert!(!g.spec.covers("s3:PutObject", "s3://billing-raw/x"));
    }
}

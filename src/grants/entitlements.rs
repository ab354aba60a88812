//! Entitlements: what each agent is granted (CONTRACT.md section 2), wildcard matching, and the
//! attribution of an access to the grant that authorised it.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Errors reading entitlements.
#[derive(Debug, thiserror::Error)]
pub enum EntitlementsError {
    /// The file could not be read.
    #[error("cannot read entitlements {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The document is neither valid JSON nor valid YAML of the expected shape.
    #[error("invalid entitlements {origin}: {message}")]
    Parse {
        /// Where the document came from (a path, or a topic and agent).
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A grant is malformed.
    #[error("invalid entitlements {origin}: {}", .problems.join("; "))]
    Invalid {
        /// Where the document came from.
        origin: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

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

    /// How specific the grant is for an access it covers: the literal characters of the most
    /// specific action pattern and resource pattern that match. `None` when it does not cover it.
    pub fn specificity(&self, action: &str, resource: &str) -> Option<usize> {
        let best = |pats: &[String], text: &str| {
            pats.iter()
                .filter(|p| glob_match(p, text))
                .map(|p| p.bytes().filter(|b| *b != b'*').count())
                .max()
        };
        Some(best(&self.actions, action)? + best(&self.resources, resource)?)
    }

    /// Whether it allows the access through a resource pattern that names a place (a bucket, a
    /// namespace, a database, a mail domain: something after the scheme besides wildcards and
    /// slashes), not a whole service: the place is territory the grant gives the agent.
    pub fn names_place_for(&self, action: &str, resource: &str) -> bool {
        self.actions.iter().any(|p| glob_match(p, action))
            && self
                .resources
                .iter()
                .any(|p| names_place(p) && glob_match(p, resource))
    }

    /// True when any of its patterns has a wildcard.
    pub fn is_broad(&self) -> bool {
        self.actions
            .iter()
            .chain(&self.resources)
            .any(|p| p.contains('*'))
    }
}

/// Whether a resource pattern names a place rather than a whole service (`s3://raw/*`,
/// `k8s://batch/*`, `mailto:*@customer.example`; not `s3://*` or `k8s://*/*`).
fn names_place(pattern: &str) -> bool {
    let rest = match pattern.split_once("://") {
        Some((_, rest)) => rest,
        None => pattern.split_once(':').map_or(pattern, |(_, rest)| rest),
    };
    rest.bytes().any(|b| !matches!(b, b'*' | b'/'))
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

/// The grants of one agent, ordered by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentGrants {
    grants: Vec<(Box<str>, GrantSpec)>,
}

impl AgentGrants {
    /// The grants, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &GrantSpec)> {
        self.grants.iter().map(|(id, g)| (id.as_ref(), g))
    }

    /// The grant with this id.
    pub fn get(&self, id: &str) -> Option<&GrantSpec> {
        self.grants
            .binary_search_by(|(g, _)| g.as_ref().cmp(id))
            // Not found: the agent holds no grant of that id.
            .ok()
            .map(|i| &self.grants[i].1)
    }

    /// Number of grants.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// True when the agent holds no grant.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// Whether some grant for which `in_use` holds allows the access through a resource
    /// pattern that names a place (see [`GrantSpec::names_place_for`]).
    pub fn names_place_for(
        &self,
        action: &str,
        resource: &str,
        in_use: impl Fn(&str) -> bool,
    ) -> bool {
        self.grants
            .iter()
            .any(|(id, g)| in_use(id) && g.names_place_for(action, resource))
    }

    /// The grant that authorised `action` on `resource`: the event's own `grant` when given,
    /// else the most specific grant that covers the access (ties go to the smaller id).
    pub fn attribute<'a>(
        &'a self,
        stated: Option<&'a str>,
        action: &str,
        resource: &str,
    ) -> Option<&'a str> {
        if let Some(s) = stated {
            return Some(s);
        }
        let mut best: Option<(usize, &str)> = None;
        for (id, g) in &self.grants {
            if let Some(s) = g.specificity(action, resource)
                && best.is_none_or(|(b, _)| s > b)
            {
                best = Some((s, id));
            }
        }
        best.map(|(_, id)| id)
    }
}

/// What every agent is granted. An agent without an entry has unknown entitlements, never none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entitlements {
    agents: FxHashMap<Box<str>, AgentGrants>,
    /// Each resource that some grant names exactly (a pattern without a wildcard, such as a
    /// partner's mail address), with how many grants name it.
    named: FxHashMap<Box<str>, u32>,
}

type Document = BTreeMap<String, BTreeMap<String, GrantSpec>>;

impl Entitlements {
    /// Parses a JSON or YAML document `{"agent": {"grant": {"actions": [...], "resources": [...]}}}`.
    pub fn parse(text: &str, origin: &str) -> Result<Entitlements, EntitlementsError> {
        let doc: Document = parse_doc(text, origin)?;
        let mut problems = Vec::new();
        let mut agents = FxHashMap::default();
        for (agent, grants) in doc {
            match AgentGrants::from_map(grants) {
                Ok(g) => {
                    agents.insert(agent.into_boxed_str(), g);
                }
                Err(p) => problems.extend(p.into_iter().map(|m| format!("{agent}: {m}"))),
            }
        }
        if problems.is_empty() {
            let mut ents = Entitlements {
                agents,
                named: FxHashMap::default(),
            };
            for g in ents.agents.values() {
                count_named(&mut ents.named, g, true);
            }
            Ok(ents)
        } else {
            Err(EntitlementsError::Invalid {
                origin: origin.to_string(),
                problems,
            })
        }
    }

    /// The grants of an agent, when its entitlements are known.
    pub fn agent(&self, agent_id: &str) -> Option<&AgentGrants> {
        self.agents.get(agent_id)
    }

    /// Replaces one agent's grants (`None` forgets the agent: its entitlements become unknown).
    pub fn set_agent(&mut self, agent_id: &str, grants: Option<AgentGrants>) {
        let old = match grants {
            Some(g) => {
                count_named(&mut self.named, &g, true);
                self.agents.insert(agent_id.into(), g)
            }
            None => self.agents.remove(agent_id),
        };
        if let Some(old) = old {
            count_named(&mut self.named, &old, false);
        }
    }

    /// Whether some grant of some agent names `resource` exactly, without a wildcard: the
    /// organisation has sanctioned it by name (a partner's mail address, a supplier's account).
    pub fn names_exactly(&self, resource: &str) -> bool {
        self.named.contains_key(resource)
    }

    /// Number of agents with known entitlements.
    pub fn agents(&self) -> usize {
        self.agents.len()
    }

    /// Number of grants over all agents.
    pub fn grants(&self) -> usize {
        self.agents.values().map(AgentGrants::len).sum()
    }

    /// Every agent id, sorted.
    pub fn agent_ids(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.agents.keys().map(|k| k.as_ref()).collect();
        v.sort_unstable();
        v
    }
}

/// Counts in (`add`) or out each resource that a grant of `grants` names exactly, forgetting
/// those no grant names any more.
fn count_named(named: &mut FxHashMap<Box<str>, u32>, grants: &AgentGrants, add: bool) {
    for (_, g) in grants.iter() {
        for r in g.resources.iter().filter(|r| !r.contains('*')) {
            if add {
                *named.entry(r.as_str().into()).or_default() += 1;
            } else if let Some(n) = named.get_mut(r.as_str()) {
                *n -= 1;
                if *n == 0 {
                    named.remove(r.as_str());
                }
            }
        }
    }
}

impl AgentGrants {
    /// Grants from a map of grant id to spec, each checked.
    pub fn from_map(map: BTreeMap<String, GrantSpec>) -> Result<AgentGrants, Vec<String>> {
        let mut problems = Vec::new();
        for (id, g) in &map {
            if id.is_empty() {
                problems.push("a grant id is empty".to_string());
            }
            if g.actions.is_empty() {
                problems.push(format!("grant {id} has no actions"));
            }
            if g.resources.is_empty() {
                problems.push(format!("grant {id} has no resources"));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(AgentGrants {
            grants: map
                .into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v))
                .collect(),
        })
    }

    /// Parses one agent's grants (the value of a compacted-topic record keyed by agent id).
    pub fn parse(text: &str, origin: &str) -> Result<AgentGrants, EntitlementsError> {
        let map: BTreeMap<String, GrantSpec> = parse_doc(text, origin)?;
        AgentGrants::from_map(map).map_err(|problems| EntitlementsError::Invalid {
            origin: origin.to_string(),
            problems,
        })
    }
}

fn parse_doc<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, EntitlementsError> {
    let trimmed = text.trim_start();
    let res = if trimmed.starts_with('{') {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    };
    res.map_err(|message| EntitlementsError::Parse {
        origin: origin.to_string(),
        message,
    })
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
    fn a_resource_is_named_exactly_while_some_grant_names_it_without_a_wildcard() {
        let mut ents = Entitlements::parse(
            r#"{"a": {"mail": {"actions": ["mail:Send"], "resources": ["mailto:x@p.example", "mailto:*@c.example"]}},
                "b": {"mail": {"actions": ["mail:Send"], "resources": ["mailto:x@p.example"]}}}"#,
            "test",
        )
        .expect("valid");
        assert!(ents.names_exactly("mailto:x@p.example"));
        assert!(!ents.names_exactly("mailto:y@p.example"));
        assert!(!ents.names_exactly("mailto:*@c.example"));
        assert!(!ents.names_exactly("mailto:y@c.example"));
        // Two grants name it: it stays named until neither does.
        ents.set_agent("a", None);
        assert!(ents.names_exactly("mailto:x@p.example"));
        let replaced = AgentGrants::parse(
            r#"{"mail": {"actions": ["mail:Send"], "resources": ["mailto:*"]}}"#,
            "test",
        )
        .expect("valid");
        ents.set_agent("b", Some(replaced));
        assert!(!ents.names_exactly("mailto:x@p.example"));
    }

    const DOC: &str = r#"{"etl-1": {
        "lake": {"actions": ["s3:Get*", "s3:List*"], "resources": ["s3://*"]},
        "raw": {"actions": ["s3:GetObject"], "resources": ["s3://raw/*"]}}}"#;

    #[test]
    fn attribution_prefers_the_stated_then_the_most_specific_grant() {
        let e = Entitlements::parse(DOC, "test").unwrap();
        let a = e.agent("etl-1").unwrap();
        assert_eq!(a.attribute(None, "s3:GetObject", "s3://raw/x"), Some("raw"));
        assert_eq!(
            a.attribute(None, "s3:GetObject", "s3://other/x"),
            Some("lake")
        );
        assert_eq!(a.attribute(None, "s3:PutObject", "s3://raw/x"), None);
        assert_eq!(
            a.attribute(Some("lake"), "s3:GetObject", "s3://raw/x"),
            Some("lake")
        );
        assert!(e.agent("nobody").is_none());
    }

    #[test]
    fn yaml_and_json_read_alike() {
        let yaml = "etl-1:\n  lake:\n    actions: ['s3:Get*', 's3:List*']\n    resources: ['s3://*']\n  raw:\n    actions: [s3:GetObject]\n    resources: ['s3://raw/*']\n";
        assert_eq!(
            Entitlements::parse(yaml, "y").unwrap(),
            Entitlements::parse(DOC, "j").unwrap()
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let err = Entitlements::parse(
            r#"{"a": {"g": {"actions": [], "resources": ["x"]}, "h": {"actions": ["y"], "resources": []}}}"#,
            "bad.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("bad.json") && err.contains("grant g has no actions"),
            "{err}"
        );
        assert!(err.contains("grant h has no resources"), "{err}");
        let err = Entitlements::parse("{not json", "bad.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.json"), "{err}");
    }
}

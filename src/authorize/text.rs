//! Cedar source text for cinch's policies: string literals, `like` patterns from entitlement
//! globs, and the permit and forbid policies themselves.
//!
//! Every request is `principal: Agent::"<agent_id>"`, `action: Action::"<action>"`,
//! `resource: Resource::"<resource>"`, with the same strings in the context (`context.action`,
//! `context.resource`), because Cedar matches patterns (`like`) against strings, not against an
//! entity's id. `context.now_ms` is "now" in epoch milliseconds (a Cedar `Long`): commands are
//! in force from their `issued_at` to their `expires_at`, so an engine evaluating the exported
//! policies at another time gets the same answer as cinch at that time. (Cedar's `datetime`
//! extension would read better, but it parses its text on every evaluation, which costs more
//! than the rest of a decision; the RFC 3339 times are in the annotations and in comments.)

use std::fmt::Write as _;

use crate::grants::GrantSpec;
use crate::output::time::rfc3339_ms;

/// The entity type of the principal: the agent.
pub(crate) const AGENT_TYPE: &str = "Agent";
/// The entity type of the action.
pub(crate) const ACTION_TYPE: &str = "Action";
/// The entity type of the resource.
pub(crate) const RESOURCE_TYPE: &str = "Resource";

/// `s` as a Cedar string literal, quotes included. Backslashes, quotes and control characters
/// are escaped; everything else is kept as it is (Cedar source is UTF-8).
pub(crate) fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                // A String never fails to take a write.
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An entitlement glob (`*` is any run of characters) as a Cedar `like` pattern, quotes
/// included. Cedar's `like` has the same wildcard and no other special character, so only the
/// string escapes are needed.
pub(crate) fn like_pattern(glob: &str) -> String {
    // A `*` in a Cedar string is a wildcard in `like` unless escaped as `\*`: a glob's stars are
    // all wildcards, so they stay as they are.
    string_literal(glob)
}

/// `Type::"id"`.
pub fn entity(type_name: &str, id: &str) -> String {
    format!("{type_name}::{}", string_literal(id))
}

/// `(context.<attr> like "p1" || context.<attr> like "p2")`.
fn any_like(attr: &str, globs: &[String]) -> String {
    let alts: Vec<String> = globs
        .iter()
        .map(|g| format!("context.{attr} like {}", like_pattern(g)))
        .collect();
    match <[String; 1]>::try_from(alts) {
        Ok([one]) => one,
        Err(alts) => format!("({})", alts.join(" || ")),
    }
}

/// The condition "the access is within this grant's scope", its two halves joined by `join`
/// (`" && "` inline, or with a line break).
pub(crate) fn grant_scope(spec: &GrantSpec, join: &str) -> String {
    format!(
        "{}{join}{}",
        any_like("action", &spec.actions),
        any_like("resource", &spec.resources)
    )
}

/// Annotations, one a line.
fn annotations(out: &mut String, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        // A String never fails to take a write.
        let _ = writeln!(out, "@{k}({})", string_literal(v));
    }
}

/// The id of the permit of one grant. Colons and percent signs in the agent and grant ids are
/// percent-encoded, so that two different (agent, grant) pairs never share an id.
pub(crate) fn permit_id(agent: &str, grant: &str) -> String {
    let enc = |s: &str| s.replace('%', "%25").replace(':', "%3A");
    format!("grant:{}:{}", enc(agent), enc(grant))
}

/// The reason a grant's permit gives.
pub(crate) fn permit_why(agent: &str, grant: &str, spec: &GrantSpec) -> String {
    format!(
        "grant {grant} of agent {agent} allows {} on {}",
        spec.actions.join(", "),
        spec.resources.join(", ")
    )
}

/// The permit of one grant: the agent may do any of its actions on any of its resources.
pub fn permit(agent: &str, grant: &str, spec: &GrantSpec) -> String {
    let why = permit_why(agent, grant, spec);
    let mut out = String::new();
    annotations(
        &mut out,
        &[
            ("id", &permit_id(agent, grant)),
            ("agent", agent),
            ("grant", grant),
            ("why", &why),
        ],
    );
    // A String never fails to take a write.
    let _ = write!(
        out,
        "permit (\n  principal == {},\n  action,\n  resource\n) when {{\n  {}\n}};\n",
        entity(AGENT_TYPE, agent),
        grant_scope(spec, " &&\n  ")
    );
    out
}

/// The id of the policy that lets agents without entitlements act (`--unknown-agents allow`).
pub(crate) const UNKNOWN_AGENTS_ID: &str = "unknown-agents";

/// The reason the permit for agents without entitlements gives.
pub(crate) const UNKNOWN_AGENTS_WHY: &str =
    "the agent has no entitlements, and agents without entitlements are allowed";

/// The permit for agents without entitlements, as cinch holds it: it is only ever evaluated for
/// such agents.
pub(crate) fn unknown_agents_permit() -> String {
    let mut out = String::new();
    annotations(
        &mut out,
        &[("id", UNKNOWN_AGENTS_ID), ("why", UNKNOWN_AGENTS_WHY)],
    );
    out.push_str("permit (principal, action, resource);\n");
    out
}

/// The permit for agents without entitlements as exported: the same, for any agent but those
/// with entitlements (`known`).
pub(crate) fn unknown_agents_permit_export(known: &[&str]) -> String {
    let mut out = unknown_agents_permit();
    out.truncate(out.len() - "permit (principal, action, resource);\n".len());
    if known.is_empty() {
        out.push_str("permit (principal, action, resource);\n");
        return out;
    }
    out.push_str("permit (principal, action, resource)\nunless {\n  principal in [\n");
    for (i, a) in known.iter().enumerate() {
        let sep = if i + 1 < known.len() { "," } else { "" };
        // A String never fails to take a write.
        let _ = writeln!(out, "    {}{sep}", entity(AGENT_TYPE, a));
    }
    out.push_str("  ]\n};\n");
    out
}

/// What a command forbids, beyond its agent and its time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope<'a> {
    /// Everything the agent does (`suspend_agent`).
    Agent,
    /// What it does in one session (`revoke_session`): requests whose `context.session_id` is it.
    Session(&'a str),
    /// What one grant allowed (`revoke_grant`): requests that name the grant in
    /// `context.grant`, and, when the grant's scope is known, any access within it.
    Grant(&'a str, Option<&'a GrantSpec>),
    /// Access to resources of one pattern (`narrow`): a resource pattern of cinch's findings,
    /// its placeholders (`{id}`, `{date}`, ...) standing for any text.
    Pattern(&'a str),
    /// Everything but reading and listing (`require_approval`, `quarantine`): requests whose
    /// `context.verb`, the class of the action's verb, is neither `read` nor `list`.
    Outward,
}

/// A resource pattern of cinch's findings as an entitlement glob: each `{placeholder}` becomes
/// `*`.
pub(crate) fn pattern_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str(&rest[..open]);
                out.push('*');
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// A command turned into a forbid.
#[derive(Clone, Debug)]
pub(crate) struct Forbid<'a> {
    /// The policy id: the command id.
    pub command_id: &'a str,
    /// The finding that caused it (the first of the command's).
    pub finding_id: &'a str,
    /// Every finding that caused it, comma-separated.
    pub finding_ids: &'a str,
    /// The command's action (`suspend_agent`, ...).
    pub action: &'a str,
    /// The agent.
    pub agent: &'a str,
    /// What it forbids.
    pub scope: Scope<'a>,
    /// One sentence.
    pub why: &'a str,
    /// In force from, epoch milliseconds.
    pub from_ms: i64,
    /// In force until (exclusive), epoch milliseconds.
    pub until_ms: i64,
    /// Whether the request needs an approval rather than being denied outright.
    pub requires_approval: bool,
    /// Whether the command is a dry run (logged, never enforced).
    pub dry_run: bool,
}

/// The decision a forbid stands for, as its `@effect` annotation says.
pub(crate) const EFFECT_DENY: &str = "deny";
/// The `@effect` of a forbid that asks for an approval.
pub(crate) const EFFECT_APPROVAL: &str = "requires_approval";

/// The forbid of one command.
pub(crate) fn forbid(f: &Forbid<'_>) -> String {
    let from = rfc3339_ms(f.from_ms);
    let until = rfc3339_ms(f.until_ms);
    let dry = if f.dry_run { "true" } else { "false" };
    let effect = if f.requires_approval {
        EFFECT_APPROVAL
    } else {
        EFFECT_DENY
    };
    let mut out = String::new();
    annotations(
        &mut out,
        &[
            ("id", f.command_id),
            ("command_id", f.command_id),
            ("finding_id", f.finding_id),
            ("finding_ids", f.finding_ids),
            ("command", f.action),
            ("why", f.why),
            ("effect", effect),
            ("dry_run", dry),
            ("issued_at", &from),
            ("expires_at", &until),
        ],
    );
    // Conditions, each with an optional comment at the end of its line.
    let mut when: Vec<(String, Option<&str>)> = vec![
        (format!("context.now_ms >= {}", f.from_ms), Some(&from)),
        (format!("context.now_ms < {}", f.until_ms), Some(&until)),
    ];
    match &f.scope {
        Scope::Agent => {}
        Scope::Session(s) => {
            when.push(("context has session_id".to_owned(), None));
            when.push((format!("context.session_id == {}", string_literal(s)), None));
        }
        Scope::Grant(g, spec) => {
            let named = format!(
                "(context has grant && context.grant == {})",
                string_literal(g)
            );
            when.push((
                match spec {
                    Some(spec) => format!("({named} || ({}))", grant_scope(spec, " && ")),
                    None => named,
                },
                None,
            ));
        }
        Scope::Pattern(p) => {
            when.push((
                format!("context.resource like {}", like_pattern(&pattern_glob(p))),
                None,
            ));
        }
        Scope::Outward => {
            when.push((
                "!(context.verb == \"read\" || context.verb == \"list\")".to_owned(),
                None,
            ));
        }
    }
    // A String never fails to take a write.
    let _ = write!(
        out,
        "forbid (\n  principal == {},\n  action,\n  resource\n) when {{\n",
        entity(AGENT_TYPE, f.agent)
    );
    let last = when.len() - 1;
    for (i, (cond, comment)) in when.iter().enumerate() {
        let and = if i < last { " &&" } else { "" };
        // A String never fails to take a write.
        let _ = match comment {
            Some(c) => writeln!(out, "  {cond}{and} // {c}"),
            None => writeln!(out, "  {cond}{and}"),
        };
    }
    out.push_str("};\n");
    out
}

/// `text` with every line commented out: a dry-run policy shown but never enforced.
pub(crate) fn commented(text: &str) -> String {
    text.lines().map(|l| format!("// {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_what_cedar_needs() {
        assert_eq!(string_literal("plain"), "\"plain\"");
        assert_eq!(string_literal(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(string_literal("l1\nl2\t\u{1}"), r#""l1\nl2\t\u{1}""#);
        assert_eq!(string_literal("é*"), "\"é*\"");
        assert_eq!(entity("Agent", "a\"b"), r#"Agent::"a\"b""#);
    }

    #[test]
    fn permit_ids_do_not_collide() {
        assert_ne!(permit_id("a:b", "c"), permit_id("a", "b:c"));
        assert_ne!(permit_id("a%3Ab", "c"), permit_id("a:b", "c"));
        assert_eq!(permit_id("etl-1", "lake"), "grant:etl-1:lake");
    }

    #[test]
    fn forbid_text_names_its_command_and_time() {
        let text = forbid(&Forbid {
            command_id: "cmd-1",
            finding_id: "fnd-1",
            finding_ids: "fnd-1",
            action: "revoke_session",
            agent: "a",
            scope: Scope::Session("s-1"),
            why: "because",
            from_ms: 0,
            until_ms: 1000,
            requires_approval: false,
            dry_run: false,
        });
        assert!(
            text.starts_with("@id(\"cmd-1\")\n@command_id(\"cmd-1\")\n"),
            "{text}"
        );
        assert!(text.contains("  context.now_ms >= 0 && // 1970-01-01T00:00:00.000Z\n"));
        assert!(text.contains("  context.now_ms < 1000 && // 1970-01-01T00:00:01.000Z\n"));
        assert!(text.contains("context.session_id == \"s-1\""));
        assert!(text.contains("@effect(\"deny\")"));
    }
}

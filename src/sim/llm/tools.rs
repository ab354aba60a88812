//! The tools of each role, a tool call as the agent made it (arguments and result), and a small
//! JSON writer whose key order is the order written (so output never depends on map order).

use super::world::Role;

/// Where the destination of an outward call came from (benign calls only; for the manifest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dest {
    /// The user's request names it.
    Request,
    /// The user names someone they deal with (a colleague, a payee) and the agent looks up the
    /// address or account in a tool result (address book, past transactions, a mail thread).
    Contact,
    /// Only data the user pointed to holds it: a bill to pay, an enquiry to answer.
    Data,
}

/// One tool call of a session.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    /// Tool name (`gen_ai.tool.name`).
    pub tool: &'static str,
    /// Arguments, a JSON object.
    pub args: String,
    /// What the tool returned.
    pub result: String,
    /// The tool failed (span status error).
    pub error: bool,
    /// The agent made the call because of injected instructions.
    pub attack: bool,
    /// For a benign outward call, where its destination came from.
    pub dest: Option<Dest>,
}

impl Call {
    /// A call that succeeded.
    pub(crate) fn new(tool: &'static str, args: V, result: impl Into<String>) -> Call {
        Call {
            tool,
            args: args.to_json(),
            result: result.into(),
            error: false,
            attack: false,
            dest: None,
        }
    }

    /// The same call, outward to a destination found in `dest`.
    pub(crate) fn to(mut self, dest: Dest) -> Call {
        self.dest = Some(dest);
        self
    }

    /// The same call, failed with `message` as its result.
    pub(crate) fn failed(mut self, message: &str) -> Call {
        self.error = true;
        self.result = message.to_string();
        self
    }
}

/// The tools an agent of a role uses in its ordinary work.
pub(crate) fn tools(role: Role) -> &'static [&'static str] {
    match role {
        Role::Banking => &[
            "get_balance",
            "get_transactions",
            "get_scheduled_transactions",
            "send_money",
            "schedule_transaction",
            "update_scheduled_transaction",
            "read_file",
            "get_user_info",
        ],
        Role::Mail => &[
            "get_unread_emails",
            "search_emails",
            "read_email",
            "search_contacts",
            "send_email",
        ],
        Role::Workspace => &[
            "get_channels",
            "read_channel_messages",
            "read_inbox",
            "send_channel_message",
            "send_direct_message",
            "get_users_in_channel",
            "add_user_to_channel",
            "invite_user_to_workspace",
            "get_webpage",
        ],
        Role::Travel => &[
            "get_day_calendar_events",
            "search_calendar_events",
            "create_calendar_event",
            "reschedule_calendar_event",
            "add_calendar_event_participants",
            "search_contacts",
            "search_hotels",
            "get_hotel_reviews",
            "reserve_hotel",
            "send_email",
        ],
        Role::Research => &[
            "list_files",
            "search_files",
            "read_file",
            "create_file",
            "share_file",
            "search_contacts",
            "get_webpage",
            "post_webpage",
        ],
    }
}

/// Tools the role's deployment exposes but its agents never use in ordinary work.
pub(crate) fn privileged(role: Role) -> &'static [&'static str] {
    match role {
        Role::Banking => &["update_password", "update_user_info"],
        Role::Mail => &["delete_email", "create_forwarding_rule"],
        Role::Workspace => &["remove_user_from_workspace"],
        Role::Travel => &["cancel_calendar_event"],
        Role::Research => &["delete_file"],
    }
}

/// A JSON value written in the order given.
#[derive(Clone, Debug)]
pub(crate) enum V {
    /// A string.
    S(String),
    /// A number.
    F(f64),
    /// An integer.
    I(i64),
    /// A boolean.
    B(bool),
    /// An array.
    L(Vec<V>),
    /// An object, keys in order.
    O(Vec<(&'static str, V)>),
}

/// A string value.
pub(crate) fn s(x: impl Into<String>) -> V {
    V::S(x.into())
}

/// An object.
pub(crate) fn o(fields: Vec<(&'static str, V)>) -> V {
    V::O(fields)
}

impl V {
    /// Compact JSON.
    pub(crate) fn to_json(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            V::S(x) => push_str(out, x),
            V::F(x) => {
                if x.fract() == 0.0 && x.abs() < 1e15 {
                    out.push_str(&format!("{}", *x as i64));
                } else {
                    out.push_str(&format!("{:.2}", x));
                }
            }
            V::I(x) => out.push_str(&x.to_string()),
            V::B(x) => out.push_str(if *x { "true" } else { "false" }),
            V::L(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out);
                }
                out.push(']');
            }
            V::O(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    push_str(out, k);
                    out.push_str(": ");
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON string literal.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tool::{Effect, effect_of};

    #[test]
    fn json_is_valid_and_ordered() {
        let v = o(vec![
            ("z", s("a\"b\n")),
            ("a", V::F(12.5)),
            ("n", V::F(1150.0)),
            ("l", V::L(vec![V::I(1), V::B(true)])),
        ]);
        let text = v.to_json();
        assert!(text.starts_with("{\"z\""), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back["z"], "a\"b\n");
        assert_eq!(back["n"], 1150);
    }

    #[test]
    fn privileged_tools_are_never_ordinary() {
        for r in Role::ALL {
            for t in privileged(r) {
                assert!(!tools(r).contains(t), "{t}");
                assert!(effect_of(t) >= Effect::Write, "{t}");
            }
        }
    }
}

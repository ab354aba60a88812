//! Provenance: a call that sends, shares or pays outward to a destination that appeared only in
//! a tool's result earlier in the session (data the agent read), never in the user's request nor
//! in the agent's history. Text in data steering who the agent reaches is the signature of a
//! prompt injection. A destination the user sent the agent to look up (the request asks for
//! the act, nothing instructed the agent, the destination is at an organisation it deals with)
//! is not (see [`super::ToolView::looked_up`]).

use super::Ctx;
use super::Steering;
use super::counterparty::kind_name;

/// The score of an act the user's request did not ask for, on the words of an instructing
/// result (see [`super::ToolView::unasked`]).
const UNASKED: f32 = 0.7;

/// The score.
pub fn score(c: &Ctx<'_>) -> f32 {
    let s = steered(c);
    // An act the user never asked for, in the words of an order the agent read.
    if c.tool.is_some_and(|t| t.unasked) {
        s.max(UNASKED)
    } else {
        s
    }
}

/// The score of where the call's values came from.
fn steered(c: &Ctx<'_>) -> f32 {
    let Some(t) = c.tool else {
        return 0.0;
    };
    let entity_from_data = t.new.is_some_and(|n| n.from_data);
    let s: f32 = match (t.steering, t.effect.is_outward()) {
        (Steering::Instructed, true) => 0.92,
        (Steering::Instructed, false) => 0.7,
        // The agent looked up where to send, as the user asked, among the organisations it
        // deals with.
        _ if t.looked_up() => 0.0,
        (Steering::Data, true) if entity_from_data => 0.7,
        (Steering::Data, true) => 0.45,
        (Steering::None, true) if entity_from_data => 0.6,
        _ => 0.0,
    };
    if t.new.is_some_and(|n| n.campaign) && s > 0.0 {
        s.max(0.95)
    } else {
        s
    }
}

/// The sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    let Some(t) = c.tool else {
        return String::new();
    };
    let what = match t.new {
        Some(n) if n.from_data => format!("a {}", kind_name(n.kind)),
        _ => "values".to_string(),
    };
    let whence = match t.steering {
        Steering::Instructed => {
            "a tool result earlier in the session that addressed the agent with instructions"
        }
        _ => "a tool result earlier in the session",
    };
    let mut s = if t.unasked && steered(c) < UNASKED {
        format!(
            "{} ({}) acts on words of a tool result earlier in the session that addressed the agent with instructions, though the user's request only asked to look something up",
            c.ev.action,
            t.effect.as_str(),
        )
    } else {
        format!(
            "{} ({}) uses {what} that appeared only in {whence}, never in the user's request nor in the agent's own earlier acts",
            c.ev.action,
            t.effect.as_str(),
        )
    };
    if t.new.is_some_and(|n| n.campaign) {
        s.push_str("; other agents first reached it within the last 7 days");
    }
    s
}

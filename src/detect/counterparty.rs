//! Counterparty: a tool call that reaches an account, mail address, host, phone, wallet, channel
//! or handle the agent never dealt with and the user did not name, weighted by the call's effect
//! (a transfer weighs most, a read least). A young agent's first contacts are judged by the
//! fleet: a counterparty other agents deal with is less surprising.

use super::Ctx;
use crate::event::parties::Voucher;
use crate::event::tool::Effect;
use crate::profile::entities::EntityKind;

/// What an event's tool call reaches, against the agent's memory and the fleet.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ToolView {
    /// The call's effect.
    pub effect: Effect,
    /// The call only reads, as the tool's name or the configuration says (a name that says
    /// nothing is taken to read, but is not one).
    pub reads: bool,
    /// The strongest counterparty new to the agent, if any.
    pub new: Option<NewCounterparty>,
    /// Counterparties the agent knows.
    pub known: u32,
    /// Sessions with tool calls the agent had before.
    pub sessions: u32,
    /// Whether the call's argument values came from data the agent read.
    pub steering: Steering,
    /// The call acts (its effect is more than reading) though the user's request only asked to
    /// look something up, and its arguments repeat words of a tool result earlier in the session
    /// that addressed the agent with instructions: an order in data, obeyed.
    pub unasked: bool,
    /// The user's request asks for an outward act of the call's kind (`Send the status to
    /// Yusuf`): a destination the agent then found in data is one the user sent it to find.
    pub asked: bool,
}

/// Where a tool call's argument values came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Steering {
    /// From the user's request or the agent's own history (or nowhere seen).
    #[default]
    None,
    /// From a tool result earlier in the session, never from the user's request.
    Data,
    /// From a tool result that addressed the agent with instructions.
    Instructed,
}

/// A counterparty of a tool call that the agent never dealt with and the user did not name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NewCounterparty {
    /// What it is.
    pub kind: EntityKind,
    /// It appeared in a tool's result earlier in the session (data the agent read), never in
    /// the user's request.
    pub from_data: bool,
    /// Its organisation (a mail or web domain) is one the agent deals with (see
    /// `ToolMemory::learn`) or the user's request names.
    pub org_known: bool,
    /// A tool result vouched for it as a party of the user's: the sender of a message the user
    /// asked the agent to reply to, or the address or account one of the user's records (a
    /// contact, a past payment) gives for a person the request names.
    pub vouched: Option<Voucher>,
    /// Agents of the fleet that dealt with it (as of the last fleet snapshot).
    pub fleet_agents: u32,
    /// Other agents first dealt with it within the last 7 days, and few ever did: a destination
    /// spreading across agents.
    pub campaign: bool,
}

impl NewCounterparty {
    /// Which of two new counterparties matters more.
    pub fn rank(self) -> (bool, bool, bool, bool) {
        (
            self.from_data,
            self.campaign,
            !(self.org_known || self.vouched.is_some()),
            self.fleet_agents == 0,
        )
    }
}

impl ToolView {
    /// The agent looked up where to send, as the user asked: the request asks for an outward
    /// act of the call's kind, the call's values did not come from a result that addressed
    /// the agent with instructions, and its strongest new counterparty, if any, is at an
    /// organisation the agent deals with (or the request names) or vouched for by a result,
    /// and is no campaign.
    pub fn looked_up(&self) -> bool {
        self.asked
            && self.effect.is_outward()
            && self.steering != Steering::Instructed
            && self
                .new
                .is_none_or(|n| (n.org_known || n.vouched.is_some()) && !n.campaign)
    }
}

/// Sessions after which an agent's own counterparties are trusted as its baseline.
const MATURE_SESSIONS: f32 = 5.0;

/// The score.
pub fn score(c: &Ctx<'_>) -> f32 {
    let Some(t) = c.tool else {
        return 0.0;
    };
    let Some(n) = t.new else {
        return 0.0;
    };
    if !t.effect.is_outward() && t.effect != Effect::Execute {
        return 0.0;
    }
    // Own history: how much the agent's past says about who it deals with.
    let own = (t.sessions as f32 / MATURE_SESSIONS).min(1.0);
    // The fleet: a counterparty others deal with is less surprising.
    let fleet = if n.fleet_agents == 0 { 1.0 } else { 0.5 };
    // Found in data the user sent the agent to: the user chose whom, the agent looked up where.
    let looked_up = if t.looked_up() && n.from_data {
        0.5
    } else {
        1.0
    };
    let mut s = t.effect.weight() * (0.45 + 0.3 * own) * fleet * looked_up;
    if n.campaign {
        s = s.max(0.75);
    }
    s
}

/// The sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    let Some(t) = c.tool else {
        return String::new();
    };
    let Some(n) = t.new else {
        return String::new();
    };
    let mut s = format!(
        "first {} to a {} ({}) it never dealt with in {} earlier sessions ({} known counterparties)",
        t.effect.as_str(),
        kind_name(n.kind),
        c.ev.action,
        t.sessions,
        t.known
    );
    if n.fleet_agents == 0 {
        s.push_str("; no agent of the fleet dealt with it either");
    } else {
        s.push_str(&format!("; {} agents of the fleet did", n.fleet_agents));
    }
    if n.campaign {
        s.push_str("; other agents first reached it within the last 7 days (a destination spreading across agents)");
    }
    s
}

/// The entity kind in words.
pub(crate) fn kind_name(k: EntityKind) -> &'static str {
    match k {
        EntityKind::Account => "bank account",
        EntityKind::Mail => "mail address",
        EntityKind::Host => "web host",
        EntityKind::Phone => "phone number",
        EntityKind::Wallet => "crypto wallet",
        EntityKind::Channel => "chat channel",
        EntityKind::Handle => "chat user",
    }
}

//! Novelty: the first use of an action, a resource area, a resource pattern, or an action on a
//! known pattern. Judged on generalised patterns, damped for agents whose working set grows as a
//! matter of routine, and excused when the agent's peers commonly do the same (a fleet-wide
//! release of a new tool), except for outside destinations.

use super::{Ctx, days, ramp};
use crate::fleet::UseKind;
use crate::profile::counter::Lookup;

/// How new a key is: 1 never seen, 0 well known; keys learned only provisionally (from
/// anomalous events) or long faded count as partly new.
pub fn fresh(l: Lookup) -> f32 {
    if l.count >= 1.0 {
        0.0
    } else if l.count > 0.0 {
        // Provisional credit (at most a third a day) wears novelty off over days, not events.
        1.0 - l.count * l.count
    } else if l.seen {
        0.3
    } else {
        1.0
    }
}

/// What is left of a new destination's novelty when the organisation's grants name it: as much
/// as of a place most of the agent's peers use.
pub(crate) const SANCTIONED: f32 = 0.15;

/// What is left of the novelty of an AI agent's tool, when its name (or the configuration) says
/// it only reads.
pub(crate) const READS: f32 = 0.5;

/// What is new about the event.
#[derive(Clone, Copy, Debug, PartialEq)]
enum What {
    Action,
    Prefix,
    Pattern,
    ActionOnPattern,
    Resource,
    OldData,
}

fn parts(c: &Ctx<'_>) -> [(What, f32); 6] {
    let o = c.obs;
    // Agents that routinely touch new patterns (a growing working set) are less surprising.
    let routine = 1.0 - 0.8 * ramp(o.novel_rate, 0.01, 0.15);
    // An AI agent's first call of a tool that says it only reads is half as new as a first
    // act: the harm of a capability lies in what it changes or sends.
    let reads = if c.tool.is_some_and(|t| t.reads) {
        READS
    } else {
        1.0
    };
    let excuse = |kind: UseKind, key: u64| -> f32 {
        if c.keys.destination && kind != UseKind::Action {
            // Peers never excuse a destination (a campaign reaches many agents at once), but
            // the organisation's grants naming it do.
            return if c.sanctioned { SANCTIONED } else { 1.0 };
        }
        match c.peers.share(kind, key) {
            Some(share) => 1.0 - 0.85 * ramp(share, 0.0, c.settings.peer_common_share),
            None => 1.0,
        }
    };
    [
        (
            What::Action,
            0.9 * reads * fresh(o.action) * excuse(UseKind::Action, c.keys.action),
        ),
        (
            What::Prefix,
            0.8 * reads
                * fresh(o.prefix)
                * routine.max(0.5)
                * excuse(UseKind::Prefix, c.keys.prefix_id),
        ),
        (
            What::Pattern,
            0.5 * reads * fresh(o.pattern) * routine * excuse(UseKind::Pattern, c.keys.pattern_id),
        ),
        (
            What::ActionOnPattern,
            0.35 * reads
                * fresh(o.action_pattern)
                * routine
                * excuse(UseKind::Action, c.keys.action),
        ),
        // An agent with a stable working set (a fixed set of accounts, repositories, tables)
        // touching a new member of it.
        (What::Resource, 0.45 * fresh(o.resource) * stable_set(o)),
        // Data far older than the agent ever reads: a sweep of historical partitions.
        (
            What::OldData,
            match o.data_age {
                Some((age, usual)) => 0.6 * ramp(age - usual.max(1.0) * 2.0, 5.0, 30.0),
                None => 0.0,
            },
        ),
    ]
}

/// How stable the agent's working set is, from its own history: 1 when it keeps to a fixed set
/// of resources (overall, or behind this pattern, such as a few accounts), 0 when its work is a
/// stream of new objects.
fn stable_set(o: &crate::profile::Observation) -> f32 {
    let overall = 1.0 - ramp(o.novel_exact_rate, 0.01, 0.1);
    let here = if o.pattern.count >= 20.0 {
        1.0 - ramp(o.pattern_churn, 0.02, 0.2)
    } else {
        0.0
    };
    overall.max(here)
}

/// Whether the event reaches beyond the agent's own territory: it names a place (an authority
/// or path segment, see [`crate::profile::generalise::names`]) that the agent never used and
/// fewer than `rare_share` of its peers use, or it is an undated new member behind a known
/// pattern of a stable working set (see [`crate::profile::new_member`]). A new pattern built
/// only of names the agent knows (a new kind of file in its own bucket, the pipelines of a
/// repository it already works on) stays within it.
pub fn reach(c: &Ctx<'_>, rare_share: f32) -> bool {
    let o = c.obs;
    let foreign = o.names.iter().any(|(key, l)| {
        l.count < 0.5
            && c.peers
                .share(UseKind::Name, *key)
                .is_none_or(|s| s < rare_share)
    });
    let member = crate::profile::new_member(o.resource, o.pattern, o.pattern_churn);
    foreign || (member && c.keys.data_age_days.is_none())
}

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    if c.obs.learned_weight < 1.0 {
        return 0.0;
    }
    let s = parts(c).iter().map(|p| p.1).fold(0.0, f32::max);
    // Several new things in quick succession (a spree into unfamiliar resources) reinforce
    // each other.
    let spree = c.obs.window.novel.clamp(1, 4) as i32;
    1.0 - (1.0 - s).powi(spree)
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    let (what, _) = parts(c)
        .into_iter()
        .fold((What::Action, -1.0), |b, p| if p.1 > b.1 { p } else { b });
    let o = c.obs;
    let hist = days(o.history_days);
    let spree = if o.window.novel >= 2 {
        format!(
            " ({} accesses to new resource patterns in this window)",
            o.window.novel
        )
    } else {
        String::new()
    };
    let peers = |kind: UseKind, key: u64| match c.peers.share(kind, key) {
        Some(s) if c.keys.destination => format!(
            "; it is an outside destination{} ({:.0}% of {} peers used it)",
            if c.sanctioned {
                " named by a grant"
            } else {
                ""
            },
            s * 100.0,
            c.peers.size()
        ),
        None if c.sanctioned => "; it is an outside destination named by a grant".to_string(),
        Some(s) => format!(
            "; {:.0}% of {} peer agents use it",
            s * 100.0,
            c.peers.size()
        ),
        None => String::new(),
    };
    let text = match what {
        What::Action => format!(
            "first use of action {} in {hist} of history ({} actions known){}",
            c.ev.action,
            o.actions_known,
            peers(UseKind::Action, c.keys.action)
        ),
        What::Prefix => format!(
            "first access to resource area {} ({} on {}) in {hist} of history ({} areas known){}",
            c.keys.prefix(),
            c.ev.action,
            c.ev.resource,
            o.prefixes_known,
            peers(UseKind::Prefix, c.keys.prefix_id)
        ),
        What::Pattern => format!(
            "first access to resource pattern {} ({}) in {hist} of history ({} patterns known){}",
            c.keys.pattern,
            c.ev.resource,
            o.patterns_known,
            peers(UseKind::Pattern, c.keys.pattern_id)
        ),
        What::ActionOnPattern => format!(
            "first use of {} on {} in {hist} of history, though both are known separately",
            c.ev.action, c.keys.pattern
        ),
        What::Resource => format!(
            "first access to {} in {hist} of history by an agent with a stable working set ({:.1}% of its accesses, and {:.1}% of those to {}, are to new resources)",
            c.ev.resource,
            o.novel_exact_rate * 100.0,
            o.pattern_churn * 100.0,
            c.keys.pattern
        ),
        What::OldData => {
            // Chosen only when it scores highest, above 0, which takes the data's age.
            let (age, usual) = o.data_age.unwrap_or_default();
            format!(
                "{} reads data from {age:.0} days before the event ({}), while this agent's reads are of data at most {usual:.0} days old",
                c.ev.action, c.ev.resource
            )
        }
    };
    format!("{text}{spree}")
}

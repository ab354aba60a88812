//! Fleet knowledge: peer-group statistics and destination sightings, as snapshots that change
//! only at event-time ticks.
//!
//! An agent's result depends only on its own events and on the snapshot in force, so results do
//! not depend on how agents interleave. Changes observed between ticks are queued and applied
//! together at the next tick.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::profile::counter::Minute;

/// Which table a first use belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UseKind {
    /// An action.
    Action,
    /// A resource pattern.
    Pattern,
    /// A resource prefix.
    Prefix,
    /// A resource prefix within sessions of a stated intent.
    IntentPrefix,
    /// An action within sessions of a stated intent.
    IntentAction,
    /// A name in resource patterns (see `profile::generalise::names`).
    Name,
}

impl UseKind {
    /// Every kind, in order.
    const ALL: [UseKind; 6] = [
        UseKind::Action,
        UseKind::Pattern,
        UseKind::Prefix,
        UseKind::IntentPrefix,
        UseKind::IntentAction,
        UseKind::Name,
    ];
}

/// A change observed between ticks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Delta {
    /// A new agent joined a group.
    Agent {
        /// The group.
        group: u64,
    },
    /// An agent of the group used a key for the first time.
    FirstUse {
        /// The group.
        group: u64,
        /// Table.
        kind: UseKind,
        /// The key.
        key: u64,
    },
    /// An agent contacted a destination new to it.
    Destination {
        /// The destination (prefix key).
        dest: u64,
        /// The agent (key).
        agent: u64,
        /// When.
        minute: Minute,
    },
}

/// Statistics of one peer group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroupStats {
    /// Agents in the group.
    pub agents: u32,
    uses: Uses,
}

/// Agents of a group that used each key, one table per [`UseKind`] (a key is then 8 bytes, not
/// 16 with the kind beside it). Serialised as one map from `(kind, key)`.
#[derive(Clone, Debug, Default)]
struct Uses([FxHashMap<u64, u32>; UseKind::ALL.len()]);

impl Uses {
    fn get(&self, kind: UseKind, key: u64) -> u32 {
        self.0[kind as usize].get(&key).copied().unwrap_or(0)
    }

    fn add(&mut self, kind: UseKind, key: u64, n: u32) {
        *self.0[kind as usize].entry(key).or_default() += n;
    }
}

impl Serialize for Uses {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // The length first: compact formats (the checkpoints' postcard) need it.
        let mut m = s.serialize_map(Some(self.0.iter().map(|t| t.len()).sum()))?;
        for (kind, t) in UseKind::ALL.iter().zip(&self.0) {
            for (key, n) in t {
                m.serialize_entry(&(*kind, *key), n)?;
            }
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Uses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Uses;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map from (kind, key) to a count of agents")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Uses, A::Error> {
                let mut uses = Uses::default();
                while let Some(((kind, key), n)) = m.next_entry::<(UseKind, u64), u32>()? {
                    // A key appears once in a map; should one repeat, the last count stands,
                    // as it would in a map read whole.
                    uses.0[kind as usize].insert(key, n);
                }
                Ok(uses)
            }
        }
        d.deserialize_map(Entries)
    }
}

impl GroupStats {
    /// Share of the group's agents that used `key`. A use by a single agent counts for
    /// nothing and by two for half, so that one agent cannot make its own behaviour look common.
    pub fn share(&self, kind: UseKind, key: u64) -> f32 {
        self.share_among(kind, key, self.agents)
    }

    /// Share of `members` of the group's agents (those an agent is judged among, see
    /// [`crate::detect::PeerView::members`]) that used `key`, trusted as [`GroupStats::share`]
    /// trusts it.
    pub fn share_among(&self, kind: UseKind, key: u64, members: u32) -> f32 {
        if members == 0 {
            return 0.0;
        }
        let n = self.users(kind, key) as f32;
        let trust = ((n - 1.0) / 2.0).clamp(0.0, 1.0);
        trust * (n / members as f32).min(1.0)
    }

    /// The most agents of the group that used any one of `actions`: how many agents share a
    /// tool with an agent that uses them.
    pub fn sharing(&self, actions: impl Iterator<Item = u64>) -> u32 {
        actions
            .map(|a| self.users(UseKind::Action, a))
            .max()
            .unwrap_or(0)
    }

    /// Agents of the group that used `key`.
    pub fn users(&self, kind: UseKind, key: u64) -> u32 {
        self.uses.get(kind, key)
    }
}

/// Who contacted a destination for the first time, and when (most recent kept).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct DestinationStats {
    /// Agents that ever contacted it.
    pub agents: u32,
    recent: Vec<(u64, Minute)>,
}

impl DestinationStats {
    /// Other agents that first contacted it within `since..=now`.
    pub fn recent_others(&self, agent: u64, since: Minute) -> u32 {
        self.recent
            .iter()
            .filter(|(a, m)| *a != agent && *m >= since)
            .count() as u32
    }
}

/// The fleet snapshot in force.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    groups: FxHashMap<u64, GroupStats>,
    destinations: FxHashMap<u64, DestinationStats>,
    /// Total agents.
    pub agents: u32,
    /// Event time of the first tick.
    pub started: Option<Minute>,
}

impl Snapshot {
    /// Days of event time since the first event.
    pub fn days(&self, now: Minute) -> f32 {
        self.started
            .map_or(0.0, |s| now.saturating_sub(s) as f32 / 1440.0)
    }

    /// The statistics of a group.
    pub fn group(&self, group: u64) -> Option<&GroupStats> {
        self.groups.get(&group)
    }

    /// The sightings of a destination.
    pub fn destination(&self, dest: u64) -> Option<&DestinationStats> {
        self.destinations.get(&dest)
    }

    /// Applies queued changes.
    pub fn apply(&mut self, deltas: &[Delta]) {
        for d in deltas {
            match *d {
                Delta::Agent { group } => {
                    self.groups.entry(group).or_default().agents += 1;
                }
                Delta::FirstUse { group, kind, key } => {
                    self.groups.entry(group).or_default().uses.add(kind, key, 1);
                }
                Delta::Destination {
                    dest,
                    agent,
                    minute,
                } => {
                    let s = self.destinations.entry(dest).or_default();
                    if s.recent.iter().any(|(a, _)| *a == agent) {
                        continue;
                    }
                    s.agents += 1;
                    if s.recent.len() >= 16
                        && let Some((i, _)) = s.recent.iter().enumerate().min_by_key(|(_, r)| r.1)
                    {
                        s.recent.swap_remove(i);
                    }
                    s.recent.push((agent, minute));
                }
            }
        }
    }
}

impl crate::decide::PeerUses for Snapshot {
    fn action_users(&self, group: u64, key: u64) -> u32 {
        self.group(group)
            .map_or(0, |s| s.users(UseKind::Action, key))
    }
}

/// The fleet: the snapshot in force and the changes queued for the next tick.
///
/// Of the queued changes only the numbers of joins and first uses matter (they are counts in
/// the snapshot), so they are queued as counts: a burst of new agents costs a few entries, not a
/// change each. Destination sightings are queued in order.
#[derive(Debug, Default)]
pub(crate) struct Fleet {
    /// The snapshot detectors read.
    pub snapshot: Snapshot,
    /// Agents joining each group.
    joins: FxHashMap<u64, u32>,
    /// First uses, per group, table and key.
    first_uses: FxHashMap<(u64, UseKind, u64), u32>,
    /// Destination sightings, in order.
    destinations: Vec<Delta>,
    pending_agents: u32,
    next_tick: Option<Minute>,
    /// Whether an [`Exchange`] ticks the snapshot (see [`Fleet::share`]).
    shared: bool,
}

/// The fleet as serialised: queued changes as one list (joins and first uses repeated as often
/// as they were queued, in key order), as they were first kept.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Fleet")]
struct StoredFleet<S> {
    snapshot: S,
    pending: Vec<Delta>,
    pending_agents: u32,
    next_tick: Option<Minute>,
}

impl Serialize for Fleet {
    fn serialize<Se: serde::Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        let mut joins: Vec<(u64, u32)> = self.joins.iter().map(|(g, n)| (*g, *n)).collect();
        joins.sort_unstable();
        let mut uses: Vec<((u64, UseKind, u64), u32)> =
            self.first_uses.iter().map(|(k, n)| (*k, *n)).collect();
        uses.sort_unstable();
        let mut pending = Vec::new();
        for (group, n) in joins {
            pending.extend(std::iter::repeat_n(Delta::Agent { group }, n as usize));
        }
        for ((group, kind, key), n) in uses {
            pending.extend(std::iter::repeat_n(
                Delta::FirstUse { group, kind, key },
                n as usize,
            ));
        }
        pending.extend_from_slice(&self.destinations);
        StoredFleet {
            snapshot: &self.snapshot,
            pending,
            pending_agents: self.pending_agents,
            next_tick: self.next_tick,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Fleet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = StoredFleet::<Snapshot>::deserialize(d)?;
        let mut fleet = Fleet {
            snapshot: s.snapshot,
            pending_agents: s.pending_agents,
            next_tick: s.next_tick,
            ..Fleet::default()
        };
        for delta in s.pending {
            fleet.record(delta);
        }
        Ok(fleet)
    }
}

impl Fleet {
    /// Queues a new agent, member of `groups`, for the next tick.
    pub fn new_agent(&mut self, groups: &[u64]) {
        self.pending_agents += 1;
        for &group in groups {
            self.join(group);
        }
    }

    /// Queues an agent already counted joining one more group, for the next tick.
    pub fn join(&mut self, group: u64) {
        *self.joins.entry(group).or_default() += 1;
    }

    /// Queues a change for the next tick.
    pub fn record(&mut self, d: Delta) {
        match d {
            Delta::Agent { group } => self.join(group),
            Delta::FirstUse { group, kind, key } => {
                *self.first_uses.entry((group, kind, key)).or_default() += 1;
            }
            Delta::Destination { .. } => self.destinations.push(d),
        }
    }

    /// The end of the window [`Fleet::advance`] would apply for an event at `now`, if it would
    /// apply one: the tick boundary after the events it holds (they are all of one tick, the
    /// one before it), as a shared fleet's merged windows are labelled.
    pub fn window_due(&self, now: Minute) -> Option<Minute> {
        match self.next_tick {
            Some(t) if !self.shared && now >= t => Some(t),
            _ => None,
        }
    }

    /// Advances event time to `now`; applies queued changes when a tick boundary
    /// (a multiple of `tick_min`) has passed. Returns true when a tick happened.
    ///
    /// A fleet shared with other engines ([`Fleet::share`]) does nothing here: its ticks are
    /// the [`Exchange`]'s.
    pub fn advance(&mut self, now: Minute, tick_min: u32) -> bool {
        if self.shared {
            return false;
        }
        let tick_min = tick_min.max(1);
        let boundary = (now / tick_min) * tick_min;
        match self.next_tick {
            None => {
                self.next_tick = Some(boundary + tick_min);
                self.snapshot.started = Some(now);
                false
            }
            Some(t) if now >= t => {
                let window = Window::merge([self.take_window()]);
                self.snapshot.apply_window(&window);
                self.next_tick = Some(boundary + tick_min);
                true
            }
            Some(_) => false,
        }
    }

    /// Hands the snapshot's ticks to an [`Exchange`] that merges this fleet's changes with
    /// those of other engines.
    pub fn share(&mut self) {
        self.shared = true;
    }

    /// The changes queued since the last tick, leaving the queue empty (in no order: put them
    /// in order with [`Window::merge`] before applying them). The queues' tables go with them,
    /// so that a burst (a fleet's first hours, when everything is a first use) does not keep
    /// its room for the rest of the run.
    pub fn take_window(&mut self) -> Window {
        Window {
            agents: std::mem::take(&mut self.pending_agents),
            joins: std::mem::take(&mut self.joins).into_iter().collect(),
            first_uses: std::mem::take(&mut self.first_uses).into_iter().collect(),
            destinations: std::mem::take(&mut self.destinations),
        }
    }

    /// Starts a shared fleet's clock at the first event's minute.
    pub fn start(&mut self, now: Minute) {
        self.snapshot.started = Some(now);
    }

    /// Applies a merged window to a shared fleet.
    pub fn apply_merged(&mut self, merged: &Window) {
        self.snapshot.apply_window(merged);
    }
}

/// The changes one or more engines queued between two ticks; once merged
/// ([`Window::merge`]), in a canonical order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    agents: u32,
    /// Agents joining each group (merged: in group order).
    joins: Vec<(u64, u32)>,
    /// First uses per group, table and key (merged: in that order).
    first_uses: Vec<((u64, UseKind, u64), u32)>,
    /// Destination sightings.
    destinations: Vec<Delta>,
}

impl Window {
    /// Whether the window holds no change.
    pub fn is_empty(&self) -> bool {
        self.agents == 0
            && self.joins.is_empty()
            && self.first_uses.is_empty()
            && self.destinations.is_empty()
    }

    /// The union of `windows`, the same whatever their order: counts are added, and destination
    /// sightings are put in the order of their minute, agent and destination.
    pub fn merge(windows: impl IntoIterator<Item = Window>) -> Window {
        let mut joins: FxHashMap<u64, u32> = FxHashMap::default();
        let mut first_uses: FxHashMap<(u64, UseKind, u64), u32> = FxHashMap::default();
        let mut merged = Window::default();
        for w in windows {
            merged.agents += w.agents;
            for (g, n) in w.joins {
                *joins.entry(g).or_default() += n;
            }
            for (k, n) in w.first_uses {
                *first_uses.entry(k).or_default() += n;
            }
            merged.destinations.extend(w.destinations);
        }
        merged.joins = joins.into_iter().collect();
        merged.joins.sort_unstable();
        merged.first_uses = first_uses.into_iter().collect();
        merged.first_uses.sort_unstable();
        merged.destinations.sort_by_key(|d| match *d {
            Delta::Destination {
                dest,
                agent,
                minute,
            } => (minute, agent, dest),
            _ => (0, 0, 0),
        });
        merged
    }
}

impl Snapshot {
    /// Applies the changes of a window.
    pub fn apply_window(&mut self, w: &Window) {
        self.agents += w.agents;
        for &(group, n) in &w.joins {
            self.groups.entry(group).or_default().agents += n;
        }
        for &((group, kind, key), n) in &w.first_uses {
            self.groups.entry(group).or_default().uses.add(kind, key, n);
        }
        self.apply(&w.destinations);
    }
}

/// What an [`Exchange`] says an event's time calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// The first event: every fleet's clock starts at its minute ([`Fleet::start`]).
    Start,
    /// A tick boundary passed: the fleets' queued changes are merged ([`Window::merge`]) and
    /// every fleet applies the merged window ([`Fleet::apply_merged`]).
    Merge,
}

/// Fleet ticks shared by several engines (one per partition, say): at each tick boundary of
/// event time the changes every engine queued are merged, and every engine applies the same
/// merged window. An agent's result then does not depend on which engine holds it.
///
/// The driver asks [`Exchange::due`] with the time of each event, before any engine processes
/// it, so that no engine is past a boundary the others have not reached.
#[derive(Debug)]
pub struct Exchange {
    tick_min: u32,
    next_tick: Option<Minute>,
}

impl Exchange {
    /// An exchange ticking every `tick_min` minutes of event time.
    pub fn new(tick_min: u32) -> Exchange {
        Exchange {
            tick_min: tick_min.max(1),
            next_tick: None,
        }
    }

    /// The end of the window the next [`Tick::Merge`] merges: the tick boundary after the
    /// events its changes come from (all of one tick, the one before it).
    pub fn window_end(&self) -> Option<Minute> {
        self.next_tick
    }

    /// What an event at `now` calls for before it is processed, if anything; the exchange
    /// then counts the tick as done.
    pub fn due(&mut self, now: Minute) -> Option<Tick> {
        let tick = match self.next_tick {
            None => Tick::Start,
            Some(t) if now >= t => Tick::Merge,
            Some(_) => return None,
        };
        self.next_tick = Some((now / self.tick_min) * self.tick_min + self.tick_min);
        Some(tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn delta() -> impl Strategy<Value = Delta> {
        prop_oneof![
            (0u64..3).prop_map(|group| Delta::Agent { group }),
            (
                0u64..3,
                prop::sample::select(UseKind::ALL.to_vec()),
                0u64..4
            )
                .prop_map(|(group, kind, key)| Delta::FirstUse { group, kind, key }),
            (0u64..3, 0u64..24, 0u32..5).prop_map(|(dest, agent, minute)| Delta::Destination {
                dest,
                agent,
                minute,
            }),
        ]
    }

    /// What detectors can read of a snapshot over the keys the strategy draws.
    fn reading(s: &Snapshot) -> Vec<(u64, u32, u32)> {
        let mut out = Vec::new();
        for k in 0..3u64 {
            let g = s.group(k);
            out.push((k, g.map_or(0, |g| g.agents), 0));
            for (kind, key) in UseKind::ALL
                .iter()
                .flat_map(|k| (0..4).map(move |key| (*k, key)))
            {
                let share = g.map_or(0.0, |g| g.share(kind, key));
                out.push((k, key as u32, share.to_bits()));
            }
            let d = s.destination(k);
            out.push((
                k,
                d.map_or(0, |d| d.agents),
                d.map_or(0, |d| d.recent_others(u64::MAX, 0)),
            ));
            for since in 0..5 {
                out.push((k, since, d.map_or(0, |d| d.recent_others(3, since))));
            }
        }
        out
    }

    /// A group's statistics as checkpoints held them before each kind had its own table: one
    /// map from `(kind, key)`.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct OneMap {
        agents: u32,
        uses: std::collections::BTreeMap<(UseKind, u64), u32>,
    }

    #[test]
    fn group_statistics_are_stored_as_one_map_from_kind_and_key() {
        let mut s = Snapshot::default();
        let mut expected = OneMap {
            agents: 0,
            uses: Default::default(),
        };
        for (i, kind) in UseKind::ALL.iter().enumerate() {
            for key in [7u64, 1 << 40] {
                let n = i as u32 + 1;
                for _ in 0..n {
                    s.apply(&[Delta::FirstUse {
                        group: 9,
                        kind: *kind,
                        key,
                    }]);
                }
                expected.uses.insert((*kind, key), n);
            }
        }
        s.apply(&[Delta::Agent { group: 9 }]);
        expected.agents = 1;
        let bytes = postcard::to_allocvec(s.group(9).unwrap()).unwrap();
        let read: OneMap = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(read, expected);
        // And a map written in the old shape reads back with every count in its kind's table.
        let back: GroupStats =
            postcard::from_bytes(&postcard::to_allocvec(&expected).unwrap()).unwrap();
        for ((kind, key), n) in &expected.uses {
            assert_eq!(back.users(*kind, *key), *n, "{kind:?} {key}");
        }
        assert_eq!(back.users(UseKind::Action, 8), 0);
    }

    #[test]
    fn a_burst_of_first_uses_keeps_no_room_past_its_tick() {
        let mut f = Fleet::default();
        for key in 0..5_000 {
            f.record(Delta::FirstUse {
                group: 1,
                kind: UseKind::Pattern,
                key,
            });
            f.join(key);
        }
        assert_eq!(f.take_window().first_uses.len(), 5_000);
        assert_eq!((f.first_uses.capacity(), f.joins.capacity()), (0, 0));
    }

    proptest! {
        /// However the changes of a tick are spread over engines, and in whatever order their
        /// windows are merged, every engine reads what one engine that saw them all reads.
        #[test]
        fn merged_windows_read_as_one_fleet(
            changes in proptest::collection::vec((delta(), 0usize..4), 0..60),
            rotate in 0usize..4,
        ) {
            let mut one = Fleet::default();
            let mut many: Vec<Fleet> = (0..4).map(|_| Fleet::default()).collect();
            for (d, engine) in &changes {
                one.record(*d);
                many[*engine].record(*d);
            }
            let mut alone = Snapshot::default();
            alone.apply_window(&Window::merge([one.take_window()]));
            let mut windows: Vec<Window> = many.iter_mut().map(Fleet::take_window).collect();
            windows.rotate_left(rotate);
            let merged = Window::merge(windows.clone());
            windows.reverse();
            prop_assert_eq!(&Window::merge(windows), &merged);
            let mut shared = Snapshot::default();
            shared.apply_window(&merged);
            prop_assert_eq!(reading(&shared), reading(&alone));
        }
    }
}

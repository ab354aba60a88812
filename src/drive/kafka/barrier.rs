//! Fleet knowledge shared by every input partition, whatever instance holds it, through the
//! fleet topic (`kafka.fleet_topic`), at an event-time barrier.
//!
//! Each partition's engine queues what it learns about the fleet (new agents of a peer group,
//! first uses, destinations) between fleet ticks of event time (`detect.fleet_tick_secs`), as
//! `cinch replay --partitions N` does. With a fleet topic:
//!
//! 1. When a partition's first event of a later tick arrives, its worker publishes a
//!    [`FleetRecord`]: the window of changes queued since its previous tick, and the tick it has
//!    reached (its windows of the ticks in between are empty). A partition's first record also
//!    carries the minute of its first event: the fleet's clock starts at the earliest.
//! 2. Every instance reads the whole fleet topic into a [`Board`]. The merged window of a tick
//!    boundary is complete when every partition of the fleet (every partition of every scored
//!    input topic) has reached that tick; the board merges it in a canonical order.
//! 3. A partition processes an event of tick `k` only when every boundary up to `k` is complete
//!    and applied to its engine ([`Gate`]). Until then its events are parked (the partition is
//!    paused at the consumer when too many are). An input partition's checkpoint stops before
//!    its first parked event, which is read again; a repartition partition keeps its parked
//!    events in its checkpoint, as it keeps the events it holds for event-time order.
//!
//! An agent's scores then depend only on its partition's events and the merged windows, never on
//! which instance holds which partition or on timing: a deployment on N partitions gives the
//! outputs of `cinch replay --partitions N` on the same (time-ordered) input.
//!
//! A partition with nothing to read would hold every engine at its tick: one that received
//! nothing for `kafka.fleet_idle_secs` of wall clock while others wait is advanced to their tick
//! with an empty window ([`Gate::advance_idle`]). That is the one rule that depends on timing;
//! an event that arrives later on such a partition is processed at once, with the knowledge in
//! force, and what it teaches joins the partition's next window.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::event::AccessEvent;
use crate::fleet::{Fleet, Window};
use crate::profile::counter::Minute;

/// A fleet tick: minutes of event time divided by the tick length.
pub(crate) type Tick = u32;

/// Days of boundaries a board keeps behind the fleet's frontier (for partitions restored from
/// an older checkpoint).
const KEEP_DAYS: u32 = 7;

/// A record of the fleet topic: what one input partition learned before it reached a tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FleetRecord {
    /// The input partition, `topic/partition`.
    pub(crate) member: String,
    /// The tick it was at (`None`: this is its first record).
    pub(crate) from: Option<Tick>,
    /// The tick it reached.
    pub(crate) reached: Tick,
    /// The minute of its first event (first record only, when it had an event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start: Option<Minute>,
    /// What it learned at tick `from`, for the boundary `from + 1`.
    pub(crate) window: Window,
}

impl FleetRecord {
    /// The record's key on the fleet topic: a partition's record of one tick is published again,
    /// identical, when the partition is processed again after a crash.
    pub(crate) fn key(&self) -> String {
        format!("{}@{}", self.member, self.reached)
    }
}

/// The name of a partition as a member of the fleet.
pub(crate) fn member_name(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// What a partition needs to apply before an event of a tick: the fleet's start (for its first
/// catch-up) and the merged windows of the boundaries since its last.
pub(crate) struct CatchUp {
    /// The fleet's first minute.
    pub(crate) start: Option<Minute>,
    /// Merged windows with their boundaries, in boundary order.
    pub(crate) windows: Vec<(Tick, Arc<Window>)>,
}

/// Every fleet record an instance has read (and published), and the merged windows of the
/// boundaries every member has passed.
pub(crate) struct Board {
    state: Mutex<BoardState>,
    /// Bumped whenever the frontier moves (read without the lock on the hot path).
    version: AtomicU64,
    tick_min: u32,
}

struct BoardState {
    /// Member name → index.
    index: HashMap<String, usize>,
    /// Per member, the tick it reached: the end of the unbroken chain of its records from its
    /// first (a record read before the one it follows counts once that one is read).
    reached: Vec<Option<Tick>>,
    /// Per member, the tick each record received leads from (`None`: the first) to.
    links: Vec<HashMap<Option<Tick>, Tick>>,
    /// The earliest first minute announced.
    start: Option<Minute>,
    /// Per boundary, the windows received, by member.
    windows: BTreeMap<Tick, Vec<(usize, Window)>>,
    /// Per complete boundary, the merged window.
    merged: BTreeMap<Tick, Arc<Window>>,
    /// (member, from) pairs received: a record published again is dropped.
    seen: HashSet<(usize, Option<Tick>)>,
    /// The tick every member has reached.
    frontier: Option<Tick>,
}

impl Board {
    /// A board for the fleet of `members` (partition names, see [`member_name`]), ticking every
    /// `tick_min` minutes.
    pub(crate) fn new(members: &[String], tick_min: u32) -> Board {
        let index: HashMap<String, usize> = members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), i))
            .collect();
        Board {
            state: Mutex::new(BoardState {
                reached: vec![None; index.len()],
                links: vec![HashMap::new(); index.len()],
                index,
                start: None,
                windows: BTreeMap::new(),
                merged: BTreeMap::new(),
                seen: HashSet::new(),
                frontier: None,
            }),
            version: AtomicU64::new(0),
            tick_min: tick_min.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BoardState> {
        // The board is only ever changed whole under its lock: a panic elsewhere leaves it
        // consistent, so a poisoned lock is taken over.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Minutes per tick.
    pub(crate) fn tick_min(&self) -> u32 {
        self.tick_min
    }

    /// Counts bumped each time the frontier moves.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Takes in a record. Returns whether the frontier moved, or the record itself when it names
    /// a partition that is not a member (another deployment's, or a partition added since
    /// start-up): it is ignored.
    pub(crate) fn add(&self, rec: FleetRecord) -> Result<bool, Box<FleetRecord>> {
        let mut st = self.lock();
        let Some(&m) = st.index.get(&rec.member) else {
            return Err(Box::new(rec));
        };
        if !st.seen.insert((m, rec.from)) {
            return Ok(false);
        }
        if let Some(start) = rec.start {
            st.start = Some(st.start.map_or(start, |s| s.min(start)));
        }
        if let Some(from) = rec.from
            && !rec.window.is_empty()
        {
            st.windows
                .entry(from + 1)
                .or_default()
                .push((m, rec.window));
        }
        st.links[m].insert(rec.from, rec.reached);
        let mut at = st.reached[m];
        let links = &st.links[m];
        while let Some(&next) = links.get(&at) {
            at = Some(next);
        }
        st.reached[m] = at;
        let frontier = st.reached.iter().copied().min().flatten();
        if frontier <= st.frontier {
            return Ok(false);
        }
        st.frontier = frontier;
        if let Some(f) = frontier {
            // Merge the boundaries now complete.
            let done: Vec<Tick> = st
                .windows
                .range(..=f)
                .map(|(b, _)| *b)
                .filter(|b| !st.merged.contains_key(b))
                .collect();
            for b in done {
                // `done` lists only boundaries with windows: the default is never taken.
                let mut ws = st.windows.get(&b).cloned().unwrap_or_default();
                ws.sort_by_key(|(m, _)| *m);
                let merged = Window::merge(ws.into_iter().map(|(_, w)| w));
                st.merged.insert(b, Arc::new(merged));
            }
            let keep = (KEEP_DAYS * 1440 / self.tick_min).max(1);
            let oldest = f.saturating_sub(keep);
            st.windows = st.windows.split_off(&oldest);
            st.merged = st.merged.split_off(&oldest);
            st.seen
                .retain(|(_, from)| from.is_none_or(|t| t + 1 >= oldest));
        }
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    /// The tick every member has reached, once each has published.
    pub(crate) fn frontier(&self) -> Option<Tick> {
        self.lock().frontier
    }

    /// The tick a member's record from `from` leads to, if the board has one (published by this
    /// partition's earlier owner, say).
    pub(crate) fn next_of(&self, member: &str, from: Option<Tick>) -> Option<Tick> {
        let st = self.lock();
        let m = *st.index.get(member)?;
        st.links[m].get(&from).copied()
    }

    /// The furthest tick any member has reached.
    pub(crate) fn furthest(&self) -> Option<Tick> {
        self.lock().reached.iter().copied().flatten().max()
    }

    /// The merged windows of the boundaries after `after` (all, when `None`) up to `upto`, once
    /// every member has reached `upto`.
    pub(crate) fn catch_up(&self, after: Option<Tick>, upto: Tick) -> Option<CatchUp> {
        let st = self.lock();
        if st.frontier.is_none_or(|f| f < upto) {
            return None;
        }
        let lo = after.map_or(0, |a| a.saturating_add(1));
        let windows = if lo > upto {
            Vec::new()
        } else {
            st.merged
                .range(lo..=upto)
                .map(|(b, w)| (*b, w.clone()))
                .collect()
        };
        Some(CatchUp {
            start: st.start,
            windows,
        })
    }
}

/// Where a partition's fleet records go: into the instance's board at once, and to the fleet
/// topic for the other instances.
pub(crate) trait Publish {
    /// Publishes one record.
    fn publish(&self, rec: FleetRecord);
    /// The board the instance reads.
    fn board(&self) -> &Board;
}

/// Where an event came from: its message's offset and its index among the records the message
/// gave.
pub(crate) type Position = (i64, u32);

/// One partition's place at the barrier; part of its checkpoint.
///
/// Parked events are not serialised with it. An input partition's checkpoint reflects the events
/// before the first parked one, and its input offset is committed no further than that event's
/// message, which is read again after a restart ([`Gate::first_parked`]); a repartition
/// partition's checkpoint keeps them beside the gate ([`Gate::parked_events`]).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Gate {
    /// The tick the partition has reached (announced).
    clock: Option<Tick>,
    /// The tick up to which merged windows are applied to its engine.
    applied: Option<Tick>,
    /// Events waiting for the fleet, in partition order (JSON), with their positions.
    #[serde(skip)]
    parked: VecDeque<(Position, Vec<u8>)>,
}

/// What [`Gate::offer`] did with an event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// The fleet is at its tick: process it now.
    Go,
    /// Parked until the fleet reaches its tick.
    Parked,
}

impl Gate {
    /// Events parked.
    pub(crate) fn parked(&self) -> usize {
        self.parked.len()
    }

    /// The position of the first parked event: a checkpoint reflects what came before it.
    pub(crate) fn first_parked(&self) -> Option<Position> {
        self.parked.front().map(|(pos, _)| *pos)
    }

    /// The parked events, in order, for a checkpoint that keeps them (a repartition
    /// partition's, whose input is not read again).
    pub(crate) fn parked_events(&self) -> &VecDeque<(Position, Vec<u8>)> {
        &self.parked
    }

    /// Parks events kept in a checkpoint again, ahead of any parked since.
    pub(crate) fn restore_parked(&mut self, mut events: VecDeque<(Position, Vec<u8>)>) {
        events.append(&mut self.parked);
        self.parked = events;
    }

    /// Takes an event: `Go` when it can be processed now (after the merged windows due are
    /// applied to `fleet`), else parks it. An event that cannot be written to be parked is
    /// processed now, out of step, rather than lost.
    pub(crate) fn offer(
        &mut self,
        ev: &AccessEvent<'_>,
        pos: Position,
        member: &str,
        engine: &mut Engine,
        link: &dyn Publish,
    ) -> Offer {
        if self.parked.is_empty() && self.enter(ev.time_ms, member, engine, link) {
            return Offer::Go;
        }
        match serde_json::to_vec(ev) {
            Ok(bytes) => {
                self.parked.push_back((pos, bytes));
                Offer::Parked
            }
            // An event decoded from JSON or protobuf always serialises; were it not to, it is
            // processed out of step rather than lost.
            Err(_) => Offer::Go,
        }
    }

    /// Announces the tick of an event at `time_ms` if it is later than the partition's, and
    /// brings the engine's fleet to it if every member has reached it. Returns whether the event
    /// can be processed.
    fn enter(
        &mut self,
        time_ms: i64,
        member: &str,
        engine: &mut Engine,
        link: &dyn Publish,
    ) -> bool {
        let minute = crate::profile::counter::minute_of(time_ms);
        let tick = minute / link.board().tick_min();
        while self.clock.is_none_or(|c| tick > c) {
            if self.follow(member, tick, &mut engine.fleet, link.board()) {
                continue;
            }
            link.publish(FleetRecord {
                member: member.to_string(),
                from: self.clock,
                reached: tick,
                start: self.clock.is_none().then_some(minute),
                window: engine.fleet.take_window(),
            });
            self.clock = Some(tick);
        }
        self.catch_up(engine, link.board())
    }

    /// When the board already holds another record of this partition from its tick than the one
    /// it would publish (an earlier owner advanced it as idle, then stopped before its
    /// checkpoint), takes that record's tick as its own: the record stands, and the changes
    /// queued since are taken to be the ones it carried. Returns whether it moved.
    fn follow(&mut self, member: &str, tick: Tick, fleet: &mut Fleet, board: &Board) -> bool {
        match board.next_of(member, self.clock) {
            Some(r) if r != tick => {
                // Dropped: the record on the board carried them.
                let _ = fleet.take_window();
                self.clock = Some(r);
                true
            }
            _ => false,
        }
    }

    /// Applies the merged windows due up to the partition's tick, if every member has reached
    /// it. Returns whether the fleet is at the partition's tick.
    fn catch_up(&mut self, engine: &mut Engine, board: &Board) -> bool {
        let Some(clock) = self.clock else {
            return true;
        };
        if self.applied == Some(clock) {
            return true;
        }
        let Some(c) = board.catch_up(self.applied, clock) else {
            return false;
        };
        if self.applied.is_none()
            && let Some(start) = c.start
        {
            engine.fleet.start(start);
        }
        for (boundary, w) in &c.windows {
            engine.apply_fleet_window(boundary.saturating_mul(board.tick_min()), w);
        }
        self.applied = Some(clock);
        true
    }

    /// Hands `each` the parked events the fleet now allows, in order; returns how many.
    pub(crate) fn release(
        &mut self,
        member: &str,
        engine: &mut Engine,
        link: &dyn Publish,
        each: &mut dyn FnMut(&mut Engine, AccessEvent<'_>),
    ) -> usize {
        let mut n = 0;
        while let Some((pos, bytes)) = self.parked.pop_front() {
            // Written by `offer` from an event: it reads back (an unreadable one would be
            // dropped with nothing to score).
            if let Ok(ev) = serde_json::from_slice::<AccessEvent<'_>>(&bytes) {
                if !self.enter(ev.time_ms, member, engine, link) {
                    self.parked.push_front((pos, bytes));
                    break;
                }
                each(engine, ev);
            }
            n += 1;
        }
        n
    }

    /// Hands `each` every parked event, whatever the fleet (the end of a run that closes its
    /// findings).
    pub(crate) fn release_all(&mut self, each: &mut dyn FnMut(AccessEvent<'_>)) {
        while let Some((_, bytes)) = self.parked.pop_front() {
            // Written by `offer` from an event: it reads back.
            if let Ok(ev) = serde_json::from_slice::<AccessEvent<'_>>(&bytes) {
                each(ev);
            }
        }
    }

    /// A partition with nothing to read, advanced to `upto` (the tick other members wait at)
    /// with the window it queued. Returns whether it moved.
    pub(crate) fn advance_idle(
        &mut self,
        upto: Tick,
        member: &str,
        engine: &mut Engine,
        link: &dyn Publish,
    ) -> bool {
        if !self.parked.is_empty() {
            return false;
        }
        while self.clock.is_none_or(|c| c < upto)
            && self.follow(member, upto, &mut engine.fleet, link.board())
        {}
        if self.clock.is_some_and(|c| c >= upto) {
            return false;
        }
        link.publish(FleetRecord {
            member: member.to_string(),
            from: self.clock,
            reached: upto,
            start: None,
            window: engine.fleet.take_window(),
        });
        self.clock = Some(upto);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{Delta, Fleet};

    /// Publishes into a board alone, as one instance holding every partition would.
    struct Local(Board, std::cell::RefCell<Vec<FleetRecord>>);

    impl Publish for Local {
        fn publish(&self, rec: FleetRecord) {
            self.1.borrow_mut().push(rec.clone());
            assert!(self.0.add(rec).is_ok());
        }
        fn board(&self) -> &Board {
            &self.0
        }
    }

    fn local(members: &[&str]) -> Local {
        let names: Vec<String> = members.iter().map(|m| m.to_string()).collect();
        Local(Board::new(&names, 60), Default::default())
    }

    fn window(dest: u64, minute: Minute) -> Window {
        let mut f = Fleet::default();
        f.record(Delta::Destination {
            dest,
            agent: dest,
            minute,
        });
        f.take_window()
    }

    fn rec(member: &str, from: Option<Tick>, reached: Tick, w: Window) -> FleetRecord {
        FleetRecord {
            member: member.into(),
            from,
            reached,
            start: from.is_none().then_some(reached * 60),
            window: w,
        }
    }

    #[test]
    fn a_boundary_is_merged_only_once_every_member_has_passed_it() {
        let b = Board::new(&["t/0".into(), "t/1".into()], 60);
        assert_eq!(b.add(rec("t/0", None, 10, Window::default())), Ok(false));
        assert_eq!(b.frontier(), None);
        assert!(b.catch_up(None, 10).is_none());
        assert_eq!(b.add(rec("t/1", None, 11, Window::default())), Ok(true));
        assert_eq!(b.frontier(), Some(10));
        let c = b.catch_up(None, 10).expect("every member reached 10");
        assert_eq!(c.start, Some(600), "the earliest first minute");
        assert!(c.windows.is_empty());
        // t/0 reaches 12 with what it learned at 10 (for boundary 11); t/1 is at 11.
        assert_eq!(b.add(rec("t/0", Some(10), 12, window(1, 610))), Ok(true));
        assert_eq!(b.frontier(), Some(11));
        assert!(b.catch_up(Some(10), 12).is_none(), "t/1 has not reached 12");
        let c = b.catch_up(Some(10), 11).unwrap();
        assert_eq!(c.windows.len(), 1);
        assert_eq!(c.windows[0].0, 11);
        assert_eq!(*c.windows[0].1, Window::merge([window(1, 610)]));
        // A record published again (a partition processed again after a crash) changes nothing.
        assert_eq!(b.add(rec("t/0", Some(10), 12, window(1, 610))), Ok(false));
        assert_eq!(b.catch_up(Some(10), 11).unwrap().windows.len(), 1);
        // A partition that is not a member is ignored.
        assert!(b.add(rec("other/0", None, 99, Window::default())).is_err());
        assert_eq!(b.frontier(), Some(11));
    }

    #[test]
    fn merged_windows_do_not_depend_on_the_order_records_arrive_in() {
        let records = [
            rec("t/0", None, 5, Window::default()),
            rec("t/1", None, 5, Window::default()),
            rec("t/0", Some(5), 6, window(3, 301)),
            rec("t/1", Some(5), 7, window(2, 302)),
            rec("t/0", Some(6), 7, window(1, 360)),
        ];
        let merged = |order: &[usize]| {
            let b = Board::new(&["t/0".into(), "t/1".into()], 60);
            for &i in order {
                assert!(b.add(records[i].clone()).is_ok());
            }
            let c = b.catch_up(None, 7).expect("complete");
            c.windows
                .iter()
                .map(|(b, w)| (*b, (**w).clone()))
                .collect::<Vec<_>>()
        };
        let a = merged(&[0, 1, 2, 3, 4]);
        assert_eq!(a.len(), 2, "boundaries 6 and 7");
        assert_eq!(a, merged(&[4, 3, 1, 2, 0]));
        assert_eq!(a, merged(&[1, 3, 0, 4, 2]));
    }

    #[test]
    fn a_partition_parks_events_past_the_fleet_and_releases_them_when_it_catches_up() {
        let link = local(&["t/0", "t/1"]);
        let mut e0 = Engine::new(crate::config::Settings::default());
        e0.fleet.share();
        let mut g0 = Gate::default();
        let ev = |minute: i64| {
            let line = format!(
                r#"{{"event_id":"e{minute}","time":"{}","agent_id":"a","action":"s3:GetObject","resource":"r"}}"#,
                crate::output::time::rfc3339_ms(minute * 60_000)
            );
            line
        };
        let first = ev(600);
        let decoder = crate::event::Decoder::new(Default::default());
        let take = |line: &str, gate: &mut Gate, engine: &mut Engine| {
            let mut offer = None;
            decoder.decode_message(line.as_bytes(), &mut |d| {
                let ev = d.expect("valid");
                offer = Some(gate.offer(&ev, (0, 0), "t/0", engine, &link));
            });
            offer.unwrap()
        };
        // t/1 has not published: the first event waits.
        assert_eq!(take(&first, &mut g0, &mut e0), Offer::Parked);
        assert_eq!(take(&ev(601), &mut g0, &mut e0), Offer::Parked, "in order");
        assert_eq!(g0.parked(), 2);
        let mut seen = Vec::new();
        let mut each = |_: &mut Engine, ev: AccessEvent<'_>| seen.push(ev.event_id.to_string());
        assert_eq!(g0.release("t/0", &mut e0, &link, &mut each), 0);
        // t/1, with nothing to read, is advanced to tick 10 (minute 600): the fleet is at t/0's
        // tick.
        let mut g1 = Gate::default();
        let mut e1 = Engine::new(crate::config::Settings::default());
        e1.fleet.share();
        assert!(g1.advance_idle(10, "t/1", &mut e1, &link));
        assert_eq!(g0.release("t/0", &mut e0, &link, &mut each), 2);
        assert_eq!(seen, ["e600", "e601"]);
        assert_eq!(e0.fleet.snapshot.started, Some(600));
        // An event of the next tick is parked until t/1 passes it too; an idle t/1 is advanced.
        assert_eq!(take(&ev(660), &mut g0, &mut e0), Offer::Parked);
        assert!(g1.advance_idle(11, "t/1", &mut e1, &link));
        assert!(!g1.advance_idle(11, "t/1", &mut e1, &link), "already there");
        let mut seen = Vec::new();
        g0.release("t/0", &mut e0, &link, &mut |_, ev| {
            seen.push(ev.event_id.to_string())
        });
        assert_eq!(seen, ["e660"]);
        let published = link.1.borrow();
        assert_eq!(
            published
                .iter()
                .map(|r| (r.member.as_str(), r.from, r.reached))
                .collect::<Vec<_>>(),
            [
                ("t/0", None, 10),
                ("t/1", None, 10),
                ("t/0", Some(10), 11),
                ("t/1", Some(10), 11)
            ]
        );
    }
}

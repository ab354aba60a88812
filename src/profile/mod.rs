//! Per-agent behavioural state with a hard memory bound, time decay and compact serialisation.
//!
//! A profile has two halves. The *baseline* (frequency tables, hour-of-week histogram, volume
//! statistics, activity peaks) is learned slowly and only from events not judged anomalous. The
//! *activity windows* (the last minutes of events, bytes, denials, distinct resources and the
//! sessions in flight) follow every event, because they describe what the agent is doing now.

pub(crate) mod counter;
pub mod entities;
pub(crate) mod generalise;
pub(crate) mod hours;
pub(crate) mod keys;
pub(crate) mod probation;
pub mod settings;
pub(crate) mod window;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use counter::{BoundedCounter, Decay, Lookup, Minute};
use hours::HourHistogram;
use keys::{EventKeys, pair};
use probation::{Place, Probation, Uptake};
use settings::ProfileSettings;
use window::{DistinctWindow, MinuteRing, WindowSums};

/// How fast an event is learned into the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Learning {
    /// An ordinary event: learned at full weight.
    Full,
    /// Mildly unusual (reasons, but no finding): its new keys are credited a third each time,
    /// so recurring routine drift is absorbed within a few events; it raises no peaks.
    Provisional,
    /// Anomalous (a finding): its new keys are credited a third at most once a day, so an
    /// attacker cannot teach the baseline quickly.
    Slow,
}

/// Smallest accepted per-agent memory bound.
pub(crate) const MIN_PROFILE_BYTES: usize = 16 * 1024;

/// Sizes of a profile's tables, derived from the memory bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Capacity {
    actions: usize,
    patterns: usize,
    prefixes: usize,
    ips: usize,
    transitions: usize,
    intents: usize,
    volumes: usize,
    distinct: usize,
    sessions: usize,
    names: usize,
}

impl Capacity {
    /// Capacities that keep a profile under `max_bytes`.
    pub fn for_bytes(max_bytes: usize) -> Capacity {
        let f = max_bytes as f64 / 65536.0;
        let n = |base: usize| ((base as f64 * f) as usize).max(8);
        Capacity {
            actions: n(48),
            patterns: n(112),
            prefixes: n(48),
            ips: n(24),
            transitions: n(112),
            intents: n(112),
            volumes: n(64),
            distinct: n(448),
            sessions: n(16),
            names: n(64),
        }
    }
}

/// Running statistics of log-bytes for one action.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct VolumeStat {
    /// Action key.
    pub key: u64,
    /// Number of observations (capped, so old data fades).
    pub n: f32,
    /// Mean of ln(1 + bytes).
    pub mean: f32,
    /// Variance of ln(1 + bytes).
    pub var: f32,
}

impl VolumeStat {
    /// Standard deviation of ln(1 + bytes).
    pub fn std(&self) -> f32 {
        self.var.max(0.0).sqrt()
    }
}

/// A session in flight: its last action. Packed to four-byte alignment (20 bytes, not 24): its
/// fields are read and written by value.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
#[repr(C, packed(4))]
struct SessionState {
    key: u64,
    last_action: u64,
    at: Minute,
}

/// Number of time-of-day blocks for activity peaks (4-hour blocks, weekday and weekend).
const BLOCKS: usize = 12;

/// A decaying peak: the largest value seen, fading with the half-life.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Peak {
    /// Value as of `at`.
    pub value: f32,
    /// When it was last raised.
    pub at: Minute,
}

impl Peak {
    fn get(&self, now: Minute, decay: Decay) -> f32 {
        self.value * decay.factor(self.at, now)
    }
}

/// The peak for a time-of-day block: its own, or half the busiest block's when higher (a block
/// with little history borrows from the agent's overall rhythm).
///
/// All peaks fade at the same rate, so which block is busiest changes only when a peak is
/// raised; `busiest` is that block, kept up to date by the caller.
fn peak_for(peaks: &Peaks, block: usize, busiest: u8, now: Minute, decay: Decay) -> f32 {
    let own = peaks.get(block).get(now, decay);
    own.max(0.5 * peaks.get(busiest as usize).get(now, decay))
}

/// The block whose peak is highest.
fn busiest(peaks: &Peaks, now: Minute, decay: Decay) -> u8 {
    let mut best = (0usize, f32::MIN);
    for (i, p) in (0..BLOCKS).map(|b| (b, peaks.get(b))) {
        let v = p.get(now, decay);
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0 as u8
}

/// A peak per time-of-day block. The peaks of the first two blocks raised are held in place;
/// all of them are laid out when a third is raised. A block never raised has a zero peak, as a
/// new one has.
#[derive(Clone, Debug)]
enum Peaks {
    /// The first `len` blocks raised and their peaks.
    Few {
        len: u8,
        blocks: [u8; 2],
        peaks: [Peak; 2],
    },
    All(Box<[Peak; BLOCKS]>),
}

impl Default for Peaks {
    fn default() -> Self {
        Peaks::Few {
            len: 0,
            blocks: [0; 2],
            peaks: [Peak::default(); 2],
        }
    }
}

impl Peaks {
    #[inline]
    fn get(&self, block: usize) -> Peak {
        match self {
            Peaks::Few { len, blocks, peaks } => blocks[..*len as usize]
                .iter()
                .position(|b| *b as usize == block)
                .map_or(Peak::default(), |i| peaks[i]),
            Peaks::All(p) => p[block],
        }
    }

    fn set(&mut self, block: usize, peak: Peak) {
        if let Peaks::Few { len, blocks, peaks } = self {
            let n = *len as usize;
            if let Some(i) = blocks[..n].iter().position(|b| *b as usize == block) {
                peaks[i] = peak;
                return;
            }
            if n < blocks.len() {
                blocks[n] = block as u8;
                peaks[n] = peak;
                *len += 1;
                return;
            }
            *self = Peaks::All(Box::new(self.all()));
        }
        if let Peaks::All(p) = self {
            p[block] = peak;
        }
    }

    fn all(&self) -> [Peak; BLOCKS] {
        match self {
            Peaks::Few { len, blocks, peaks } => {
                let mut all = [Peak::default(); BLOCKS];
                for i in 0..*len as usize {
                    all[blocks[i] as usize] = peaks[i];
                }
                all
            }
            Peaks::All(p) => **p,
        }
    }

    fn allocated_bytes(&self) -> usize {
        match self {
            Peaks::Few { .. } => 0,
            Peaks::All(_) => BLOCKS * std::mem::size_of::<Peak>(),
        }
    }
}

impl PartialEq for Peaks {
    fn eq(&self, other: &Self) -> bool {
        self.all() == other.all()
    }
}

// Serialised as the list of every block's peak (its first layout).
impl Serialize for Peaks {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.all().iter())
    }
}

impl<'de> Deserialize<'de> for Peaks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<Peak>::deserialize(d)?;
        let all: [Peak; BLOCKS] = v
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::invalid_length(v.len(), &"12 blocks"))?;
        let mut peaks = Peaks::default();
        if all.iter().filter(|p| **p != Peak::default()).count() <= 2 {
            for (b, p) in all.iter().enumerate() {
                if *p != Peak::default() {
                    peaks.set(b, *p);
                }
            }
        } else {
            peaks = Peaks::All(Box::new(all));
        }
        Ok(peaks)
    }
}

/// The whole per-agent state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct AgentProfile {
    /// First event time.
    pub first_minute: Minute,
    /// Newest event time (the agent's watermark).
    pub last_minute: Minute,
    /// Events seen (all of them).
    pub events: u64,
    /// Events learned at full weight.
    pub learned: u64,
    /// Events that arrived later than the allowed lateness.
    pub late: u64,
    /// Decayed count of learned events, and of those that introduced a new resource pattern.
    learned_weight: Peak,
    novel_weight: Peak,
    /// Decayed count of learned events on an exact resource new to the agent.
    novel_exact_weight: Peak,
    /// Decayed count of learned events that were denied or failed.
    failed_weight: Peak,
    actions: BoundedCounter,
    patterns: BoundedCounter,
    prefixes: BoundedCounter,
    action_patterns: BoundedCounter,
    /// Exact resources (the working set).
    resources: BoundedCounter,
    /// Per pattern: learned events that touched an exact resource new to the agent.
    pattern_churn: BoundedCounter,
    ips: BoundedCounter,
    nets: BoundedCounter,
    /// Keys: (previous action, action) and, for totals, (previous action, 0).
    transitions: BoundedCounter,
    /// Keys: intent, (intent, prefix), (intent, action).
    intents: BoundedCounter,
    /// The names (authorities, path segments) of the resource patterns the agent uses, learned
    /// when a pattern is new and never faded: the agent's vocabulary of places.
    names: BoundedCounter,
    volumes: Vec<VolumeStat>,
    /// Hour-of-week histogram of learned events.
    hist: HourHistogram,
    /// Peaks of events, bytes and distinct resources per short window, per time-of-day block.
    rate_peak: Peaks,
    /// Peak of events per hour, per time-of-day block.
    hour_peak: Peaks,
    bytes_peak: Peaks,
    breadth_peak: Peaks,
    /// Peak of denied/failed events per window.
    failed_peak: Peak,
    /// Address classes (see `keys::address_class`) the agent learned to act from.
    ip_classes: u8,
    /// Oldest data (days) the agent routinely reads, as a decaying peak, and how many dated
    /// events it learned.
    age_peak: Peak,
    dated: u32,
    /// Window maxima of the current hour (events, bytes, distinct, failed), committed to the
    /// peaks when the hour ends, and only if no event of that hour was judged anomalous: a
    /// burst must not raise the baseline it is measured against.
    pending: [f32; 5],
    /// Busiest block of the rate, hour, bytes and breadth peaks.
    busiest: [u8; 4],
    pending_hour: u32,
    pending_clean: bool,
    /// The day on which hours with anomalous events last lifted the peaks, and the blocks
    /// (bits) they lifted that day: such a lift happens at most once a day per block, whatever
    /// clean hours raised before it.
    lifted_day: u32,
    lifted_blocks: u16,
    /// A new network on trial: (network, first use, events from it).
    net_trial: Option<(u64, Minute, u32)>,
    /// Last time an event came from a learned network.
    known_net_at: Minute,
    ring: MinuteRing,
    distinct: DistinctWindow,
    sessions: Vec<SessionState>,
    /// The places taken up since the agent matured, and their daily use (allocated when it
    /// matures).
    probation: Option<Box<Probation>>,
}

/// Everything the detectors read about one event, in numbers. Computed before learning.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// The event arrived later than the allowed lateness: it is scored, but not counted in the
    /// activity windows.
    pub late: bool,
    /// 0 (new agent) .. 1 (mature baseline).
    pub maturity: f32,
    /// Days between the first and this event.
    pub history_days: f32,
    /// Decayed number of learned events.
    pub learned_weight: f32,
    /// Share of learned events that introduced a new resource pattern (the agent's own
    /// novelty base rate).
    pub novel_rate: f32,
    /// The action.
    pub action: Lookup,
    /// Distinct actions known.
    pub actions_known: u32,
    /// The generalised resource pattern.
    pub pattern: Lookup,
    /// Distinct patterns known.
    pub patterns_known: u32,
    /// The resource prefix.
    pub prefix: Lookup,
    /// Distinct prefixes known.
    pub prefixes_known: u32,
    /// The action on this pattern.
    pub action_pattern: Lookup,
    /// The exact resource.
    pub resource: Lookup,
    /// Share of learned events on an exact resource new to the agent (high for agents whose
    /// work is a stream of new objects, low for agents with a stable working set).
    pub novel_exact_rate: f32,
    /// Share of this pattern's learned uses that touched an exact resource new to the agent
    /// (low for a fixed set of accounts behind one pattern, high for a stream of new ids).
    pub pattern_churn: f32,
    /// The source address.
    pub ip: Option<Lookup>,
    /// The source network.
    pub net: Option<Lookup>,
    /// The agent has used only this new network for a while: it moved (a redeploy), rather
    /// than someone else using its identity alongside it.
    pub migrated: bool,
    /// The source address is of a class (private, public, other) the agent never acted from.
    pub new_ip_class: bool,
    /// Minutes since the agent last acted from a network it knows (None if never).
    pub since_known_net: Option<u32>,
    /// Distinct source addresses and networks known.
    pub ips_known: u32,
    /// Distinct source networks known.
    pub nets_known: u32,
    /// Events, failures and bytes in the current window (including this event).
    pub window: WindowSums,
    /// Distinct resources in the current window.
    pub distinct: u32,
    /// Baseline peaks for this time of day: events, bytes and distinct resources per window.
    pub rate_peak: f32,
    /// Age of the data this event names, and the oldest the agent routinely reads (after at
    /// least 20 dated events).
    pub data_age: Option<(f32, f32)>,
    /// Events in the last hour (including this event).
    pub hour_events: u32,
    /// Baseline peak of events per hour for this time of day.
    pub hour_peak: f32,
    /// Bytes per window.
    pub bytes_peak: f32,
    /// Distinct resources per window.
    pub breadth_peak: f32,
    /// Failed events per window.
    pub failed_peak: f32,
    /// Share of learned events that failed.
    pub failed_rate: f32,
    /// Volume statistics of this action.
    pub volume: Option<VolumeStat>,
    /// Previous action in the session, with the count of transitions out of it and of this one.
    pub transition: Option<(f32, f32)>,
    /// Share of learned activity in this hour of the week and in this hour of the day.
    pub hour_share: f32,
    /// Share in this hour of the day (all weekdays).
    pub day_hour_share: f32,
    /// Intent: (sessions-events with this intent, of those on this prefix, of those with this
    /// action).
    pub intent: Option<(f32, f32, f32)>,
    /// When the pattern is not yet established: the names it mentions (see
    /// [`generalise::names`]), each with what the agent knows of it. Empty otherwise.
    pub names: SmallVec<[(u64, Lookup); 6]>,
    /// The event's area, pattern or resource, when the agent took it up recently (see
    /// [`probation`]): its daily use since.
    pub uptake: Option<Uptake>,
}

/// Whether `resource` is a new member of a stable set behind a known pattern (another account
/// behind `acct_{hex}`, another repository): a well-used pattern (`pattern`) whose uses rarely
/// touch a resource new to the agent (`churn`, see [`Observation::pattern_churn`]).
pub(crate) fn new_member(resource: Lookup, pattern: Lookup, churn: f32) -> bool {
    !resource.seen && pattern.count >= 20.0 && churn < 0.1
}

impl AgentProfile {
    /// An empty profile for an agent first seen at `minute`.
    pub fn new(cap: &Capacity, minute: Minute) -> Self {
        let sk = |entries: usize| (entries * 16).next_power_of_two();
        AgentProfile {
            first_minute: minute,
            last_minute: minute,
            events: 0,
            learned: 0,
            late: 0,
            learned_weight: Peak::default(),
            novel_weight: Peak::default(),
            novel_exact_weight: Peak::default(),
            failed_weight: Peak::default(),
            actions: BoundedCounter::new(cap.actions, sk(cap.actions / 2)),
            patterns: BoundedCounter::new(cap.patterns, sk(cap.patterns)),
            prefixes: BoundedCounter::new(cap.prefixes, sk(cap.prefixes / 2)),
            action_patterns: BoundedCounter::new(cap.patterns, sk(cap.patterns)),
            resources: BoundedCounter::new(cap.patterns, sk(cap.patterns)),
            pattern_churn: BoundedCounter::new(cap.patterns / 2, 64),
            ips: BoundedCounter::new(cap.ips, sk(cap.ips)),
            nets: BoundedCounter::new(cap.ips / 2, sk(cap.ips / 2)),
            transitions: BoundedCounter::new(cap.transitions, sk(cap.transitions / 2)),
            intents: BoundedCounter::new(cap.intents, sk(cap.intents / 2)),
            names: BoundedCounter::new(cap.names, sk(cap.names / 2)),
            volumes: Vec::new(),
            hist: HourHistogram::new(minute),
            rate_peak: Peaks::default(),
            hour_peak: Peaks::default(),
            bytes_peak: Peaks::default(),
            breadth_peak: Peaks::default(),
            failed_peak: Peak::default(),
            age_peak: Peak::default(),
            dated: 0,
            ip_classes: 0,
            pending: [0.0; 5],
            busiest: [0; 4],
            pending_hour: minute / 60,
            pending_clean: true,
            lifted_day: 0,
            lifted_blocks: 0,
            net_trial: None,
            known_net_at: minute,
            ring: MinuteRing::default(),
            distinct: DistinctWindow::default(),
            sessions: Vec::new(),
            probation: None,
        }
    }

    /// An upper bound of the memory this profile can ever use, whatever its traffic.
    #[cfg(test)]
    pub fn max_bytes(&self, cap: &Capacity) -> usize {
        std::mem::size_of::<Self>()
            + self.actions.max_bytes()
            + self.patterns.max_bytes()
            + self.prefixes.max_bytes()
            + self.action_patterns.max_bytes()
            + self.resources.max_bytes()
            + self.pattern_churn.max_bytes()
            + self.ips.max_bytes()
            + self.nets.max_bytes()
            + self.transitions.max_bytes()
            + self.intents.max_bytes()
            + self.names.max_bytes()
            + cap.volumes * std::mem::size_of::<VolumeStat>()
            + HourHistogram::HEAP_BYTES
            + 4 * BLOCKS * std::mem::size_of::<Peak>()
            + MinuteRing::MAX_HEAP_BYTES
            + DistinctWindow::max_bytes(cap.distinct)
            + cap.sessions * std::mem::size_of::<SessionState>()
            + Probation::MAX_BYTES
    }

    /// Bytes this profile holds now, heap included (compare with [`AgentProfile::max_bytes`]).
    pub fn allocated_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + [
                &self.actions,
                &self.patterns,
                &self.prefixes,
                &self.action_patterns,
                &self.resources,
                &self.pattern_churn,
                &self.ips,
                &self.nets,
                &self.transitions,
                &self.intents,
                &self.names,
            ]
            .iter()
            .map(|c| c.allocated_bytes())
            .sum::<usize>()
            + self.volumes.capacity() * std::mem::size_of::<VolumeStat>()
            + self.hist.allocated_bytes()
            + self.rate_peak.allocated_bytes()
            + self.hour_peak.allocated_bytes()
            + self.bytes_peak.allocated_bytes()
            + self.breadth_peak.allocated_bytes()
            + self.ring.allocated_bytes()
            + self.distinct.allocated_bytes()
            + self.sessions.capacity() * std::mem::size_of::<SessionState>()
            + self.probation.as_ref().map_or(0, |p| p.allocated_bytes())
    }

    /// What the agent is known to use, as fleet first-use keys: its actions, resource patterns
    /// and areas, and (the same table for both kinds) its intent pairs. Used to enter an agent
    /// into a peer group it joins after its first uses.
    pub fn known_uses(&self) -> Vec<(crate::fleet::UseKind, u64)> {
        use crate::fleet::UseKind;
        let mut v = Vec::new();
        for (kind, table) in [
            (UseKind::Action, &self.actions),
            (UseKind::Pattern, &self.patterns),
            (UseKind::Prefix, &self.prefixes),
            (UseKind::IntentPrefix, &self.intents),
            (UseKind::IntentAction, &self.intents),
            (UseKind::Name, &self.names),
        ] {
            v.extend(table.keys().into_iter().map(|k| (kind, k)));
        }
        v
    }

    /// The actions the agent is known to use (held exactly), in key order.
    pub fn known_actions(&self) -> impl Iterator<Item = u64> + '_ {
        self.actions.held()
    }

    /// Serialises the profile compactly (postcard).
    pub fn to_bytes(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }

    /// Restores a profile serialised by [`AgentProfile::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    fn block(minute: Minute) -> usize {
        let how = ((minute / 60 + 72) % 168) as usize;
        let day = how / 24;
        let weekend = day >= 5;
        (how % 24) / 4 + if weekend { 6 } else { 0 }
    }

    /// Records the event in the activity windows (always) and returns what the detectors need.
    /// Call [`AgentProfile::learn`] afterwards with the verdict.
    pub fn observe(
        &mut self,
        k: &EventKeys<'_>,
        bytes: u64,
        settings: &ProfileSettings,
        cap: &Capacity,
        window_min: u32,
        decay: Decay,
    ) -> Observation {
        let now = k.minute;
        self.events += 1;
        let late_limit = self
            .last_minute
            .saturating_sub(settings.max_lateness_secs / 60);
        let is_late = now < late_limit;
        let pattern = self.patterns.get(k.pattern_id, now, decay);
        let resource = self.resources.get(k.resource, now, decay);
        let churn =
            (self.pattern_churn.get(k.pattern_id, now, decay).count + 1.0) / (pattern.count + 2.0);
        // New to the agent: a new pattern, or a new member of a stable set behind a known one.
        let novel = pattern.count < 1.0 || new_member(resource, pattern, churn);
        if is_late {
            self.late += 1;
        } else {
            // Every event from now on that is not late is at or after `late_limit`, and its
            // sums reach back at most the longer of the two windows.
            let read_from = late_limit.saturating_sub(window_min.max(60));
            self.ring.add(now, k.failed, novel, bytes, read_from);
        }
        self.last_minute = self.last_minute.max(now);
        let distinct = if is_late {
            0
        } else {
            self.distinct.add(now, k.resource, window_min, cap.distinct)
        };
        let history_days = now.saturating_sub(self.first_minute) as f32 / 1440.0;
        let learned_weight = self.learned_weight.get(now, decay);
        let maturity = {
            let by_days = if settings.learning_days > 0.0 {
                (history_days / settings.learning_days as f32).min(1.0)
            } else {
                1.0
            };
            let by_events = if settings.learning_events > 0 {
                (self.learned as f32 / settings.learning_events as f32).min(1.0)
            } else {
                1.0
            };
            by_days.min(by_events)
        };
        let block = Self::block(now);
        let transition = k.session.and_then(|s| {
            let st = self.sessions.iter().find(|st| { st.key } == s)?;
            let from = self
                .transitions
                .get(pair(st.last_action, 0), now, decay)
                .count;
            let this = self
                .transitions
                .get(pair(st.last_action, k.action), now, decay)
                .count;
            Some((from, this))
        });
        let intent = k.intent.map(|i| {
            (
                self.intents.get(i, now, decay).count,
                self.intents.get(pair(i, k.prefix_id), now, decay).count,
                self.intents.get(pair(i, k.action), now, decay).count,
            )
        });
        let (hour_share, day_hour_share) = self.hist.shares(k.hour_of_week);
        let net = k.net.map(|n| self.nets.get(n, now, decay));
        let migrated = match (k.net, net) {
            (Some(n), Some(l)) if l.count < 1.0 => {
                let trial = match self.net_trial {
                    Some((t, first, count)) if t == n => (t, first, count + 1),
                    _ => (n, now, 1),
                };
                self.net_trial = Some(trial);
                trial.2 >= 10 && now >= trial.1 + 30 && self.known_net_at < trial.1
            }
            (Some(_), Some(_)) => {
                // Only real addresses: a service acting on the agent's behalf (`AWS Internal`,
                // `secretsmanager.amazonaws.com`) is not the agent being somewhere.
                if k.ip_class & 3 != 0 {
                    self.known_net_at = self.known_net_at.max(now);
                }
                false
            }
            _ => false,
        };
        let lw = learned_weight.max(1e-6);
        let (window, hour) = if is_late {
            Default::default()
        } else {
            self.ring.sums_two(now, window_min, 60)
        };
        let since_known_net = (self.learned > 0).then(|| now.saturating_sub(self.known_net_at));
        let names = if pattern.count < 1.0 {
            generalise::names(&k.pattern)
                .map(|n| {
                    let key = keys::key(keys::ns::NAME, n);
                    (key, self.names.get(key, now, Decay::NONE))
                })
                .collect()
        } else {
            SmallVec::new()
        };
        let prefix = self.prefixes.get(k.prefix_id, now, decay);
        let uptake = if is_late || maturity < 1.0 {
            None
        } else {
            let place = if !prefix.seen {
                Some((k.prefix_id, k.prefix_id, Place::Area))
            } else if !pattern.seen {
                Some((k.pattern_id, k.prefix_id, Place::Pattern))
            } else if new_member(resource, pattern, churn) {
                Some((k.resource, k.pattern_id, Place::Resource))
            } else {
                None
            };
            self.take_up(now, [k.prefix_id, k.pattern_id, k.resource], place)
        };
        Observation {
            names,
            uptake,
            new_ip_class: k.ip_class & 3 != 0
                && self.learned >= 20
                && self.ip_classes & k.ip_class == 0,
            since_known_net,
            migrated,
            late: is_late,
            maturity,
            history_days,
            learned_weight,
            novel_rate: (self.novel_weight.get(now, decay) + 1.0) / (lw + 2.0),
            action: self.actions.get(k.action, now, decay),
            actions_known: self.actions.distinct(),
            pattern,
            resource,
            novel_exact_rate: (self.novel_exact_weight.get(now, decay) + 1.0) / (lw + 2.0),
            pattern_churn: churn,
            patterns_known: self.patterns.distinct(),
            prefix,
            prefixes_known: self.prefixes.distinct(),
            action_pattern: self.action_patterns.get(k.action_pattern, now, decay),
            ip: k.ip.map(|ip| self.ips.get(ip, now, decay)),
            net,
            ips_known: self.ips.distinct(),
            nets_known: self.nets.distinct(),
            window,
            distinct,
            rate_peak: peak_for(&self.rate_peak, block, self.busiest[0], now, decay),
            data_age: k
                .data_age_days
                .filter(|_| self.dated >= 20)
                .map(|a| (a as f32, self.age_peak.get(now, decay))),
            hour_events: hour.events,
            hour_peak: peak_for(&self.hour_peak, block, self.busiest[1], now, decay),
            bytes_peak: peak_for(&self.bytes_peak, block, self.busiest[2], now, decay),
            breadth_peak: peak_for(&self.breadth_peak, block, self.busiest[3], now, decay),
            failed_peak: self.failed_peak.get(now, decay),
            failed_rate: (self.failed_weight.get(now, decay) + 0.5) / (lw + 10.0),
            volume: self.volumes.iter().find(|v| v.key == k.action).copied(),
            transition,
            hour_share,
            day_hour_share,
            intent,
        }
    }

    /// Counts a mature agent's event on probation, and puts the place it takes up (if any:
    /// `(key, group, kind)`) on probation. Returns the event's place on probation as seen with
    /// the event counted.
    fn take_up(
        &mut self,
        now: Minute,
        keys: [u64; 3],
        place: Option<(u64, u64, Place)>,
    ) -> Option<Uptake> {
        let p = self.probation.get_or_insert_with(Default::default);
        let uptake = p.observe(now, keys);
        if let (None, Some((key, group, place))) = (&uptake, place) {
            p.take_up(now, key, group, place);
        }
        uptake
    }

    /// Learns the event into the baseline, at the given [`Learning`] pace.
    pub fn learn(
        &mut self,
        k: &EventKeys<'_>,
        bytes: Option<u64>,
        obs: &Observation,
        pace: Learning,
        cap: &Capacity,
        decay: Decay,
    ) {
        let now = k.minute;
        let full = pace == Learning::Full;
        let (w, once) = match pace {
            Learning::Full => (1.0, false),
            Learning::Provisional => (0.34, false),
            Learning::Slow => (0.34, true),
        };
        self.stage_peaks(obs, now, full, decay);
        if full {
            self.learned += 1;
            let lw = self.learned_weight.get(now, decay);
            self.learned_weight = Peak {
                value: lw + 1.0,
                at: now.max(self.learned_weight.at),
            };
            if !obs.pattern.seen {
                let nw = self.novel_weight.get(now, decay);
                self.novel_weight = Peak {
                    value: nw + 1.0,
                    at: now.max(self.novel_weight.at),
                };
            }
            if !obs.resource.seen {
                self.pattern_churn.add(k.pattern_id, 1.0, now, decay, false);
                let nw = self.novel_exact_weight.get(now, decay);
                self.novel_exact_weight = Peak {
                    value: nw + 1.0,
                    at: now.max(self.novel_exact_weight.at),
                };
            }
            if k.failed {
                let fw = self.failed_weight.get(now, decay);
                self.failed_weight = Peak {
                    value: fw + 1.0,
                    at: now.max(self.failed_weight.at),
                };
            }
            self.hist.add(k.hour_of_week, now, decay);
            self.ip_classes |= k.ip_class;
            if let Some(age) = k.data_age_days {
                self.dated = self.dated.saturating_add(1);
                let cur = self.age_peak.get(now, decay);
                if age as f32 > cur {
                    self.age_peak = Peak {
                        value: age as f32,
                        at: now.max(self.age_peak.at),
                    };
                }
            }
            if let Some(b) = bytes {
                self.learn_volume(k.action, b, cap);
            }
        }
        self.actions.add(k.action, w, now, decay, once);
        self.patterns.add(k.pattern_id, w, now, decay, once);
        self.prefixes.add(k.prefix_id, w, now, decay, once);
        self.action_patterns
            .add(k.action_pattern, w, now, decay, once);
        // Exact resources behind a pattern that keeps producing new ones (a customer id per
        // ticket, a partition per run) are not a working set: counting them would only churn.
        if obs.pattern.count < 20.0 || obs.pattern_churn < 0.5 {
            self.resources.add(k.resource, w, now, decay, once);
        }
        if let (Some(ip), Some(net)) = (k.ip, k.net) {
            self.ips.add(ip, w, now, decay, once);
            self.nets.add(net, w, now, decay, once);
        }
        for (n, _) in &obs.names {
            self.names.add(*n, w, now, Decay::NONE, once);
        }
        if let Some(i) = k.intent {
            self.intents.add(i, w, now, decay, once);
            self.intents.add(pair(i, k.prefix_id), w, now, decay, once);
            self.intents.add(pair(i, k.action), w, now, decay, once);
        }
        if let Some(s) = k.session {
            let prev = self.sessions.iter().position(|st| { st.key } == s);
            if let Some(p) = prev {
                let last = self.sessions[p].last_action;
                self.transitions.add(pair(last, 0), w, now, decay, once);
                self.transitions
                    .add(pair(last, k.action), w, now, decay, once);
                self.sessions[p].last_action = k.action;
                self.sessions[p].at = now.max(self.sessions[p].at);
            } else {
                if self.sessions.len() >= cap.sessions {
                    // Replace the session idle the longest.
                    if let Some((i, _)) =
                        self.sessions.iter().enumerate().min_by_key(|(_, st)| st.at)
                    {
                        self.sessions.swap_remove(i);
                    }
                }
                self.sessions.push(SessionState {
                    key: s,
                    last_action: k.action,
                    at: now,
                });
            }
        }
    }

    fn stage_peaks(&mut self, obs: &Observation, now: Minute, full: bool, decay: Decay) {
        let hour = now / 60;
        if hour > self.pending_hour {
            let at = self.pending_hour * 60 + 59;
            let block = Self::block(at);
            // A clean hour raises the peaks to what it saw. An hour with anomalous events
            // moves them a third of the way, at most once a day per block, so a recurring
            // burst (a nightly job) becomes normal within days and a one-off one does not.
            // The day's lifts are tracked on their own: a clean hour earlier in the block (the
            // quiet hour before the job) raising a peak must not use up the day's lift.
            let day = at / 1440;
            let bit = 1u16 << block;
            if self.lifted_day != day {
                self.lifted_day = day;
                self.lifted_blocks = 0;
            }
            let share = if self.pending_clean {
                1.0
            } else if self.lifted_blocks & bit == 0 {
                0.34
            } else {
                0.0
            };
            if share > 0.0 {
                let p = self.pending;
                // The raised peak, if `v` raises it (a block's peaks are only allocated then).
                let lift = |peak: Peak, v: f32| {
                    let cur = peak.get(at, decay);
                    (v > cur).then(|| Peak {
                        value: cur + share * (v - cur),
                        at: at.max(peak.at),
                    })
                };
                // Whether any peak rose: an anomalous hour that raised none leaves the day's
                // lift for the block unused.
                let mut rose = false;
                if let Some(r) = lift(self.rate_peak.get(block), p[0]) {
                    self.rate_peak.set(block, r);
                    rose = true;
                }
                if let Some(r) = lift(self.bytes_peak.get(block), p[1]) {
                    self.bytes_peak.set(block, r);
                    rose = true;
                }
                if let Some(r) = lift(self.breadth_peak.get(block), p[2]) {
                    self.breadth_peak.set(block, r);
                    rose = true;
                }
                if let Some(r) = lift(self.failed_peak, p[3]) {
                    self.failed_peak = r;
                    rose = true;
                }
                if let Some(r) = lift(self.hour_peak.get(block), p[4]) {
                    self.hour_peak.set(block, r);
                    rose = true;
                }
                if rose && !self.pending_clean {
                    self.lifted_blocks |= bit;
                }
                self.busiest = [
                    busiest(&self.rate_peak, at, decay),
                    busiest(&self.hour_peak, at, decay),
                    busiest(&self.bytes_peak, at, decay),
                    busiest(&self.breadth_peak, at, decay),
                ];
            }
            self.pending = [0.0; 5];
            self.pending_hour = hour;
            self.pending_clean = true;
        }
        if obs.late {
            return;
        }
        self.pending_clean &= full;
        let p = &mut self.pending;
        p[0] = p[0].max(obs.window.events as f32);
        p[1] = p[1].max(obs.window.bytes as f32);
        p[2] = p[2].max(obs.distinct as f32);
        p[3] = p[3].max(obs.window.failed as f32);
        p[4] = p[4].max(obs.hour_events as f32);
    }

    fn learn_volume(&mut self, action: u64, bytes: u64, cap: &Capacity) {
        let x = (bytes as f32).ln_1p();
        let idx = match self.volumes.iter().position(|v| v.key == action) {
            Some(i) => i,
            None => {
                if self.volumes.len() >= cap.volumes {
                    let (i, _) = self
                        .volumes
                        .iter()
                        .enumerate()
                        .min_by(|a, b| a.1.n.total_cmp(&b.1.n))
                        .expect("non-empty");
                    self.volumes.swap_remove(i);
                }
                self.volumes.push(VolumeStat {
                    key: action,
                    ..Default::default()
                });
                self.volumes.len() - 1
            }
        };
        let v = &mut self.volumes[idx];
        // Exponentially weighted mean and variance whose weight floors at 1/500, so the
        // statistics follow slow drift.
        let n = (v.n + 1.0).min(500.0);
        let alpha = 1.0 / n;
        let delta = x - v.mean;
        v.mean += alpha * delta;
        v.var = (1.0 - alpha) * (v.var + alpha * delta * delta);
        v.n = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AccessEvent, Format, Outcome};
    use std::borrow::Cow;

    fn ev(t: i64, action: &str, resource: String, ip: &str) -> AccessEvent<'static> {
        AccessEvent {
            format: Format::Native,
            event_id: Cow::Owned(format!("e{t}")),
            time_ms: t,
            agent_id: "a".into(),
            agent_kind: None,
            action: Cow::Owned(action.to_string()),
            resource: Cow::Owned(resource),
            outcome: Outcome::Success,
            session_id: Some(Cow::Owned(format!("s{}", t / 600_000))),
            source_ip: Some(Cow::Owned(ip.to_string())),
            bytes: Some((t % 100_000) as u64),
            grant: None,
            intent: Some("i".into()),
            attributes: None,
            tool: None,
        }
    }

    #[test]
    fn memory_stays_bounded_whatever_the_traffic() {
        let settings = ProfileSettings::default();
        let cap = Capacity::for_bytes(settings.max_bytes_per_agent);
        let decay = Decay::with_half_life_days(settings.half_life_days);
        let mut p = AgentProfile::new(&cap, 0);
        let bound = p.max_bytes(&cap);
        assert!(
            bound <= settings.max_bytes_per_agent,
            "bound {bound} exceeds the setting"
        );
        // A flood of unique actions, resources, addresses and sessions.
        for i in 0..50_000i64 {
            let e = ev(
                1_700_000_000_000 + i * 1000,
                &format!("act{}", i % 5000),
                format!("svc://{}/{}", i % 3000, i),
                &format!("10.{}.{}.{}", i % 200, i % 97, i % 13),
            );
            let k = EventKeys::of(&e);
            let o = p.observe(&k, e.bytes.unwrap_or(0), &settings, &cap, 5, decay);
            p.learn(
                &k,
                e.bytes,
                &o,
                [Learning::Full, Learning::Provisional, Learning::Slow][(i % 3) as usize],
                &cap,
                decay,
            );
        }
        let held = p.allocated_bytes();
        assert!(held <= bound, "holds {held} bytes > bound {bound}");
        let serialised = p.to_bytes().unwrap().len();
        assert!(
            serialised <= bound,
            "serialised {serialised} > bound {bound}"
        );
        assert_eq!(AgentProfile::from_bytes(&p.to_bytes().unwrap()).unwrap(), p);
    }
}

//! Places on probation: the resource areas, patterns and members of stable working sets an agent
//! took up after its learning period, with its daily use of each since.
//!
//! Places are judged in groups: the patterns taken up in one area (several repositories of
//! another team), the members taken up behind one pattern (several accounts), or an area alone.
//!
//! A baseline that learns follows slow change: that is its purpose, and also how it is poisoned.
//! An attacker who does a little of the target behaviour on the first day and a little more
//! each day is learned a little each day, so every day's dose looks like the day before's. What
//! is kept here is a reference that learning does not move: for each place taken up in the last
//! [`PROBATION_DAYS`] days, how often the agent used it on each day since it first did, and how
//! many events the agent had on those days. The `trend` detector reads it.

use serde::{Deserialize, Serialize};

use super::counter::Minute;

/// How long a place stays on probation, in days (its first day included).
pub(crate) const PROBATION_DAYS: usize = 14;

/// Places on probation at once; the least used one makes room for a new one.
pub(crate) const MAX_PLACES: usize = 8;

/// What kind of place was taken up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Place {
    /// A resource area (`postgres://finance`) the agent never used.
    Area,
    /// A resource pattern (`git://org/payments-service`) in an area it uses.
    Pattern,
    /// A new member of a stable working set (another account behind a known pattern).
    Resource,
}

/// One place on probation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Entry {
    /// The key of the area, pattern or resource (their namespaces keep them apart).
    key: u64,
    /// The key of its group: the area of an area or a pattern, the pattern of a resource.
    group: u64,
    place: Place,
    /// Day (minutes / 1440) it was taken up.
    first_day: u32,
    /// Uses on each day since, the first day first.
    uses: [u16; PROBATION_DAYS],
}

impl Entry {
    fn total(&self) -> u32 {
        self.uses.iter().map(|&u| u32::from(u)).sum()
    }
}

/// What the detectors see of the place an event used, when it is on probation: the use of its
/// group.
#[derive(Clone, Debug, PartialEq)]
pub struct Uptake {
    /// What kind of place.
    pub place: Place,
    /// Places of the group on probation.
    pub places: usize,
    /// Days since the first of the group was taken up (0: today).
    pub age_days: usize,
    /// Uses of the group's places on each day since (index 0: the first day; this event
    /// included).
    pub uses: [u16; PROBATION_DAYS],
    /// The agent's events on each of those days (this event included; a day before the agent
    /// matured, or older than the record, counts 0).
    pub events: [u32; PROBATION_DAYS],
    /// The agent's usual events per day: the median over the finished days of the last
    /// [`PROBATION_DAYS`] it was active (0 when there are none).
    pub usual_events: u32,
}

/// The places an agent has on probation, and its events per day over the same span.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Probation {
    places: Vec<Entry>,
    /// The agent's events per day: `(day, events)`, indexed by day modulo [`PROBATION_DAYS`].
    days: [(u32, u32); PROBATION_DAYS],
}

impl Probation {
    /// Most bytes it can hold.
    #[cfg(test)]
    pub const MAX_BYTES: usize =
        std::mem::size_of::<Probation>() + MAX_PLACES * std::mem::size_of::<Entry>();

    /// Bytes held now.
    pub fn allocated_bytes(&self) -> usize {
        std::mem::size_of::<Probation>() + self.places.capacity() * std::mem::size_of::<Entry>()
    }

    /// Counts one event of the agent at `minute`, and one use of each place on probation among
    /// `keys` (an event's area, pattern and resource). Returns the group of the first of them,
    /// as seen with this event counted.
    pub fn observe(&mut self, minute: Minute, keys: [u64; 3]) -> Option<Uptake> {
        let day = minute / 1440;
        let slot = &mut self.days[day as usize % PROBATION_DAYS];
        if slot.0 != day {
            *slot = (day, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        self.places
            .retain(|e| (day.saturating_sub(e.first_day) as usize) < PROBATION_DAYS);
        let mut seen = None;
        for e in &mut self.places {
            if !keys.contains(&e.key) || day < e.first_day {
                continue;
            }
            let age = (day - e.first_day) as usize;
            e.uses[age] = e.uses[age].saturating_add(1);
            seen = seen.or(Some((e.place, e.group)));
        }
        let (place, group) = seen?;
        let members = || self.places.iter().filter(|e| e.group == group);
        let first_day = members().map(|e| e.first_day).min()?;
        let mut uses = [0u16; PROBATION_DAYS];
        for e in members() {
            let offset = (e.first_day - first_day) as usize;
            for (u, n) in uses[offset..].iter_mut().zip(e.uses) {
                *u = u.saturating_add(n);
            }
        }
        Some(Uptake {
            place,
            places: members().count(),
            age_days: (day - first_day) as usize,
            uses,
            events: self.events_since(first_day),
            usual_events: self.usual_events(day),
        })
    }

    /// Whether `key` is on probation.
    pub fn holds(&self, key: u64) -> bool {
        self.places.iter().any(|e| e.key == key)
    }

    /// Puts a place the agent just took up (at `minute`, by the event already counted) on
    /// probation, in `group`. When all places are taken, the least used one (the oldest among
    /// equals) makes room.
    pub fn take_up(&mut self, minute: Minute, key: u64, group: u64, place: Place) {
        if self.holds(key) {
            return;
        }
        if self.places.len() >= MAX_PLACES {
            let victim = self
                .places
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| (e.total(), e.first_day))
                .map(|(i, _)| i);
            if let Some(i) = victim {
                self.places.swap_remove(i);
            }
        }
        let mut uses = [0; PROBATION_DAYS];
        uses[0] = 1;
        self.places.push(Entry {
            key,
            group,
            place,
            first_day: minute / 1440,
            uses,
        });
    }

    /// The median of the agent's events per day over the finished days of the record it was
    /// active on.
    fn usual_events(&self, today: u32) -> u32 {
        let mut v: Vec<u32> = self
            .days
            .iter()
            .filter(|(d, n)| *d < today && *n > 0 && today - *d < PROBATION_DAYS as u32)
            .map(|&(_, n)| n)
            .collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    }

    /// The agent's events on each day from `first_day` on.
    fn events_since(&self, first_day: u32) -> [u32; PROBATION_DAYS] {
        let mut out = [0; PROBATION_DAYS];
        for (i, n) in out.iter_mut().enumerate() {
            let day = first_day + i as u32;
            let (d, events) = self.days[day as usize % PROBATION_DAYS];
            if d == day {
                *n = events;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Minute = 1440;

    #[test]
    fn counts_uses_and_events_per_day_since_uptake() {
        let mut p = Probation::default();
        let t0 = 20_000 * DAY + 600;
        assert_eq!(p.observe(t0, [1, 2, 3]), None);
        p.take_up(t0, 2, 1, Place::Pattern);
        for _ in 0..4 {
            p.observe(t0 + 10, [9, 8, 7]);
        }
        let u = p.observe(t0 + DAY, [1, 2, 3]).expect("on probation");
        assert_eq!(u.place, Place::Pattern);
        assert_eq!(u.age_days, 1);
        assert_eq!(&u.uses[..3], &[1, 1, 0]);
        assert_eq!(&u.events[..3], &[5, 1, 0]);
        assert_eq!(u.usual_events, 5);
        // Another pattern of the same area, taken up the next day, is judged with the first.
        p.observe(t0 + DAY, [1, 4, 5]);
        p.take_up(t0 + DAY, 4, 1, Place::Pattern);
        p.observe(t0 + 2 * DAY, [1, 4, 6]);
        let u = p.observe(t0 + 2 * DAY, [1, 2, 6]).expect("on probation");
        assert_eq!((u.places, u.age_days), (2, 2));
        assert_eq!(&u.uses[..3], &[1, 2, 2]);
    }

    #[test]
    fn places_leave_probation_after_its_span_and_the_least_used_makes_room() {
        let mut p = Probation::default();
        let t0 = 20_000 * DAY;
        for k in 0..MAX_PLACES as u64 {
            p.observe(t0, [k, 100, 100]);
            p.take_up(t0, k, k, Place::Area);
        }
        // Place 3 is used again: it stays when another is taken up.
        p.observe(t0 + 1, [3, 100, 100]);
        p.observe(t0 + 2, [50, 100, 100]);
        p.take_up(t0 + 2, 50, 50, Place::Area);
        assert!(p.holds(3) && p.holds(50));
        assert_eq!(p.places.len(), MAX_PLACES);
        let late = t0 + PROBATION_DAYS as Minute * DAY;
        assert_eq!(p.observe(late, [3, 50, 100]), None);
        assert!(p.places.is_empty());
    }
}

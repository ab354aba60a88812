//! Per agent and grant, with bounded memory: how often the grant was used, when, for which
//! actions, on which generalised resource patterns, and by sessions stating which intents.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::days::Days;
use crate::profile::counter::reserve_gently;

/// Most distinct actions remembered per grant.
pub(crate) const MAX_ACTIONS: usize = 32;
/// Most distinct resource patterns remembered per grant.
pub(crate) const MAX_PATTERNS: usize = 32;
/// Most distinct intents remembered per grant.
pub(crate) const MAX_INTENTS: usize = 8;
/// Most grants remembered per agent.
pub(crate) const MAX_GRANTS: usize = 64;

const DAY_MS: i64 = 86_400_000;

/// A name (grant, action, resource pattern, intent) as ledgers keep it: shared by every ledger
/// that names it, instead of a copy per agent and grant, and held through a thin pointer (one
/// word per use). Serialised as the string.
#[derive(Clone, PartialEq, Eq)]
pub struct Name(Arc<Box<str>>);

impl Name {
    /// The shared name for `s`.
    pub fn new(s: &str) -> Name {
        let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = names.set.get(s) {
            return Name(a.0.clone());
        }
        if names.set.len() >= names.purge_at {
            // Forget the names no ledger holds any more.
            names.set.retain(|a| Arc::strong_count(&a.0) > 1);
            names.purge_at = (names.set.len() * 2).max(4096);
        }
        let a: Arc<Box<str>> = Arc::new(Box::from(s));
        names.set.insert(Interned(a.clone()));
        Name(a)
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
        Ok(Name::new(&s))
    }
}

/// A name in the shared set, looked up by its text.
#[derive(PartialEq, Eq, Hash)]
struct Interned(Arc<Box<str>>);

impl std::borrow::Borrow<str> for Interned {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The names ledgers hold.
struct Names {
    set: rustc_hash::FxHashSet<Interned>,
    /// Size at which names no longer held are forgotten.
    purge_at: usize,
}

static NAMES: std::sync::LazyLock<Mutex<Names>> = std::sync::LazyLock::new(|| {
    Mutex::new(Names {
        set: Default::default(),
        purge_at: 4096,
    })
});

/// Distinct values with counts and the event time each was first seen, at most `cap` of them;
/// values beyond are counted as overflow.
///
/// The values are held in one list grown one at a time (a grant's tallies are small and gain a
/// value rarely, so a list with room to spare would cost more than the copies it saves).
/// Serialised as the hashes, then the values with their counts and first times.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    items: Vec<TallyItem>,
    /// Uses whose value did not fit.
    pub overflow: u32,
}

/// One value of a [`Tally`].
#[derive(Clone, Debug, PartialEq)]
struct TallyItem {
    /// Hash of the value (compared on the hot path instead of the text).
    key: u64,
    /// Event time it was first seen (epoch ms).
    first_ms: i64,
    value: Name,
    count: u32,
}

impl Tally {
    /// Counts `v`, whose hash is `key` (computed once per event by the engine).
    fn add(&mut self, key: u64, v: &str, t: i64, cap: usize) {
        if let Some(e) = self.items.iter_mut().find(|e| e.key == key) {
            e.count = e.count.saturating_add(1);
            e.first_ms = e.first_ms.min(t);
        } else if self.items.len() < cap {
            self.items.reserve_exact(1);
            self.items.push(TallyItem {
                key,
                first_ms: t,
                value: Name::new(v),
                count: 1,
            });
        } else {
            self.overflow = self.overflow.saturating_add(1);
        }
    }

    /// The values, most used first (ties by value).
    pub fn ranked(&self) -> Vec<(&str, u32)> {
        let mut v: Vec<(&str, u32)> = self
            .items
            .iter()
            .map(|e| (e.value.as_ref(), e.count))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// The values, sorted.
    pub fn sorted(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.items.iter().map(|e| e.value.as_ref()).collect();
        v.sort_unstable();
        v
    }

    /// The values with the event time each was first seen.
    pub fn first_seen(&self) -> impl Iterator<Item = (&str, i64)> {
        self.items.iter().map(|e| (e.value.as_ref(), e.first_ms))
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.overflow == 0
    }
}

/// A [`Tally`] as serialised.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Tally")]
struct StoredTally {
    keys: Vec<u64>,
    items: Vec<(Name, u32, i64)>,
    overflow: u32,
}

impl Serialize for Tally {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredTally {
            keys: self.items.iter().map(|e| e.key).collect(),
            items: self
                .items
                .iter()
                .map(|e| (e.value.clone(), e.count, e.first_ms))
                .collect(),
            overflow: self.overflow,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tally {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = StoredTally::deserialize(d)?;
        if t.keys.len() != t.items.len() {
            return Err(serde::de::Error::invalid_length(
                t.keys.len(),
                &"as many hashes as values",
            ));
        }
        let items = t
            .keys
            .into_iter()
            .zip(t.items)
            .map(|(key, (value, count, first_ms))| TallyItem {
                key,
                first_ms,
                value,
                count,
            })
            .collect();
        Ok(Tally {
            items,
            overflow: t.overflow,
        })
    }
}

/// The use of one grant by one agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantUse {
    /// The grant id.
    pub grant: Name,
    /// Uses by events judged normal (the baseline).
    pub uses: u64,
    /// Uses by anomalous events, which never justify a grant.
    pub anomalous: u64,
    /// Event time of the first and last normal use (epoch ms).
    pub first_ms: i64,
    /// See `first_ms`.
    pub last_ms: i64,
    /// Normal uses per day (days since 1970), the most recent days used.
    days: Days,
    /// Actions used.
    pub actions: Tally,
    /// Generalised resource patterns used.
    pub patterns: Tally,
    /// Stated intents of the sessions that used it.
    pub intents: Tally,
}

impl GrantUse {
    fn new(grant: &str) -> Self {
        GrantUse {
            grant: Name::new(grant),
            uses: 0,
            anomalous: 0,
            first_ms: i64::MAX,
            last_ms: i64::MIN,
            days: Days::default(),
            actions: Tally::default(),
            patterns: Tally::default(),
            intents: Tally::default(),
        }
    }

    /// Normal uses at or after `since_ms`.
    pub fn uses_since(&self, since_ms: i64) -> u64 {
        self.days.uses_since(since_ms.div_euclid(DAY_MS))
    }
}

/// One access, as the ledger records it. Each text comes with its hash, so that the hot path
/// compares integers.
#[derive(Clone, Copy, Debug)]
pub struct Use<'a> {
    /// The grant that authorised it.
    pub grant: &'a str,
    /// Event time, epoch ms.
    pub time_ms: i64,
    /// The action, and its hash.
    pub action: (u64, &'a str),
    /// The generalised resource pattern, and its hash.
    pub pattern: (u64, &'a str),
    /// The session's stated intent, and its hash.
    pub intent: Option<(u64, &'a str)>,
    /// Whether the event was judged anomalous.
    pub anomalous: bool,
}

/// What one agent did with its grants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Event time of the agent's first and latest event (epoch ms).
    pub first_ms: i64,
    /// See `first_ms`.
    pub last_ms: i64,
    /// Events observed.
    pub events: u64,
    /// Events no known grant covered.
    pub uncovered: u64,
    /// Boxed, so that room for more grants costs a pointer each.
    #[allow(clippy::vec_box)]
    grants: Vec<Box<GrantUse>>,
    /// Id of the last recommendation emitted per grant.
    emitted: Vec<(Name, u64)>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            first_ms: i64::MAX,
            last_ms: i64::MIN,
            events: 0,
            uncovered: 0,
            grants: Vec::new(),
            emitted: Vec::new(),
        }
    }
}

impl Ledger {
    /// Counts an event of the agent, whatever grant authorised it.
    pub fn observe(&mut self, time_ms: i64) {
        self.events += 1;
        self.first_ms = self.first_ms.min(time_ms);
        self.last_ms = self.last_ms.max(time_ms);
    }

    /// Days of history observed up to `now_ms`.
    pub fn history_days(&self, now_ms: i64) -> f64 {
        if self.events == 0 {
            return 0.0;
        }
        (now_ms.max(self.last_ms) - self.first_ms).max(0) as f64 / DAY_MS as f64
    }

    /// The use of a grant so far.
    pub fn grant(&self, grant: &str) -> Option<&GrantUse> {
        self.grants
            .iter()
            .find(|g| g.grant.as_ref() == grant)
            .map(|g| &**g)
    }

    /// Every grant used so far.
    pub fn grants(&self) -> impl Iterator<Item = &GrantUse> {
        self.grants.iter().map(|g| &**g)
    }

    /// Normal uses of a grant so far (0 when never used).
    pub fn normal_uses(&self, grant: &str) -> u64 {
        self.grant(grant).map_or(0, |g| g.uses)
    }

    /// Records a use of a grant.
    pub fn record(&mut self, u: &Use<'_>) {
        let i = match self.grants.iter().position(|g| g.grant.as_ref() == u.grant) {
            Some(i) => i,
            None if self.grants.len() < MAX_GRANTS => {
                reserve_gently(&mut self.grants, MAX_GRANTS);
                self.grants.push(Box::new(GrantUse::new(u.grant)));
                self.grants.len() - 1
            }
            None => return,
        };
        let g = &mut self.grants[i];
        if u.anomalous {
            g.anomalous += 1;
            return;
        }
        g.uses += 1;
        g.first_ms = g.first_ms.min(u.time_ms);
        g.last_ms = g.last_ms.max(u.time_ms);
        let day = u.time_ms.div_euclid(DAY_MS).clamp(0, u32::MAX as i64) as u32;
        g.days.add(day);
        g.actions
            .add(u.action.0, u.action.1, u.time_ms, MAX_ACTIONS);
        g.patterns
            .add(u.pattern.0, u.pattern.1, u.time_ms, MAX_PATTERNS);
        if let Some((k, i)) = u.intent {
            g.intents.add(k, i, u.time_ms, MAX_INTENTS);
        }
    }

    /// The id of the last recommendation emitted for `grant`.
    pub fn last_emission(&self, grant: &str) -> Option<u64> {
        self.emitted
            .iter()
            .find(|(g, _)| g.as_ref() == grant)
            .map(|(_, id)| *id)
    }

    /// Whether `id` is the last recommendation emitted for `grant`; if not, remembers it.
    pub fn first_emission(&mut self, grant: &str, id: u64) -> bool {
        match self.emitted.iter_mut().find(|(g, _)| g.as_ref() == grant) {
            Some(e) if e.1 == id => false,
            Some(e) => {
                e.1 = id;
                true
            }
            None => {
                self.emitted.push((Name::new(grant), id));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(grant: &str, t: i64, pattern: &str, anomalous: bool) -> Use<'static> {
        let pattern: &'static str = Box::leak(pattern.to_string().into_boxed_str());
        Use {
            grant: Box::leak(grant.to_string().into_boxed_str()),
            time_ms: t,
            action: (1, "db:Select"),
            pattern: (xxhash_rust::xxh3::xxh3_64(pattern.as_bytes()), pattern),
            intent: Some((2, "monthly variance report")),
            anomalous,
        }
    }

    #[test]
    fn counts_normal_uses_per_day_and_keeps_anomalous_apart() {
        let mut l = Ledger::default();
        for d in 0..40 {
            l.record(&u(
                "fin",
                d * DAY_MS + 1000,
                "postgres://finance/invoices",
                false,
            ));
        }
        l.record(&u("fin", 41 * DAY_MS, "postgres://finance/payroll", true));
        let g = l.grant("fin").unwrap();
        assert_eq!(g.uses, 40);
        assert_eq!(g.anomalous, 1);
        assert_eq!(g.uses_since(30 * DAY_MS), 10);
        assert_eq!(g.patterns.sorted(), vec!["postgres://finance/invoices"]);
        assert_eq!(l.normal_uses("other"), 0);
    }

    #[test]
    fn memory_is_bounded() {
        let mut l = Ledger::default();
        for i in 0..1000 {
            l.record(&u("g", i, &format!("p{i}"), false));
        }
        let g = l.grant("g").unwrap();
        assert_eq!(g.patterns.sorted().len(), MAX_PATTERNS);
        assert_eq!(g.patterns.overflow as usize, 1000 - MAX_PATTERNS);
    }

    #[test]
    fn a_ledger_reads_back_what_it_wrote_and_what_earlier_versions_wrote() {
        let mut l = Ledger::default();
        for d in 0..5 {
            l.record(&u(
                "fin",
                d * DAY_MS,
                &format!("postgres://finance/t{d}"),
                false,
            ));
        }
        let bytes = postcard::to_stdvec(&l).unwrap();
        let back: Ledger = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, l);
        assert_eq!(back.grant("fin").unwrap().patterns.sorted().len(), 5);

        // A tally as it was laid out before: its hashes, then its values.
        #[derive(Serialize)]
        struct Before {
            keys: Vec<u64>,
            items: Vec<(String, u32, i64)>,
            overflow: u32,
        }
        let before = Before {
            keys: vec![7, 9],
            items: vec![("a".into(), 3, 10), ("b".into(), 1, 20)],
            overflow: 2,
        };
        let t: Tally = postcard::from_bytes(&postcard::to_stdvec(&before).unwrap()).unwrap();
        assert_eq!(t.ranked(), vec![("a", 3), ("b", 1)]);
        assert_eq!(
            t.first_seen().collect::<Vec<_>>(),
            vec![("a", 10), ("b", 20)]
        );
        assert_eq!(t.overflow, 2);
        assert_eq!(
            postcard::to_stdvec(&t).unwrap(),
            postcard::to_stdvec(&before).unwrap(),
            "written back as it was read"
        );

        let torn = Before {
            keys: vec![7],
            ..before
        };
        let err = postcard::from_bytes::<Tally>(&postcard::to_stdvec(&torn).unwrap());
        assert!(err.is_err(), "a hash without its value is refused");
    }

    #[test]
    fn a_recommendation_is_emitted_again_only_when_it_changes() {
        let mut l = Ledger::default();
        assert!(l.first_emission("g", 1));
        assert!(!l.first_emission("g", 1));
        assert!(l.first_emission("g", 2));
        assert!(l.first_emission("g", 1));
    }
}

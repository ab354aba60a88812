//! Fixed-size ids for the parts of an event the profiles count. Keys are 64-bit XXH3 hashes, which
//! are stable across processes and versions, so serialised profiles restore anywhere.

use std::borrow::Cow;

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::counter::{Minute, minute_of};
use super::generalise::{generalise, is_destination, prefix};
use crate::event::{AccessEvent, Outcome};

/// Hash of a string in a namespace.
#[inline]
pub fn key(namespace: u64, s: &str) -> u64 {
    xxh3_64_with_seed(s.as_bytes(), namespace)
}

/// Combines two keys into one.
#[inline]
pub fn pair(a: u64, b: u64) -> u64 {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&a.to_le_bytes());
    buf[8..].copy_from_slice(&b.to_le_bytes());
    xxh3_64(&buf)
}

/// Namespaces keep keys of different kinds apart.
pub mod ns {
    /// Actions.
    pub const ACTION: u64 = 1;
    /// Generalised resource patterns.
    pub const PATTERN: u64 = 2;
    /// Resource prefixes (areas).
    pub const PREFIX: u64 = 3;
    /// Exact resources.
    pub const RESOURCE: u64 = 4;
    /// Source addresses.
    pub const IP: u64 = 5;
    /// Source networks (/24 for IPv4, the whole string otherwise).
    pub const NET: u64 = 6;
    /// Sessions.
    pub const SESSION: u64 = 7;
    /// Stated intents.
    pub const INTENT: u64 = 8;
    /// Agent kinds and families (peer groups).
    pub const GROUP: u64 = 9;
    /// Names in resource patterns (authorities, path segments).
    pub const NAME: u64 = 10;
    /// Entities in tool calls (accounts, mail addresses, hosts, ...).
    pub const ENTITY: u64 = 11;
    /// Plain words of tool calls' arguments and results.
    pub const WORD: u64 = 12;
}

/// The keys of one event, computed once and shared by the profile and every detector.
#[derive(Clone, Debug)]
pub struct EventKeys<'a> {
    /// Event minute.
    pub minute: Minute,
    /// Hour of the week (0 = Monday 00:00 UTC).
    pub hour_of_week: u8,
    /// The generalised resource pattern.
    pub pattern: Cow<'a, str>,
    /// Action id.
    pub action: u64,
    /// Pattern id.
    pub pattern_id: u64,
    /// Prefix id.
    pub prefix_id: u64,
    /// Action x pattern id.
    pub action_pattern: u64,
    /// Exact resource id.
    pub resource: u64,
    /// Source address id.
    pub ip: Option<u64>,
    /// Source network id.
    pub net: Option<u64>,
    /// Class of the source address (a bit: see [`address_class`]), 0 when there is none.
    pub ip_class: u8,
    /// Session id.
    pub session: Option<u64>,
    /// Intent id.
    pub intent: Option<u64>,
    /// Whether the resource is an outside destination.
    pub destination: bool,
    /// Age in days of the data the resource names (event day minus the date in the resource).
    pub data_age_days: Option<i64>,
    /// Whether the access was denied or failed.
    pub failed: bool,
}

impl<'a> EventKeys<'a> {
    /// Computes the keys of an event.
    pub fn of(ev: &'a AccessEvent<'_>) -> Self {
        let resource = key(ns::RESOURCE, &ev.resource);
        let (pattern, place) = Place::of(&ev.resource);
        Self::with(ev, resource, pattern, &place)
    }

    /// The keys of an event whose resource's keys are known.
    fn with(ev: &'a AccessEvent<'_>, resource: u64, pattern: Cow<'a, str>, place: &Place) -> Self {
        let action = key(ns::ACTION, &ev.action);
        let (ip, net) = match ev.source_ip.as_deref() {
            Some(ip) if !ip.is_empty() => (Some(key(ns::IP, ip)), Some(key(ns::NET, network(ip)))),
            _ => (None, None),
        };
        let minute = minute_of(ev.time_ms);
        // 1970-01-01 was a Thursday: shift so that 0 is Monday 00:00.
        let hour_of_week = (((ev.time_ms.max(0) / 3_600_000) + 72) % 168) as u8;
        EventKeys {
            minute,
            hour_of_week,
            action,
            pattern_id: place.pattern_id,
            prefix_id: place.prefix_id,
            action_pattern: pair(action, place.pattern_id),
            resource,
            ip,
            net,
            ip_class: ev.source_ip.as_deref().map_or(0, address_class),
            session: ev.session_id.as_deref().map(|s| key(ns::SESSION, s)),
            intent: ev.intent.as_deref().map(|s| key(ns::INTENT, s)),
            destination: place.destination,
            data_age_days: place.day.map(|d| ev.time_ms.div_euclid(86_400_000) - d),
            failed: ev.outcome != Outcome::Success,
            pattern,
        }
    }

    /// The prefix (area) of the event's pattern.
    pub fn prefix(&self) -> &str {
        prefix(&self.pattern)
    }
}

/// What an event's keys take from its resource alone.
#[derive(Clone, Debug)]
struct Place {
    pattern_id: u64,
    prefix_id: u64,
    destination: bool,
    /// The day the resource names (days since the epoch), when generalising gave an owned
    /// pattern.
    day: Option<i64>,
}

impl Place {
    /// The pattern of `resource` and what its keys take from it.
    fn of(resource: &str) -> (Cow<'_, str>, Place) {
        let pattern = generalise(resource);
        let place = Place {
            pattern_id: key(ns::PATTERN, &pattern),
            prefix_id: key(ns::PREFIX, prefix(&pattern)),
            destination: is_destination(resource),
            day: if matches!(pattern, Cow::Owned(_)) {
                super::generalise::resource_day(resource)
            } else {
                None
            },
        };
        (pattern, place)
    }
}

/// A resource remembered by a [`KeyCache`]: the resource, its pattern when generalising gave
/// an owned one, and its keys.
type Remembered = (Box<str>, Option<Box<str>>, Place);

/// Remembers what the keys of recent resources took from them (their pattern and its keys), so
/// that a resource seen again is not generalised again (unless another resource has taken its
/// slot since). Direct-mapped on the resource's key: a slot holds the last resource that fell
/// on it. What it gives is exactly what [`EventKeys::of`] computes, so it changes no result,
/// only the time taken.
#[derive(Debug, Default)]
pub struct KeyCache {
    /// `SLOTS` slots once the first event arrives.
    slots: Vec<Option<Remembered>>,
}

impl KeyCache {
    /// Number of slots.
    const SLOTS: usize = 4096;

    /// Bytes held on the heap: the slots (allocated at the first event) and the resources and
    /// patterns they remember. A fixed cost of the engine, whatever its number of agents.
    pub fn allocated_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<Remembered>>()
            + self
                .slots
                .iter()
                .flatten()
                .map(|(r, p, _)| r.len() + p.as_ref().map_or(0, |p| p.len()))
                .sum::<usize>()
    }

    /// The keys of an event, as [`EventKeys::of`] computes them.
    pub fn keys<'a>(&mut self, ev: &'a AccessEvent<'_>) -> EventKeys<'a> {
        let resource = key(ns::RESOURCE, &ev.resource);
        if self.slots.is_empty() {
            self.slots.resize_with(Self::SLOTS, || None);
        }
        let slot = &mut self.slots[resource as usize % Self::SLOTS];
        if let Some((known, pattern, place)) = slot.as_ref()
            && **known == *ev.resource
        {
            let pattern = match pattern {
                Some(p) => Cow::Owned(p.to_string()),
                None => Cow::Borrowed(ev.resource.as_ref()),
            };
            return EventKeys::with(ev, resource, pattern, place);
        }
        let (pattern, place) = Place::of(&ev.resource);
        let owned = match &pattern {
            Cow::Owned(p) => Some(p.as_str().into()),
            Cow::Borrowed(_) => None,
        };
        let keys = EventKeys::with(ev, resource, pattern, &place);
        *slot = Some((ev.resource.as_ref().into(), owned, place));
        keys
    }
}

/// The class of a source address, as a bit: 1 private or loopback IPv4/IPv6, 2 public IPv4 or
/// IPv6, 4 anything else (a service name such as `AWS Internal`, or a malformed address).
pub(crate) fn address_class(ip: &str) -> u8 {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            if v4.is_private() || v4.is_loopback() || v4.is_link_local() {
                1
            } else {
                2
            }
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            if v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
            {
                1
            } else {
                2
            }
        }
        Err(_) => 4,
    }
}

/// The network part of an address: the /24 of a dotted IPv4 address, the /48 of an IPv6 address,
/// else the whole string (addresses are never assumed valid).
pub fn network(ip: &str) -> &str {
    if ip.contains(':') {
        let mut colons = 0;
        for (i, b) in ip.bytes().enumerate() {
            if b == b':' {
                colons += 1;
                if colons == 3 {
                    return &ip[..i];
                }
            }
        }
        return ip;
    }
    match ip.rfind('.') {
        Some(p) if ip.bytes().filter(|&b| b == b'.').count() == 3 => &ip[..p],
        _ => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        assert_eq!(network("10.1.2.3"), "10.1.2");
        assert_eq!(network("AWS Internal"), "AWS Internal");
        assert_eq!(network("2001:db8:1:2::1"), "2001:db8:1");
        assert_eq!(network("010.001.002.003"), "010.001.002");
    }

    #[test]
    fn address_classes() {
        assert_eq!(address_class("10.1.2.3"), 1);
        assert_eq!(address_class("192.168.10.20"), 1);
        assert_eq!(address_class("3.225.16.109"), 2);
        assert_eq!(address_class("AWS Internal"), 4);
        assert_eq!(address_class("010.001.002.003"), 4);
        assert_eq!(address_class("fd00::1"), 1);
    }

    fn event(t: i64, resource: String) -> AccessEvent<'static> {
        AccessEvent {
            format: crate::event::Format::Native,
            event_id: Cow::Owned(format!("e{t}")),
            time_ms: t,
            agent_id: "a".into(),
            agent_kind: None,
            action: "s3:GetObject".into(),
            resource: Cow::Owned(resource),
            outcome: Outcome::Success,
            session_id: Some("s".into()),
            source_ip: Some("10.1.2.3".into()),
            bytes: None,
            grant: None,
            intent: None,
            attributes: None,
            tool: None,
        }
    }

    #[test]
    fn the_cache_gives_the_keys_it_would_compute_whatever_it_remembers() {
        let kinds = [
            "s3://reports/2026/01/05/daily-{i}.csv",
            "s3://logs/{i}",
            "mailto:person{i}@example.com",
            "https://host{i}.example.org/path",
            "kb://support-articles",
            "arn:aws:iam::123456789012:role/role-{i}",
            "recipient:US13300000012121212{i}",
        ];
        let mut cache = KeyCache::default();
        assert_eq!(cache.allocated_bytes(), 0, "nothing before the first event");
        // More distinct resources than the cache has slots, each seen again later (after others
        // fell on its slot or not), at times a day apart so that the data's age differs.
        for round in 0..3i64 {
            for i in 0..(2 * KeyCache::SLOTS) {
                let kind = kinds[i % kinds.len()];
                let e = event(
                    1_767_600_000_000 + round * 86_400_000 + i as i64,
                    kind.replace("{i}", &(i % (KeyCache::SLOTS + 7)).to_string()),
                );
                let (cached, computed) = (cache.keys(&e), EventKeys::of(&e));
                assert_eq!(
                    format!("{cached:?}"),
                    format!("{computed:?}"),
                    "{}",
                    e.resource
                );
                let owned = |k: &EventKeys<'_>| matches!(k.pattern, Cow::Owned(_));
                assert_eq!(owned(&cached), owned(&computed), "{}", e.resource);
                // The resource is remembered, so that it is found if it comes again.
                let mut kept = cache.slots.iter().flatten();
                assert!(kept.any(|(r, _, _)| **r == *e.resource), "{}", e.resource);
                let again = cache.keys(&e);
                assert_eq!(
                    format!("{again:?}"),
                    format!("{computed:?}"),
                    "{}",
                    e.resource
                );
            }
        }
        // Its memory is bounded by its slots, whatever it has seen: each holds one resource and
        // at most one pattern no longer than it.
        let longest = cache.slots.iter().flatten().map(|(r, _, _)| r.len()).max();
        let slot = std::mem::size_of::<Option<Remembered>>();
        assert!(cache.allocated_bytes() > KeyCache::SLOTS * slot);
        assert!(
            cache.allocated_bytes() <= KeyCache::SLOTS * (slot + 2 * longest.unwrap_or(0)),
            "{} bytes",
            cache.allocated_bytes()
        );
    }
}

//! A grant's normal uses per day: the most recent [`MAX_DAYS`] days it was used on, with a
//! count each.
//!
//! A grant used most days is held as one count per calendar day from its oldest kept day (four
//! bytes a day, a day without use included); a grant used now and then as a list of the days it
//! was used on with their counts (eight bytes a used day). Each new day of use picks whichever
//! is smaller; both read and serialise the same (as the list), so the choice changes nothing a
//! reader sees.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Days of use kept, the most recent ones.
pub(crate) const MAX_DAYS: usize = 120;

/// Uses per day (days since 1970).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Days {
    /// No use yet.
    #[default]
    None,
    /// The days used, ascending, with their counts (each at least 1).
    Sparse(Vec<(u32, u32)>),
    /// The count of each day from `first` on (0 for a day without use); the first and last
    /// counts are never 0.
    Dense {
        /// The oldest day kept.
        first: u32,
        /// One count per day.
        counts: Vec<u32>,
    },
}

impl Days {
    /// Counts one use on `day`.
    #[inline]
    pub fn add(&mut self, day: u32) {
        match self {
            Days::Dense { first, counts }
                if day >= *first && counts.get((day - *first) as usize).is_some_and(|c| *c > 0) =>
            {
                let c = &mut counts[(day - *first) as usize];
                *c = c.saturating_add(1);
            }
            Days::Sparse(list) => match list.iter_mut().rev().find(|(d, _)| *d == day) {
                Some(e) => e.1 = e.1.saturating_add(1),
                None => self.add_day(day),
            },
            _ => self.add_day(day),
        }
    }

    /// Counts the first use on a day not used before: the day joins the list, the oldest
    /// drops out past [`MAX_DAYS`], and the layout is chosen again.
    #[cold]
    fn add_day(&mut self, day: u32) {
        let mut list = match std::mem::take(self) {
            Days::Sparse(list) => list,
            other => other.to_list(),
        };
        let at = list.partition_point(|(d, _)| *d < day);
        list.insert(at, (day, 1));
        if list.len() > MAX_DAYS {
            list.remove(0);
        }
        *self = Days::from_list(list);
    }

    /// Normal uses on `day` or later.
    pub fn uses_since(&self, day: i64) -> u64 {
        match self {
            Days::None => 0,
            Days::Sparse(list) => list
                .iter()
                .filter(|(d, _)| i64::from(*d) >= day)
                .map(|(_, n)| u64::from(*n))
                .sum(),
            Days::Dense { first, counts } => {
                let skip = (day - i64::from(*first)).clamp(0, counts.len() as i64) as usize;
                counts[skip..].iter().map(|n| u64::from(*n)).sum()
            }
        }
    }

    /// The days used, ascending, with their counts.
    pub fn to_list(&self) -> Vec<(u32, u32)> {
        match self {
            Days::None => Vec::new(),
            Days::Sparse(list) => list.clone(),
            Days::Dense { first, counts } => counts
                .iter()
                .zip(*first..)
                .filter(|(n, _)| **n > 0)
                .map(|(n, d)| (d, *n))
                .collect(),
        }
    }

    /// The smaller layout of a list of used days (ascending, at most [`MAX_DAYS`]).
    fn from_list(list: Vec<(u32, u32)>) -> Days {
        let (Some(&(first, _)), Some(&(last, _))) = (list.first(), list.last()) else {
            return Days::None;
        };
        let span = (last - first) as usize + 1;
        if span * 4 < list.len() * 8 {
            let mut counts = vec![0; span];
            for (d, n) in &list {
                counts[(d - first) as usize] = *n;
            }
            Days::Dense { first, counts }
        } else {
            let mut list = list;
            list.shrink_to_fit();
            Days::Sparse(list)
        }
    }

    /// Heap bytes held.
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        match self {
            Days::None => 0,
            Days::Sparse(list) => list.capacity() * 8,
            Days::Dense { counts, .. } => counts.capacity() * 4,
        }
    }
}

impl Serialize for Days {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_list().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut list = Vec::<(u32, u32)>::deserialize(d)?;
        // Held as written: ascending, each day once, no more than the most recent MAX_DAYS.
        list.sort_unstable();
        list.dedup_by(|b, a| {
            let same = a.0 == b.0;
            if same {
                a.1 = a.1.saturating_add(b.1);
            }
            same
        });
        list.retain(|(_, n)| *n > 0);
        if list.len() > MAX_DAYS {
            list.drain(..list.len() - MAX_DAYS);
        }
        Ok(Days::from_list(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The list the ledger kept before the layouts: the reference.
    fn reference(days: &[u32]) -> Vec<(u32, u32)> {
        let mut list: Vec<(u32, u32)> = Vec::new();
        for &day in days {
            match list.iter_mut().rev().find(|(d, _)| *d == day) {
                Some(e) => e.1 += 1,
                None => {
                    let at = list.partition_point(|(d, _)| *d < day);
                    list.insert(at, (day, 1));
                    if list.len() > MAX_DAYS {
                        list.remove(0);
                    }
                }
            }
        }
        list
    }

    proptest! {
        /// Whatever the days (in order, late, sparse or daily, past the bound), the uses read
        /// and written are those of the plain list of days.
        #[test]
        fn reads_as_the_list_of_days(
            days in proptest::collection::vec(
                prop_oneof![0u32..200, 1000u32..1010, 20_000u32..20_400],
                0..600,
            ),
            since in 0i64..20_500,
        ) {
            let mut d = Days::default();
            for &day in &days {
                d.add(day);
            }
            let list = reference(&days);
            prop_assert_eq!(d.to_list(), list.clone());
            let want: u64 = list
                .iter()
                .filter(|(day, _)| i64::from(*day) >= since)
                .map(|(_, n)| u64::from(*n))
                .sum();
            prop_assert_eq!(d.uses_since(since), want);
            let back: Days = postcard::from_bytes(&postcard::to_allocvec(&d).unwrap()).unwrap();
            prop_assert_eq!(back.to_list(), list.clone());
            prop_assert_eq!(
                postcard::to_allocvec(&d).unwrap(),
                postcard::to_allocvec(&list).unwrap()
            );
        }
    }

    #[test]
    fn a_grant_used_daily_costs_four_bytes_a_day_and_one_used_monthly_eight_a_use() {
        let mut daily = Days::default();
        let mut monthly = Days::default();
        for day in 20_000..20_120 {
            for _ in 0..3 {
                daily.add(day);
            }
            if day % 30 == 0 {
                monthly.add(day);
            }
        }
        assert_eq!(daily.heap_bytes(), 120 * 4);
        assert_eq!(daily.uses_since(20_090), 90);
        assert_eq!(monthly.to_list().len(), 4);
        assert_eq!(monthly.heap_bytes(), 4 * 8);
    }
}

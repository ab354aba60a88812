//! Input record counts, kept the same way by every driver. `records == events + dead_letters`
//! always holds.

use std::collections::BTreeMap;

use crate::event::Format;

/// What became of the input records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputCounts {
    /// Records read.
    pub records: u64,
    /// Valid events.
    pub events: u64,
    /// Records dead-lettered.
    pub dead_letters: u64,
    /// Dead letters by reason code.
    pub dead_by_reason: BTreeMap<&'static str, u64>,
    /// Events scored, by input format (indexed as [`Format::ALL`]).
    scored_by_format: [u64; Format::ALL.len()],
}

impl InputCounts {
    /// A valid event was read.
    pub fn event(&mut self) {
        self.records += 1;
        self.events += 1;
    }

    /// A valid event of `format` was scored.
    pub fn scored(&mut self, format: Format) {
        self.scored_by_format[format as usize] += 1;
    }

    /// A record was dead-lettered for `reason_code`.
    pub fn dead_letter(&mut self, reason_code: &'static str) {
        self.records += 1;
        self.dead_letters += 1;
        *self.dead_by_reason.entry(reason_code).or_default() += 1;
    }

    /// Events scored, by input format name (formats never seen are left out).
    pub fn by_format(&self) -> BTreeMap<&'static str, u64> {
        Format::ALL
            .iter()
            .zip(self.scored_by_format)
            .filter(|(_, n)| *n > 0)
            .map(|(f, n)| (f.as_str(), n))
            .collect()
    }

    /// ` (reason: n, ...)` for the dead letters, or nothing when there are none: the end of a
    /// summary's first line.
    pub fn dead_reasons(&self) -> String {
        if self.dead_by_reason.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .dead_by_reason
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!(" ({})", parts.join(", "))
    }

    /// Adds another driver thread's counts.
    pub fn add(&mut self, other: &InputCounts) {
        self.records += other.records;
        self.events += other.events;
        self.dead_letters += other.dead_letters;
        for (k, v) in &other.dead_by_reason {
            *self.dead_by_reason.entry(k).or_default() += v;
        }
        for (a, b) in self.scored_by_format.iter_mut().zip(other.scored_by_format) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_merge() {
        let mut a = InputCounts::default();
        a.event();
        a.scored(Format::Cloudtrail);
        a.dead_letter("not_json");
        let mut b = InputCounts::default();
        b.event();
        b.event();
        b.scored(Format::Native);
        b.dead_letter("not_json");
        a.add(&b);
        assert_eq!((a.records, a.events, a.dead_letters), (5, 3, 2));
        assert_eq!(a.dead_by_reason["not_json"], 2);
        assert_eq!(
            a.by_format(),
            BTreeMap::from([("cloudtrail", 1), ("native", 1)])
        );
        assert_eq!(a.dead_reasons(), " (not_json: 2)");
        assert_eq!(InputCounts::default().dead_reasons(), "");
    }

    #[test]
    fn formats_are_indexed_in_declaration_order() {
        for (i, f) in Format::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
        }
    }
}

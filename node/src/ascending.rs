//! A map for keys that a node hands out in ascending order: timer ids,
//! request ids.

/// A map from `K` to `V` kept as a vector sorted by key.
///
/// Built for ids that only grow: a new one is appended, and a lookup is a
/// binary search over the few entries in flight. An id out of order is
/// still placed where it sorts, so the type behaves as an ordered map
/// whatever the order of inserts. Cheaper than a `BTreeMap` for the short
/// sets a node keeps of its own timers or requests; hosts and nodes share
/// it so both keep the same kind of bookkeeping the same way.
#[derive(Clone, Debug)]
pub struct AscendingMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for AscendingMap<K, V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord + Copy, V> AscendingMap<K, V> {
    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[inline]
    fn position(&self, key: K) -> Result<usize, usize> {
        self.entries.binary_search_by(|entry| entry.0.cmp(&key))
    }

    /// Inserts `value` under `key`, returning the value it replaces.
    #[inline]
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.entries.last() {
            Some(last) if last.0 >= key => match self.position(key) {
                Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
                Err(at) => {
                    self.entries.insert(at, (key, value));
                    None
                }
            },
            _ => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// The value under `key`.
    #[inline]
    pub fn get(&self, key: K) -> Option<&V> {
        let at = self.position(key).ok()?;
        Some(&self.entries[at].1)
    }

    /// The value under `key`, to change in place.
    #[inline]
    pub fn get_mut(&mut self, key: K) -> Option<&mut V> {
        let at = self.position(key).ok()?;
        Some(&mut self.entries[at].1)
    }

    /// Removes and returns the value under `key`.
    #[inline]
    pub fn remove(&mut self, key: K) -> Option<V> {
        let at = self.position(key).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// Removes and returns the value under `key` if `wanted` says so,
    /// with one search.
    #[inline]
    pub fn remove_if(&mut self, key: K, wanted: impl FnOnce(&V) -> bool) -> Option<V> {
        let at = self.position(key).ok()?;
        if !wanted(&self.entries[at].1) {
            return None;
        }
        Some(self.entries.remove(at).1)
    }

    /// The values, in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|entry| &entry.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Random, SplitMix64};
    use std::collections::BTreeMap;

    /// It answers exactly as an ordered map would, over random inserts
    /// (mostly new, growing keys; some old ones), removals and lookups.
    #[test]
    fn behaves_as_an_ordered_map() {
        for seed in 0..20 {
            let mut rng = SplitMix64::new(seed);
            let mut map = AscendingMap::default();
            let mut model = BTreeMap::new();
            let mut next = 1u64;
            for step in 0..5_000u64 {
                match rng.below(10) {
                    0..=3 => {
                        next += 1 + rng.below(3);
                        assert_eq!(map.insert(next, step), model.insert(next, step));
                    }
                    4 => {
                        let key = rng.below(next + 1);
                        assert_eq!(map.insert(key, step), model.insert(key, step));
                    }
                    5..=6 => {
                        let key = rng.below(next + 1);
                        assert_eq!(map.remove(key), model.remove(&key));
                    }
                    7 => {
                        // Removed only when its value is even.
                        let key = rng.below(next + 1);
                        let expected = model.get(&key).copied().filter(|value| value % 2 == 0);
                        if expected.is_some() {
                            model.remove(&key);
                        }
                        assert_eq!(map.remove_if(key, |value| value % 2 == 0), expected);
                    }
                    _ => {
                        let key = rng.below(next + 1);
                        assert_eq!(map.get(key), model.get(&key));
                    }
                }
                assert_eq!(map.len(), model.len());
                assert_eq!(map.is_empty(), model.is_empty());
                assert!(map.values().eq(model.values()));
            }
        }
    }
}

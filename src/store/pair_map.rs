//! The roll-up thread's app × owner sums: an open-addressing map from an id pair to a value,
//! updated a group of keys at a time.
//!
//! The largest roll-up (app × user, ~150,000 entries for a 1,500-user log, ~7 MB) is much larger
//! than a core's cache, and the facts that update it arrive in an order unrelated to its layout.
//! With a `HashMap`, every update stalled on memory for its key: one compare held 56 % of the
//! roll-up thread's samples. Here the slots of a group of keys (key and value) are read first,
//! each read independent of the others, so their cache misses overlap; the updates that follow
//! find the slots in cache.

/// Marks an empty slot. Ids are SQLite rowids, so this key should never occur; should it, its
/// value is kept beside the table rather than lost.
const EMPTY: (i64, i64) = (i64::MIN, i64::MIN);

/// Keys whose slots are read ahead together: enough misses in flight to hide most of the
/// latency, few enough that the reads fit the core's reorder window.
const GROUP: usize = 8;

/// Slots of a new, non-empty table.
const MIN_SLOTS: usize = 1024;

pub struct PairMap<V> {
    keys: Vec<(i64, i64)>,
    vals: Vec<V>,
    /// Occupied slots.
    len: usize,
    /// 64 − log2(slots): a hash's top bits pick the slot.
    shift: u32,
    empty_key: Option<V>,
}

impl<V: Copy + Default> Default for PairMap<V> {
    fn default() -> Self {
        PairMap { keys: Vec::new(), vals: Vec::new(), len: 0, shift: 64, empty_key: None }
    }
}

impl<V: Copy + Default> PairMap<V> {
    pub fn len(&self) -> usize {
        self.len + usize::from(self.empty_key.is_some())
    }

    fn slot_of(&self, key: (i64, i64)) -> usize {
        let h = (key.0 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (key.1 as u64);
        // The multiply's best bits are its top ones.
        (h.wrapping_mul(0xd6e8_feb8_6659_fd93) >> self.shift) as usize
    }

    /// Adds `items(0) … items(n - 1)`, combining values of equal keys with `combine`.
    pub fn add_all(&mut self, n: usize, item: impl Fn(usize) -> ((i64, i64), V), combine: impl Fn(&mut V, &V)) {
        let mut start = 0;
        while start < n {
            let end = (start + GROUP).min(n);
            self.make_room(end - start);
            for i in start..end {
                let slot = self.slot_of(item(i).0);
                std::hint::black_box((self.keys[slot], self.vals[slot]));
            }
            for i in start..end {
                let (key, v) = item(i);
                self.add(key, &v, &combine);
            }
            start = end;
        }
    }

    fn add(&mut self, key: (i64, i64), v: &V, combine: &impl Fn(&mut V, &V)) {
        if key == EMPTY {
            match &mut self.empty_key {
                Some(have) => combine(have, v),
                None => self.empty_key = Some(*v),
            }
            return;
        }
        let mask = self.keys.len() - 1;
        let mut slot = self.slot_of(key);
        loop {
            let k = self.keys[slot];
            if k == key {
                combine(&mut self.vals[slot], v);
                return;
            }
            if k == EMPTY {
                self.keys[slot] = key;
                self.vals[slot] = *v;
                self.len += 1;
                return;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Grows the table, if need be, so that `more` new keys keep it at most three quarters full.
    fn make_room(&mut self, more: usize) {
        let slots = self.keys.len();
        if (self.len + more) * 4 <= slots * 3 {
            return;
        }
        let mut grown = (slots * 2).max(MIN_SLOTS);
        while (self.len + more) * 4 > grown * 3 {
            grown *= 2;
        }
        let keys = std::mem::replace(&mut self.keys, vec![EMPTY; grown]);
        let vals = std::mem::replace(&mut self.vals, vec![V::default(); grown]);
        self.shift = 64 - grown.trailing_zeros();
        self.len = 0;
        let keep = |_: &mut V, _: &V| {};
        for (k, v) in keys.into_iter().zip(vals).filter(|(k, _)| *k != EMPTY) {
            self.add(k, &v, &keep);
        }
    }

    /// The entries, in no particular order.
    pub fn into_vec(self) -> Vec<((i64, i64), V)> {
        let mut out: Vec<((i64, i64), V)> = Vec::with_capacity(self.len());
        out.extend(self.keys.into_iter().zip(self.vals).filter(|(k, _)| *k != EMPTY));
        out.extend(self.empty_key.map(|v| (EMPTY, v)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Same sums as a BTreeMap for any keys, the empty-slot marker and heavy collisions
        /// (few distinct keys, ids at the extremes) included.
        #[test]
        fn sums_like_a_btree_map(
            items in proptest::collection::vec(
                (prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), -3i64..3000],
                 prop_oneof![Just(i64::MIN), -3i64..50], 0u64..1000),
                0..3000,
            ),
        ) {
            let mut map = PairMap::<u64>::default();
            map.add_all(items.len(), |i| ((items[i].0, items[i].1), items[i].2), |a, b| *a += b);
            let mut want: BTreeMap<(i64, i64), u64> = BTreeMap::new();
            for (a, b, v) in &items {
                *want.entry((*a, *b)).or_default() += v;
            }
            prop_assert_eq!(map.len(), want.len());
            let mut got = map.into_vec();
            got.sort_unstable();
            prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn grows_past_many_slots_and_keeps_every_entry() {
        let mut map = PairMap::<u64>::default();
        let n = 100_000usize;
        map.add_all(n, |i| ((i as i64 % 300, i as i64 / 300), 1), |a, b| *a += b);
        map.add_all(n, |i| ((i as i64 % 300, i as i64 / 300), 2), |a, b| *a += b);
        assert_eq!(map.len(), n);
        assert!(map.keys.len() >= n * 4 / 3 && map.keys.len() <= n * 8 / 3, "{} slots", map.keys.len());
        assert!(map.into_vec().iter().all(|(_, v)| *v == 3));
    }
}

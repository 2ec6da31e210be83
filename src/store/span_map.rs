//! The app × user and app × device roll-ups an import sums in memory: an open-addressing table
//! whose slots can be fetched into the cache ahead of use. With ~150,000 pairs a million Squid
//! lines (7 MB), each of the ~650,000 facts' look-ups missed the cache, and waiting on that
//! one load was half the roll-up thread's time; a general hash map cannot say where a key's
//! slot is before it looks.
use super::packed::{Entry, Span};
use super::write::FastMap;

/// How many look-ups ahead a caller fetches slots: a cache miss lasts about as long as this many
/// facts take to sum.
pub const AHEAD: usize = 16;

/// (app, owner) ids.
pub type Pair = (i64, i64);

/// An empty slot's app id. A real pair with this app id (a cache file's ids are positive
/// row ids, so never in practice) is kept aside.
const EMPTY: i64 = i64::MIN;

/// The pair first: it is what a probe reads.
#[derive(Clone, Copy)]
#[repr(C)]
struct Slot {
    pair: Pair,
    span: Span,
}

const VACANT: Slot =
    Slot { pair: (EMPTY, 0), span: Span { first: 0, last: 0, bytes_up: 0, bytes_down: 0, transactions: 0 } };

/// Pairs to the spans summed for them. Linear probing from a multiplicative hash's top bits;
/// at most seven eighths full, as `std`'s map, so that it takes no more memory than one.
#[derive(Default)]
pub struct SpanMap {
    slots: Vec<Slot>,
    len: usize,
    aside: FastMap<Pair, Span>,
}

impl SpanMap {
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len + self.aside.len()
    }

    fn home(&self, pair: Pair) -> usize {
        let bits = self.slots.len().trailing_zeros();
        let h = (pair.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (pair.1 as u64);
        // The top bits of a second multiply; none at all for a table of one slot.
        (h.wrapping_mul(0xD6E8_FEB8_6659_FD93).checked_shr(u64::BITS - bits).unwrap_or(0)) as usize
    }

    /// Asks the processor to start loading `pair`'s slot, so that a `merge` a few facts later
    /// finds it in the cache. A hint only: nothing is read or changed.
    pub fn prefetch(&self, pair: Pair) {
        if let Some(slot) = self.slots.get(self.home(pair)) {
            // Both ends: a 48-byte slot straddles two cache lines half the time.
            prefetch(&slot.pair);
            prefetch(&slot.span.transactions);
        }
    }

    /// Adds `span` to `pair`'s.
    pub fn merge(&mut self, pair: Pair, span: Span) {
        if pair.0 == EMPTY {
            self.aside.entry(pair).and_modify(|s| s.combine(&span)).or_insert(span);
            return;
        }
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(pair);
        loop {
            let slot = &mut self.slots[i];
            if slot.pair == pair {
                slot.span.combine(&span);
                return;
            }
            if slot.pair.0 == EMPTY {
                *slot = Slot { pair, span };
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let slots = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![VACANT; slots]);
        self.len = 0;
        let taken = || old.iter().filter(|s| s.pair.0 != EMPTY);
        let mut ahead = taken().skip(AHEAD);
        for s in taken() {
            if let Some(later) = ahead.next() {
                self.prefetch(later.pair);
            }
            self.merge(s.pair, s.span);
        }
    }

    /// Every pair with its span, in no particular order.
    pub fn into_vec(self) -> Vec<(Pair, Span)> {
        let mut v: Vec<(Pair, Span)> = Vec::with_capacity(self.len());
        v.extend(self.slots.into_iter().filter(|s| s.pair.0 != EMPTY).map(|s| (s.pair, s.span)));
        v.extend(self.aside);
        v
    }
}

#[cfg(target_arch = "x86_64")]
fn prefetch<T>(at: &T) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: a prefetch is a hint that never faults and neither reads nor writes memory as
    // far as the program can tell; the pointer comes from a live reference anyway.
    unsafe { _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast::<i8>()) }
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch<T>(_: &T) {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn span(day: i32, up: u64) -> Span {
        Span { first: day, last: day, bytes_up: up, bytes_down: 2 * up, transactions: 1 }
    }

    proptest! {
        /// Whatever the pairs (the empty marker's app id included) and however often the table
        /// grows, it sums exactly what a plain map sums.
        #[test]
        fn sums_what_a_plain_map_sums(
            adds in proptest::collection::vec(((prop_oneof![Just(i64::MIN), -3i64..40], 0i64..30), 0i32..9, 0u64..1000), 0..400)
        ) {
            let mut map = SpanMap::default();
            let mut plain: std::collections::HashMap<Pair, Span> = std::collections::HashMap::new();
            for &(pair, day, up) in &adds {
                map.prefetch(pair);
                map.merge(pair, span(day, up));
                plain.entry(pair).and_modify(|s| s.combine(&span(day, up))).or_insert(span(day, up));
            }
            prop_assert_eq!(map.len(), plain.len());
            let mut got = map.into_vec();
            got.sort_by_key(|(p, _)| *p);
            let mut want: Vec<(Pair, Span)> = plain.into_iter().collect();
            want.sort_by_key(|(p, _)| *p);
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn stays_within_seven_eighths_full() {
        let mut map = SpanMap::default();
        for owner in 0..10_000 {
            map.merge((7, owner), span(1, 1));
            assert!(map.len * 8 <= map.slots.len() * 7);
        }
        assert_eq!(map.slots.len(), 16_384);
    }
}

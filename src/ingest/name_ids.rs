//! Dense ids for the names a parser thread sees (users, devices, destinations): two or three
//! look-ups for every line. A name of up to 31 bytes is packed into four words,
//! folded to lower case a word at a time as it is packed, and hashed and compared as those
//! words inside the table's own slot. Kept as strings behind pointers, every look-up had taken
//! a lower-case scan, a byte-wise hash, a second cache miss and a `memcmp` call; what is left,
//! and still the largest single cost of the parser threads on a 1 M-line Squid import, is the
//! cache miss on the slot itself.
use crate::store::write::FastMap;

/// Longest name packed into words; the 32nd byte holds the length.
const PACKED: usize = 31;

/// A name of at most [`PACKED`] bytes, zero-padded, its length in the last byte: two names
/// are equal exactly when their words are.
type Packed = [u64; 4];

/// Whether a name is looked up as written or with ASCII letters folded to lower case.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Case {
    Exact,
    Fold,
}

/// What [`NameIds::id`] found.
pub(super) struct NameId {
    pub id: u32,
    /// The name as it is kept (folded when asked), when this look-up saw it first.
    pub new: Option<String>,
}

/// Names to consecutive ids from `first`, in order of first sight.
pub(super) struct NameIds {
    packed: FastMap<Packed, u32>,
    long: FastMap<Box<str>, u32>,
    first: u32,
}

impl NameIds {
    pub(super) fn starting_at(first: u32) -> NameIds {
        NameIds { packed: FastMap::default(), long: FastMap::default(), first }
    }

    fn next_id(&self) -> u32 {
        self.first + (self.packed.len() + self.long.len()) as u32
    }

    /// The id of `name` (folded first when asked), given it now when it is new.
    pub(super) fn id(&mut self, name: &str, case: Case) -> NameId {
        let kept = |name: &str| match case {
            Case::Exact => name.to_string(),
            Case::Fold => name.to_ascii_lowercase(),
        };
        if let Some(words) = pack(name.as_bytes(), case) {
            if let Some(&id) = self.packed.get(&words) {
                return NameId { id, new: None };
            }
            let id = self.next_id();
            self.packed.insert(words, id);
            return NameId { id, new: Some(kept(name)) };
        }
        let name = kept(name);
        if let Some(&id) = self.long.get(name.as_str()) {
            return NameId { id, new: None };
        }
        let id = self.next_id();
        self.long.insert(name.as_str().into(), id);
        NameId { id, new: Some(name) }
    }
}

/// `name` as [`Packed`] words, folded when asked; `None` when longer than [`PACKED`].
fn pack(name: &[u8], case: Case) -> Option<Packed> {
    if name.len() > PACKED {
        return None;
    }
    let mut bytes = [0u8; 32];
    bytes[..name.len()].copy_from_slice(name);
    // The length is below `A`: folding leaves it as it is.
    bytes[PACKED] = name.len() as u8;
    let mut words = [0u64; 4];
    for (w, b) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(b);
        *w = u64::from_le_bytes(word);
        if case == Case::Fold {
            *w = fold_word(*w);
        }
    }
    Some(words)
}

/// ASCII `A`–`Z` to `a`–`z` in each of a word's eight bytes; every other byte unchanged.
fn fold_word(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    // Each byte's low seven bits plus a constant sets its high bit exactly when they reach
    // `A` (or pass `Z`); the sums stay below 256, so no byte carries into the next.
    let low = w & !HIGH;
    let from_a = low + ONES * (0x80 - u64::from(b'A'));
    let past_z = low + ONES * (0x80 - u64::from(b'Z') - 1);
    let upper = from_a & !past_z & !w & HIGH;
    w | (upper >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_long_and_short_get_ids_in_order_of_first_sight() {
        let long = "a-host-name-longer-than-thirty-one-bytes.example.com";
        let mut ids = NameIds::starting_at(1);
        let mut id = |n: &str, case| {
            let got = ids.id(n, case);
            (got.id, got.new)
        };
        assert_eq!(id("Alice@Corp.Example", Case::Fold), (1, Some("alice@corp.example".into())));
        assert_eq!(id(long, Case::Fold), (2, Some(long.into())));
        assert_eq!(id("", Case::Exact), (3, Some(String::new())));
        assert_eq!(id("ünïcödé.example", Case::Fold), (4, Some("ünïcödé.example".into())));
        assert_eq!(id("alice@corp.example", Case::Fold), (1, None));
        assert_eq!(id("alice@corp.example", Case::Exact), (1, None));
        assert_eq!(id("ALICE@CORP.EXAMPLE", Case::Exact), (5, Some("ALICE@CORP.EXAMPLE".into())));
        assert_eq!(id(&long.to_uppercase(), Case::Fold), (2, None));
        assert_eq!(id(&long[..PACKED], Case::Fold), (6, Some(long[..PACKED].into())));
        assert_eq!(id(&long[..PACKED + 1], Case::Fold), (7, Some(long[..PACKED + 1].into())));
        assert_eq!(id("ÜNÏCÖDÉ.EXAMPLE", Case::Fold), (8, Some("ÜNÏCÖDÉ.EXAMPLE".to_ascii_lowercase())));
        // A name and the same name with a zero byte after it are different names.
        assert_eq!(id("a", Case::Exact).1, Some("a".into()));
        assert_eq!(id("a\0", Case::Exact).1, Some("a\0".into()));
    }

    #[test]
    fn folding_a_word_lowers_ascii_capitals_only() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'Q', 0, 0xC3, b'@', b'[', b'Z', b'A']);
            let want = u64::from_le_bytes([b.to_ascii_lowercase(), b'q', 0, 0xC3, b'@', b'[', b'z', b'a']);
            assert_eq!(fold_word(w), want, "{b:#x}");
        }
    }

    proptest! {
        /// Whatever the lengths (either side of the packed limit) and the case, a name keeps its
        /// first id, names that differ get different ones, and the folded look-up is the
        /// look-up of the lower-cased name.
        #[test]
        fn ids_match_a_plain_map(
            names in proptest::collection::vec(("[a-cA-CéÉ\\x00@\\[]{0,3}|[a-zA-Z.]{29,34}", any::<bool>()), 1..60)
        ) {
            let mut ids = NameIds::starting_at(0);
            let mut plain = std::collections::HashMap::new();
            for (n, fold) in &names {
                let (case, key) = if *fold { (Case::Fold, n.to_ascii_lowercase()) } else { (Case::Exact, n.clone()) };
                let got = ids.id(n, case);
                let next = plain.len() as u32;
                let known = plain.contains_key(&key);
                prop_assert_eq!(got.id, *plain.entry(key.clone()).or_insert(next));
                prop_assert_eq!(got.new, (!known).then_some(key));
            }
        }
    }
}

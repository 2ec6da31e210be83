//! Dense ids for the names a parser thread sees (users, devices, destinations), looked up once
//! per line. Names that fit are kept inside the table's own slots: with each name behind a
//! pointer of its own, every look-up took a second cache miss to compare the bytes, the largest
//! single cost of the parser threads on a 1 M-line Squid import.
use crate::store::write::FastMap;
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// Bytes a name may have and still be kept in its slot; most user principal names and host
/// names are shorter, and the slot stays 32 bytes.
const INLINE: usize = 30;

/// A name, in place when short enough. Hashes and compares as the bytes it holds, so that a
/// table of them is searched with a plain `&[u8]` (as bytes, not `str`, so that a look-up need
/// not check UTF-8 again).
enum Name {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Name {
    fn new(s: &str) -> Name {
        if s.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Name::Inline { len: s.len() as u8, bytes }
        } else {
            Name::Heap(s.into())
        }
    }
    fn bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Name::Heap(s) => s.as_bytes(),
        }
    }
}

impl Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes().hash(state);
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Name {}

/// Names to consecutive ids from `first`, in order of first sight.
pub(super) struct NameIds {
    ids: FastMap<Name, u32>,
    first: u32,
}

impl NameIds {
    pub(super) fn starting_at(first: u32) -> NameIds {
        NameIds { ids: FastMap::default(), first }
    }

    pub(super) fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name.as_bytes()).copied()
    }

    /// The id of a name `get` did not find.
    pub(super) fn insert_new(&mut self, name: &str) -> u32 {
        let id = self.first + self.ids.len() as u32;
        self.ids.insert(Name::new(name), id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_long_and_short_get_ids_in_order_of_first_sight() {
        let long = "a-host-name-longer-than-thirty-bytes.example.com";
        let mut ids = NameIds::starting_at(1);
        assert_eq!(ids.insert_new("alice@corp.example"), 1);
        assert_eq!(ids.insert_new(long), 2);
        assert_eq!(ids.insert_new(""), 3);
        assert_eq!(ids.insert_new("ünïcödé.example"), 4);
        assert_eq!(ids.get("alice@corp.example"), Some(1));
        assert_eq!(ids.get(long), Some(2));
        assert_eq!(ids.get(""), Some(3));
        assert_eq!(ids.get("ünïcödé.example"), Some(4));
        assert_eq!(ids.get("alice@corp.exampl"), None);
        assert_eq!(ids.get(&long[..INLINE]), None);
    }

    proptest! {
        /// Whatever the lengths (either side of the in-place limit), a name keeps its first id
        /// and names that differ get different ones.
        #[test]
        fn ids_match_a_plain_map(names in proptest::collection::vec("[a-zé]{0,3}|[a-z.]{28,33}", 1..60)) {
            let mut ids = NameIds::starting_at(0);
            let mut plain = std::collections::HashMap::new();
            for n in &names {
                let got = match ids.get(n) {
                    Some(id) => id,
                    None => ids.insert_new(n),
                };
                let next = plain.len() as u32;
                prop_assert_eq!(got, *plain.entry(n.clone()).or_insert(next));
            }
        }
    }
}

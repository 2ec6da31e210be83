//! Serde visitor pieces shared by the hand-written JSON decoders (the sync wire decoders and the
//! Defender streaming parser), which read only the fields they need.

/// The visits of JSON scalars (and null) for a visitor that wanted a container: they give the
/// value's default, as a missing field would.
macro_rules! scalars_are_empty {
    ($out:ty) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<$out, E> {
            Ok(Default::default())
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<$out, E> {
            Ok(Default::default())
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<$out, E> {
            Ok(Default::default())
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<$out, E> {
            Ok(Default::default())
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<$out, E> {
            Ok(Default::default())
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<$out, E> {
            Ok(Default::default())
        }
    };
}

pub(crate) use scalars_are_empty;

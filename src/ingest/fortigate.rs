//! Placeholder: the fortigate parser is being written. It registers no format yet.
use super::LogFormat;

pub static FORMATS: &[&dyn LogFormat] = &[];

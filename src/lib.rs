//! shadowscope: a keyboard-driven terminal console for Shadow IT investigation.
//!
//! Data flows one way: input → `keymap` → `app::Msg` → `app::update` → (`State`, `Effect`s) →
//! `runtime` → `Msg`. `ui` only reads `&State`. Nothing in `app` or `ui` touches SQLite, the
//! network or the clock.
pub mod catalog;
pub mod domain;
pub mod ingest;
pub mod sanitize;
pub mod sync;

//! shadowscope: a keyboard-driven terminal console for Shadow IT investigation.
//!
//! Data flows one way: input → `app::keymap` → `app::Msg` → `app::update` → (`State`, `Effect`s)
//! → `runtime` → `Msg`. `ui` only reads `&State`. Nothing in `app` or `ui` touches SQLite, the
//! network or the clock.
pub mod actions;
pub mod app;
pub mod catalog;
pub mod config;
pub mod demo;
pub mod domain;
pub mod event;
pub mod ingest;
mod json_visit;
mod packed_sort;
pub mod private_fs;
pub mod runtime;
pub mod sanitize;
pub mod store;
pub mod sync;
pub mod ui;

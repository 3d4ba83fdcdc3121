//! The rules: every decision Lifeboat makes, as pure functions over the
//! model, with the clock passed in and no AWS type in sight. Each is tested
//! table by table.

pub mod copy;
pub mod drill;
pub mod freshness;
pub mod naming;
pub mod planner;
pub mod retention;
pub mod selection;

//! Where `pg-dump` puts its archives in S3, and how `prune` and `freshness`
//! recognise them: `<prefix><database>/<yyyy>/<mm>/<dd>/<database>-<plan>-<yyyymmddThhmmZ>.<ext>`,
//! with the manifest at `<key>.manifest.json`, written last. A dump without a
//! manifest is incomplete by definition.

use crate::payload::Plan;
use crate::slot::Slot;
use chrono::{DateTime, NaiveDateTime, Utc};

/// The suffix of a dump's manifest key.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The file endings of the two dump formats.
pub const EXTENSIONS: [&str; 2] = ["dump", "sql"];

/// A dump's key, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpKey {
    /// The database's `name` in the payload (the backup's source).
    pub database: String,
    /// The plan that made it.
    pub plan: String,
    /// Its slot.
    pub slot: DateTime<Utc>,
}

/// The key of `database`'s dump for `slot` of `plan`, under `prefix` (empty, or ending in `/`).
pub fn dump_key(prefix: &str, database: &str, plan: &Plan, slot: Slot, extension: &str) -> String {
    let t = slot.time();
    format!(
        "{prefix}{database}/{}/{database}-{plan}-{}.{extension}",
        t.format("%Y/%m/%d"),
        t.format("%Y%m%dT%H%MZ")
    )
}

/// Reads a dump key (not a manifest key) back, wherever its prefix.
pub fn parse_dump_key(key: &str) -> Option<DumpKey> {
    let (path, extension) = key.rsplit_once('.')?;
    if !EXTENSIONS.contains(&extension) {
        return None;
    }
    let mut parts = path.rsplit('/');
    let file = parts.next()?;
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let database = parts.next()?;
    let rest = file.strip_prefix(database)?.strip_prefix('-')?;
    let (plan, stamp) = rest.rsplit_once('-')?;
    Plan::new(plan).ok()?;
    let slot = NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ")
        .ok()?
        .and_utc();
    (slot.format("%Y/%m/%d").to_string() == format!("{year}/{month}/{day}")).then(|| DumpKey {
        database: database.to_owned(),
        plan: plan.to_owned(),
        slot,
    })
}

/// The prefix a dump key was written under: what stands before `<database>/<yyyy>/<mm>/<dd>/<file>`.
pub fn key_prefix<'a>(key: &'a str, database: &str) -> &'a str {
    let rest = key.rsplitn(5, '/').nth(4).unwrap_or_default();
    rest.strip_suffix(database).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let plan = Plan::new("nightly").expect("plan");
        let slot = Slot::parse("2026-11-20T02:00:00Z", Utc::now()).expect("slot");
        let key = dump_key("pg/", "orders", &plan, slot, "dump");
        assert_eq!(
            key,
            "pg/orders/2026/11/20/orders-nightly-20261120T0200Z.dump"
        );
        let parsed = parse_dump_key(&key).expect("parses");
        assert_eq!(key_prefix(&key, "orders"), "pg/");
        assert_eq!(
            key_prefix(
                "orders/2026/11/20/orders-nightly-20261120T0200Z.dump",
                "orders"
            ),
            ""
        );
        assert_eq!(parsed.database, "orders");
        assert_eq!(parsed.plan, "nightly");
        assert_eq!(parsed.slot, slot.time());
        let plain = dump_key(
            "",
            "my-db",
            &Plan::new("hourly-2").expect("plan"),
            slot,
            "sql",
        );
        assert_eq!(
            parse_dump_key(&plain).map(|k| (k.database, k.plan)),
            Some(("my-db".into(), "hourly-2".into()))
        );
    }

    #[test]
    fn other_objects_are_not_dumps() {
        for key in [
            "pg/orders/2026/11/20/orders-nightly-20261120T0200Z.dump.manifest.json",
            "pg/orders/2026/11/20/orders-nightly-20261120T0200Z.tar",
            "pg/orders/2026/11/21/orders-nightly-20261120T0200Z.dump",
            "pg/orders/2026/11/20/other-nightly-20261120T0200Z.dump",
            "notes.dump",
        ] {
            assert_eq!(parse_dump_key(key), None, "{key}");
        }
    }
}

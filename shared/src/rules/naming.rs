//! Every name Lifeboat gives a backup: derived from plan, source and slot, so
//! that a second run of the same slot finds the first one's backup by name
//! instead of making another. RDS snapshot identifiers, AMI names, and the S3
//! keys of dumps and their manifests:
//! `<prefix><database>/<yyyy>/<mm>/<dd>/<database>-<plan>-<yyyymmddThhmmZ>.<ext>`,
//! the manifest at `<key>.manifest.json`, written last (a dump without a
//! manifest is incomplete by definition).

use crate::model::{Plan, Slot};
use sha2::{Digest, Sha256};

/// The longest identifier RDS accepts for a DB cluster snapshot (DB instance
/// snapshots allow 255; one limit for both keeps names alike).
pub const RDS_SNAPSHOT_ID_MAX: usize = 63;

/// An RDS snapshot identifier for `source`'s backup in `slot` of `plan`:
/// `lb-<plan>-<yyyymmddhhmm>-<source>`, lower case.
///
/// Always valid under RDS rules (1 to `max_len` letters, digits and hyphens,
/// a letter first, no hyphen last, never two in a row) and still unique: when
/// the readable form had to lose anything (case aside, which RDS ignores), a
/// hash of the exact plan and source is appended, so two sources that differ
/// only in the lost part get different names.
pub fn rds_snapshot_id(plan: &Plan, source: &str, slot: Slot, max_len: usize) -> String {
    let readable_plan = sanitize(plan.as_str());
    let readable_source = sanitize(source);
    let head = format!("lb-{readable_plan}-{}", slot.compact());
    let full = if readable_source.is_empty() {
        head.clone()
    } else {
        format!("{head}-{readable_source}")
    };
    let lossless = readable_plan == plan.as_str()
        && readable_source == source.to_ascii_lowercase()
        && !readable_source.is_empty();
    if lossless && full.len() <= max_len {
        return full;
    }
    let hash = short_hash(plan.as_str(), source);
    // Room for the source after `<head>-` and before `-<hash>`.
    let room = max_len.saturating_sub(head.len() + 2 + hash.len());
    let kept = readable_source[..room.min(readable_source.len())].trim_end_matches('-');
    if kept.is_empty() {
        format!("{head}-{hash}")
    } else {
        format!("{head}-{kept}-{hash}")
    }
}

/// The AMI name of `instance`'s image for `slot` of `plan`: unique per account
/// and region, within AMI naming rules (3 to 128 characters of letters, digits
/// and `()[] ./-'@_`).
pub fn image_name(plan: &Plan, instance: &str, slot: Slot) -> String {
    format!("lifeboat-{plan}-{instance}-{}", slot.compact())
}

/// The suffix of a dump's manifest key.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The endings of the dump formats' keys: a custom archive, a plain
/// script, and a directory dump (a prefix: its files are `<key>/<file>`).
pub const DUMP_EXTENSIONS: [&str; 3] = ["dump", "sql", "dir"];

/// A dump's key, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpKey {
    /// The database's `name` in the payload (the backup's source).
    pub database: String,
    /// The plan that made it.
    pub plan: Plan,
    /// Its slot.
    pub slot: Slot,
}

/// The key of `database`'s dump for `slot` of `plan`, under `prefix` (empty, or ending in `/`).
pub fn dump_key(prefix: &str, database: &str, plan: &Plan, slot: Slot, extension: &str) -> String {
    format!(
        "{prefix}{database}/{}/{database}-{plan}-{}.{extension}",
        slot.day_path(),
        slot.stamp()
    )
}

/// The key of the manifest of the dump at `key`.
pub fn manifest_key(key: &str) -> String {
    format!("{key}{MANIFEST_SUFFIX}")
}

/// What a dump's restore drill record is called, after the dump's key.
pub const DRILL_SUFFIX: &str = ".drill.json";

/// The key of the newest restore drill record of the dump at `key`.
pub fn drill_key(key: &str) -> String {
    format!("{key}{DRILL_SUFFIX}")
}

/// Reads a dump key (not a manifest key) back, wherever its prefix.
pub fn parse_dump_key(key: &str) -> Option<DumpKey> {
    let (path, extension) = key.rsplit_once('.')?;
    if !DUMP_EXTENSIONS.contains(&extension) {
        return None;
    }
    let mut parts = path.rsplit('/');
    let file = parts.next()?;
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let database = parts.next()?;
    let rest = file.strip_prefix(database)?.strip_prefix('-')?;
    let (plan, stamp) = rest.rsplit_once('-')?;
    let plan = Plan::new(plan).ok()?;
    let slot = Slot::from_stamp(stamp)?;
    (slot.day_path() == format!("{year}/{month}/{day}")).then(|| DumpKey {
        database: database.to_owned(),
        plan,
        slot,
    })
}

/// The prefix a dump key was written under: what stands before `<database>/<yyyy>/<mm>/<dd>/<file>`.
pub fn dump_key_prefix<'a>(key: &'a str, database: &str) -> &'a str {
    let rest = key.rsplitn(5, '/').nth(4).unwrap_or_default();
    rest.strip_suffix(database).unwrap_or_default()
}

/// Lower case; every run of characters other than a-z and 0-9 becomes one hyphen;
/// no hyphen at either end.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Eight hex digits of SHA-256 over the exact plan and source.
fn short_hash(plan: &str, source: &str) -> String {
    let digest = Sha256::new()
        .chain_update(plan.as_bytes())
        .chain_update([0u8])
        .chain_update(source.as_bytes())
        .finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn slot() -> Slot {
        Slot::containing(
            Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0)
                .single()
                .expect("valid time"),
        )
    }

    fn plan(name: &str) -> Plan {
        Plan::new(name).expect("valid plan")
    }

    fn id(plan_name: &str, source: &str) -> String {
        rds_snapshot_id(&plan(plan_name), source, slot(), RDS_SNAPSHOT_ID_MAX)
    }

    /// What RDS itself checks of a snapshot identifier.
    fn assert_valid(id: &str) {
        assert!(
            !id.is_empty() && id.len() <= RDS_SNAPSHOT_ID_MAX,
            "length of {id}"
        );
        assert!(
            id.starts_with(|c: char| c.is_ascii_lowercase()),
            "first char of {id}"
        );
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "chars of {id}"
        );
        assert!(!id.ends_with('-'), "trailing hyphen in {id}");
        assert!(!id.contains("--"), "double hyphen in {id}");
    }

    #[test]
    fn plain_sources_read_as_they_are() {
        assert_eq!(
            id("nightly", "orders-db"),
            "lb-nightly-202611200200-orders-db"
        );
    }

    #[test]
    fn upper_case_is_folded_without_a_hash() {
        // RDS identifiers are case-insensitive, so `Orders-DB` and `orders-db` are one instance.
        assert_eq!(
            id("nightly", "Orders-DB"),
            "lb-nightly-202611200200-orders-db"
        );
    }

    #[test]
    fn dots_and_underscores_get_a_hash_so_names_stay_unique() {
        let dotted = id("nightly", "orders.db");
        let underscored = id("nightly", "orders_db");
        let hyphened = id("nightly", "orders-db");
        for name in [&dotted, &underscored, &hyphened] {
            assert_valid(name);
        }
        assert!(
            dotted.starts_with("lb-nightly-202611200200-orders-db-"),
            "{dotted}"
        );
        assert_ne!(dotted, underscored);
        assert_ne!(dotted, hyphened);
        assert_ne!(underscored, hyphened);
    }

    #[test]
    fn long_sources_are_cut_to_the_limit_and_stay_distinct() {
        let long = "a".repeat(70);
        let a = id("nightly", &format!("{long}-primary"));
        let b = id("nightly", &format!("{long}-replica"));
        assert_valid(&a);
        assert_valid(&b);
        assert_eq!(a.len(), RDS_SNAPSHOT_ID_MAX);
        assert_ne!(a, b, "ids that differ only in the truncated part");
    }

    #[test]
    fn longest_plan_still_leaves_a_valid_unique_name() {
        let plan_name = "p".repeat(31);
        let a = id(&plan_name, "x".repeat(64).as_str());
        let b = id(&plan_name, &format!("{}y", "x".repeat(63)));
        assert_valid(&a);
        assert_valid(&b);
        assert_ne!(a, b);
    }

    #[test]
    fn awkward_plans_and_sources_are_valid() {
        for (p, s) in [
            ("9-to-5", "db"),
            ("a--b", "db"),
            ("trailing-", "--db--"),
            ("x", "..."),
            ("0", "_"),
        ] {
            assert_valid(&id(p, s));
        }
        assert_ne!(id("a--b", "db"), id("a-b", "db"));
    }

    #[test]
    fn the_same_inputs_give_the_same_name() {
        assert_eq!(id("nightly", "orders.db"), id("nightly", "orders.db"));
    }

    #[test]
    fn keys_round_trip() {
        let plan = Plan::new("nightly").expect("plan");
        let slot = slot();
        let key = dump_key("pg/", "orders", &plan, slot, "dump");
        assert_eq!(
            key,
            "pg/orders/2026/11/20/orders-nightly-20261120T0200Z.dump"
        );
        let parsed = parse_dump_key(&key).expect("parses");
        assert_eq!(dump_key_prefix(&key, "orders"), "pg/");
        assert_eq!(
            dump_key_prefix(
                "orders/2026/11/20/orders-nightly-20261120T0200Z.dump",
                "orders"
            ),
            ""
        );
        assert_eq!(parsed.database, "orders");
        assert_eq!(parsed.plan.as_str(), "nightly");
        assert_eq!(parsed.slot, slot);
        let plain = dump_key(
            "",
            "my-db",
            &Plan::new("hourly-2").expect("plan"),
            slot,
            "sql",
        );
        assert_eq!(
            parse_dump_key(&plain).map(|k| (k.database, k.plan)),
            Some(("my-db".into(), Plan::new("hourly-2").expect("plan")))
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

    #[test]
    fn image_names_carry_plan_instance_and_slot() {
        assert_eq!(
            image_name(&plan("weekly"), "i-0abc", slot()),
            "lifeboat-weekly-i-0abc-202611200200"
        );
        assert_eq!(manifest_key("a/b.dump"), "a/b.dump.manifest.json");
    }
}

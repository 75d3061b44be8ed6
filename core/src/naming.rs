//! Kubernetes object names: DNS-1123 validators and the pool-derived names of the Lease, the
//! CardanoLeader and the CardanoForgeCluster (the reference's names, and its gap G-23 in
//! docs/architecture.md).
//!
//! Pure string functions. No I/O.
//!
//! # The rule and the trade-off
//!
//! The reference derives `cardano-leader-{network}-{poolShort}` (Lease and CardanoLeader) and
//! `{network}-{poolShort}-{region}` (CardanoForgeCluster), where `poolShort` is the first 10
//! characters of a `pool1…` bech32 id. Two problems (G-23): nothing is sanitised (upper case or
//! `_` give names the API server rejects), and `pool1` plus 5 characters collides between
//! pools, so two pools in one namespace could share one Lease (only one of them would forge).
//!
//! [`NamingScheme::Hashed`] (the default) therefore always appends `-` and the first
//! [`HASH_HEX_LEN`] hex digits of the SHA-256 of the *full* pool id. Every derived name is a valid
//! DNS-1123 label (so also a valid subdomain, and usable as a label value), and two different
//! pool ids give different names unless their SHA-256 prefixes collide (2^-32 per pair).
//!
//! [`NamingScheme::Reference`] gives the reference's exact name whenever that name is already a
//! valid DNS-1123 label, for drop-in next to objects the reference chart created (its
//! `{network}-{poolShort}-{region}` CardanoForgeCluster in particular, whose name the chart does
//! not pass in). When the reference name would be invalid it could never have existed in an API
//! server, so nothing is lost by falling back to the sanitised name plus the hash.
//!
//! Explicit names always win over both schemes: the reference chart passes `LEASE_NAME` and
//! `CRD_NAME` itself, so a chart deployment keeps its names whatever the scheme.
use sha2::{Digest, Sha256};

/// Maximum length of a DNS-1123 label (RFC 1123; Kubernetes `IsDNS1123Label`).
pub const DNS1123_LABEL_MAX: usize = 63;
/// Maximum length of a DNS-1123 subdomain (Kubernetes `IsDNS1123Subdomain`).
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Hex digits of the pool-id hash appended to derived names: 32 bits, short enough to leave room
/// for the readable part in 63 characters, long enough that a namespace with a handful of pools
/// never sees a collision in practice.
pub const HASH_HEX_LEN: usize = 8;
/// Longest sanitised network or region part kept in a derived name, so the pool part and the hash
/// always fit in a label.
const PART_MAX: usize = 20;
/// Prefix of the derived Lease and CardanoLeader names (the reference's).
const LEADER_PREFIX: &str = "cardano-leader";

/// How names are derived from a pool id when no explicit name was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NamingScheme {
    /// Sanitised reference name plus a hash of the full pool id: unique per pool (the default).
    #[default]
    Hashed,
    /// The reference's name when it is valid; sanitised plus hash otherwise. May collide between
    /// pools that share their first 10 characters.
    Reference,
}

/// True if `s` is a DNS-1123 label: 1..=63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= DNS1123_LABEL_MAX
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// True if `s` is a DNS-1123 subdomain: at most 253 characters of dot-separated DNS-1123 labels
/// (the rule for most Kubernetes object names: Lease, custom resources, pods).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= DNS1123_SUBDOMAIN_MAX && s.split('.').all(is_dns1123_label)
}

/// The reference's short pool id: `pool1…` -> first 10 characters; otherwise the first 8 if
/// there are at least 8; otherwise the whole id. Counted in characters, not bytes.
pub fn pool_short_id(pool_id: &str) -> &str {
    let take = if pool_id.starts_with("pool1") {
        10
    } else if pool_id.chars().count() >= 8 {
        8
    } else {
        return pool_id;
    };
    match pool_id.char_indices().nth(take) {
        Some((end, _)) => &pool_id[..end],
        None => pool_id,
    }
}

/// First [`HASH_HEX_LEN`] lower-case hex digits of SHA-256 over the full pool id.
pub fn pool_hash(pool_id: &str) -> String {
    let digest = Sha256::digest(pool_id.as_bytes());
    let mut out = String::with_capacity(HASH_HEX_LEN);
    for byte in digest.iter().take(HASH_HEX_LEN.div_ceil(2)) {
        out.push_str(&format!("{byte:02x}"));
    }
    out.truncate(HASH_HEX_LEN);
    out
}

/// Lower-cases `s`, replaces every character outside `[a-z0-9-]` with `-`, keeps at most `max`
/// characters and trims `-` from both ends. May return an empty string.
pub fn sanitize_label_part(s: &str, max: usize) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(max)
        .collect();
    mapped.trim_matches('-').to_owned()
}

/// Name of the Lease and of the CardanoLeader for a pool:
/// `cardano-leader-{network}-{poolShort}[-{hash}]` (see the module docs for the scheme).
pub fn leader_name(network: &str, pool_id: &str, scheme: NamingScheme) -> String {
    let short = pool_short_id(pool_id);
    let reference = format!("{LEADER_PREFIX}-{network}-{short}");
    derive(&reference, &[LEADER_PREFIX, network, short], pool_id, scheme)
}

/// Name of the CardanoForgeCluster for a pool in a region:
/// `{network}-{poolShort}-{region}[-{hash}]` (see the module docs for the scheme).
pub fn cluster_name(network: &str, pool_id: &str, region: &str, scheme: NamingScheme) -> String {
    let short = pool_short_id(pool_id);
    let reference = format!("{network}-{short}-{region}");
    derive(&reference, &[network, short, region], pool_id, scheme)
}

/// Builds a derived name from its parts: the reference name if the scheme allows and it is valid,
/// otherwise the sanitised parts joined by `-`, cut to leave room for `-{hash}`, plus the hash.
fn derive(reference: &str, parts: &[&str], pool_id: &str, scheme: NamingScheme) -> String {
    if scheme == NamingScheme::Reference && is_dns1123_label(reference) {
        return reference.to_owned();
    }
    let readable: Vec<String> = parts
        .iter()
        .map(|p| sanitize_label_part(p, PART_MAX))
        .filter(|p| !p.is_empty())
        .collect();
    let hash = pool_hash(pool_id);
    let room = DNS1123_LABEL_MAX - HASH_HEX_LEN - 1;
    let mut head: String = readable.join("-").chars().take(room).collect();
    while head.ends_with('-') {
        head.pop();
    }
    if head.is_empty() {
        hash
    } else {
        format!("{head}-{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POOL_A: &str = "pool1abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmn";

    #[test]
    fn labels_follow_rfc_1123() {
        for ok in ["a", "abc", "a-b", "0", "cardano-node-leader", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64), "é"] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }

    #[test]
    fn subdomains_are_dot_separated_labels() {
        assert!(is_dns1123_subdomain("cardano.io"));
        assert!(is_dns1123_subdomain("forge-0.example"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain(".a"));
        assert!(!is_dns1123_subdomain(&format!("{}.a", "a".repeat(252))));
    }

    #[test]
    fn short_id_follows_the_reference_rule() {
        assert_eq!(pool_short_id(POOL_A), "pool1abcde");
        assert_eq!(pool_short_id("MYPOOL1234"), "MYPOOL12");
        assert_eq!(pool_short_id("STAKE"), "STAKE");
        assert_eq!(pool_short_id("pool1"), "pool1");
        assert_eq!(pool_short_id("ééééééééé"), "éééééééé");
    }

    #[test]
    fn reference_scheme_keeps_the_reference_names_when_valid() {
        assert_eq!(
            leader_name("mainnet", POOL_A, NamingScheme::Reference),
            "cardano-leader-mainnet-pool1abcde"
        );
        assert_eq!(
            cluster_name("mainnet", POOL_A, "us-east-1", NamingScheme::Reference),
            "mainnet-pool1abcde-us-east-1"
        );
    }

    #[test]
    fn reference_scheme_sanitises_and_hashes_invalid_reference_names() {
        let name = cluster_name("mainnet", "MYPOOL", "us-east-1", NamingScheme::Reference);
        assert_eq!(name, format!("mainnet-mypool-us-east-1-{}", pool_hash("MYPOOL")));
    }

    #[test]
    fn hashed_scheme_appends_the_hash_of_the_full_pool_id() {
        let name = leader_name("mainnet", POOL_A, NamingScheme::Hashed);
        assert_eq!(
            name,
            format!("cardano-leader-mainnet-pool1abcde-{}", pool_hash(POOL_A))
        );
    }

    #[test]
    fn pools_sharing_a_bech32_prefix_get_different_names() {
        let other = POOL_A.replace("xyz", "xyy");
        assert_eq!(pool_short_id(POOL_A), pool_short_id(&other));
        assert_ne!(
            leader_name("mainnet", POOL_A, NamingScheme::Hashed),
            leader_name("mainnet", &other, NamingScheme::Hashed)
        );
    }

    #[test]
    fn very_long_parts_still_fit_in_a_label() {
        let long = "x".repeat(300);
        let name = cluster_name(&long, &long, &long, NamingScheme::Hashed);
        assert!(is_dns1123_label(&name), "{name}");
        assert!(name.ends_with(&pool_hash(&long)));
    }

    proptest! {
        #[test]
        fn derived_names_are_always_valid_labels(
            network in ".{0,40}", pool in ".{0,80}", region in ".{0,40}", reference in any::<bool>()
        ) {
            let scheme = if reference { NamingScheme::Reference } else { NamingScheme::Hashed };
            let lease = leader_name(&network, &pool, scheme);
            let cluster = cluster_name(&network, &pool, &region, scheme);
            prop_assert!(is_dns1123_label(&lease), "{lease:?}");
            prop_assert!(is_dns1123_label(&cluster), "{cluster:?}");
            prop_assert!(is_dns1123_subdomain(&lease));
        }

        #[test]
        fn different_pools_never_share_a_hashed_name(
            network in "[a-z]{0,10}|.{0,10}", a in ".{0,70}", b in ".{0,70}", region in ".{0,20}"
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(
                leader_name(&network, &a, NamingScheme::Hashed),
                leader_name(&network, &b, NamingScheme::Hashed)
            );
            prop_assert_ne!(
                cluster_name(&network, &a, &region, NamingScheme::Hashed),
                cluster_name(&network, &b, &region, NamingScheme::Hashed)
            );
        }

        #[test]
        fn bech32_like_pools_sharing_a_prefix_never_share_a_name(
            suffix_a in "[02-9ac-hj-np-z]{46}", suffix_b in "[02-9ac-hj-np-z]{46}"
        ) {
            prop_assume!(suffix_a != suffix_b);
            let a = format!("pool1qqqqq{suffix_a}");
            let b = format!("pool1qqqqq{suffix_b}");
            prop_assert_ne!(
                leader_name("mainnet", &a, NamingScheme::Hashed),
                leader_name("mainnet", &b, NamingScheme::Hashed)
            );
        }

        #[test]
        fn naming_is_deterministic(network in ".{0,20}", pool in ".{0,60}", region in ".{0,20}") {
            prop_assert_eq!(
                cluster_name(&network, &pool, &region, NamingScheme::Hashed),
                cluster_name(&network, &pool, &region, NamingScheme::Hashed)
            );
            prop_assert_eq!(
                leader_name(&network, &pool, NamingScheme::Reference),
                leader_name(&network, &pool, NamingScheme::Reference)
            );
        }

        #[test]
        fn sanitised_parts_are_empty_or_valid_labels(s in ".{0,100}") {
            let part = sanitize_label_part(&s, DNS1123_LABEL_MAX);
            prop_assert!(part.is_empty() || is_dns1123_label(&part), "{part:?}");
        }
    }
}

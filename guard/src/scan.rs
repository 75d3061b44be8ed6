//! Recognises cardano-node's block-forging reconfiguration lines, in the text and the JSON
//! forms of its tracer (cardano-node `Startup` traces `BlockForgingUpdate` and
//! `BlockForgingUpdateError`). Pure: one line in, at most one observation out.

use crate::protocol::Observation;

/// What `line` tells about the node's forging, if anything.
pub fn scan(line: &str) -> Option<Observation> {
    // The error first: its text also names "block forging".
    if line.contains("Block forging reconfiguration error") || line.contains("BlockForgingUpdateError") {
        return Some(Observation::ReloadError);
    }
    if line.contains("not effective until consensus has started")
        || (line.contains("BlockForgingUpdate") && line.contains("NotEffective"))
    {
        return Some(Observation::NotEffective);
    }
    if line.contains("Disabling block forging") || line.contains("DisabledBlockForging") {
        return Some(Observation::Disabled);
    }
    if line.contains("Enabling block forging") || line.contains("EnabledBlockForging") {
        return Some(Observation::Enabled);
    }
    if line.contains("Chain extended") || line.contains("AddedToCurrentChain") {
        return Some(Observation::ChainExtended);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_forms_are_recognised() {
        let cases = [
            (
                "[bp:cardano.node.StartupInfo:Notice:5] [2025-01-01 00:00:00.00 UTC] Performing block forging \
                 reconfiguration: Enabling block forging. To disable it please move/rename/remove the \
                 credentials files and then trigger reconfiguration via SIGHUP signal.",
                Some(Observation::Enabled),
            ),
            (
                "Performing block forging reconfiguration: Disabling block forging, to enable it please make \
                 the credentials files available again and then re-trigger reconfiguration via SIGHUP signal.",
                Some(Observation::Disabled),
            ),
            (
                "Performing block forging reconfiguration: Changing block forging is not effective until \
                 consensus has started. ",
                Some(Observation::NotEffective),
            ),
            (
                "Block forging reconfiguration error: bad key\nBlock forging is not reconfigured.",
                Some(Observation::ReloadError),
            ),
            (
                r#"{"at":"2025-01-01T00:00:00Z","ns":"Startup.BlockForgingUpdate","data":{"kind":"BlockForgingUpdate","enabled":"EnabledBlockForging"}}"#,
                Some(Observation::Enabled),
            ),
            (
                r#"{"data":{"kind":"BlockForgingUpdate","enabled":"DisabledBlockForging"}}"#,
                Some(Observation::Disabled),
            ),
            (
                r#"{"data":{"kind":"BlockForgingUpdate","enabled":"NotEffective"}}"#,
                Some(Observation::NotEffective),
            ),
            (
                r#"{"data":{"kind":"BlockForgingUpdateError","error":"x"}}"#,
                Some(Observation::ReloadError),
            ),
            (
                "Chain extended, consensus started",
                Some(Observation::ChainExtended),
            ),
            ("Replaying ledger (300 ms simulated)", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(scan(line), want, "{line}");
        }
    }
}

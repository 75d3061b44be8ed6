//! `docs/configuration.md`, generated from the key table (`forge-manager config --docs`; a test
//! in `tests/config_cli.rs` fails when the checked-in file drifts).
use std::fmt::Write as _;

use super::keys::{ENV_VARS, Key, Section};
use super::parse::fmt_dur;
use super::timing::{JITTER_FACTOR, MIN_DEADLINE_MARGIN};

const INTRO: &str = "\
# Configuration

<!-- Generated from core/src/config/keys.rs by `forge-manager config --docs`; do not edit by
hand. tests/config_cli.rs fails when this file and the key table differ. -->

Every setting is an environment variable; the names are the reference sidecar's, so its Helm
chart's env blocks work unchanged. The same keys can come from a configuration file (`--config
FILE`, YAML or TOML, keys in snake_case: `lease_duration: 15`) and some from flags
(`--lease-duration 15`). Layers, lowest first: built-in defaults < file < environment < flags.
Unknown file keys are an error; unknown environment variables are ignored.

`forge-manager config` prints the effective settings, or one line per bad key (`KEY: what is
wrong, got \"value\"`) and exits 2. The sidecar refuses to start on the same errors.

A key given with an empty value counts as given, except where the default below is empty or in
parentheses (derived): there empty means unset.
";

const TIMING: &str = "\
## Lease timing rules

A leader renews its Lease every `RETRY_PERIOD` (with up to x JITTER jitter, as client-go). If it
has not renewed for `RENEW_DEADLINE` it stops forging and gives the lease up; another pod can take
the lease only when `LEASE_DURATION` has passed since the last renewal. So:

- `RENEW_DEADLINE` < `LEASE_DURATION`, by at least MARGIN: the node of a leader that gives up must
  have stopped forging before any other pod can see the lease expire. Without the node guard, make
  the margin larger than the node's slowest reload.
- `RETRY_PERIOD` x JITTER < `RENEW_DEADLINE`, and `API_TIMEOUT` < `RENEW_DEADLINE`.
- `RETRY_PERIOD` x JITTER + 2 x `API_TIMEOUT` <= `RENEW_DEADLINE`: two complete renew attempts fit
  in the deadline, so one slow or failed request never costs a healthy leader its lease.

`SLEEP_INTERVAL` was the reference's polling period (this sidecar watches instead). It only ever
shortens the retry period: when `RETRY_PERIOD` is not given, the retry period is
`min(SLEEP_INTERVAL, 2s)`. The reference chart's `SLEEP_INTERVAL=5` therefore keeps the safe 2 s,
and a large value can never stretch renewals towards the lease duration.
";

/// The whole of `docs/configuration.md`.
pub fn reference_markdown() -> String {
    let mut out = String::from(INTRO);
    let mut sections: Vec<Section> = ENV_VARS.iter().map(|k| k.section).collect();
    sections.sort();
    sections.dedup();
    for section in sections {
        let _ = write!(
            out,
            "\n## {}\n\n| Key | Default | Format | Meaning |\n|---|---|---|---|\n",
            section.title()
        );
        for key in ENV_VARS.iter().filter(|k| k.section == section) {
            out.push_str(&row(key));
        }
    }
    out.push('\n');
    out.push_str(
        &TIMING
            .replace("JITTER", &JITTER_FACTOR.to_string())
            .replace("MARGIN", &fmt_dur(MIN_DEADLINE_MARGIN)),
    );
    out
}

fn row(key: &Key) -> String {
    let default = match key.default {
        "" => "(unset)".to_owned(),
        d if d.starts_with('(') => d.to_owned(),
        d => format!("`{d}`"),
    };
    let cell = |s: &str| s.replace('|', "\\|");
    format!(
        "| `{}` | {} | {} | {} |\n",
        key.name,
        cell(&default),
        cell(&key.format.describe()),
        cell(key.meaning)
    )
}

//! [`ConfigError`], [`ConfigErrors`], and the collector that reads keys through their
//! [`Key`] (format, default) and keeps the first error per key.
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::keys::{Format, Key, RawSettings};
use super::parse::parse_duration;
use crate::naming;

/// One bad key: its environment-variable name and what is wrong, including the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    /// The environment-variable name of the key (`LEASE_DURATION`).
    pub key: &'static str,
    /// What is wrong, quoting the value (`must be a positive integer number of seconds, got "abc"`).
    pub problem: String,
}

impl ConfigError {
    /// A bounded label for metrics and status reasons.
    pub fn kind(&self) -> &'static str {
        "invalid_config"
    }

    /// Invalid configuration is fatal: retrying reads the same values.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Every bad key, at most one error per key, in order of discovery. Displays as one line per key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The keys that have errors.
    pub fn keys(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.key).collect()
    }
}

/// Reads keys from the raw settings and collects the first error per key. Each getter applies
/// the key's default when it was not given, and checks the value against the key's [`Format`].
pub(crate) struct Check<'a> {
    pub(crate) raw: &'a RawSettings,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'a> Check<'a> {
    pub(crate) fn new(raw: &'a RawSettings) -> Self {
        Self {
            raw,
            errors: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, key: &'static str, problem: impl Into<String>) {
        if !self.has(key) {
            self.errors.push(ConfigError {
                key,
                problem: problem.into(),
            });
        }
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.errors.iter().any(|err| err.key == key)
    }

    pub(crate) fn has_any(&self, keys: &[&Key]) -> bool {
        keys.iter().any(|k| self.has(k.name))
    }

    /// The value as given (`None` when no layer gave the key).
    pub(crate) fn given(&self, key: &Key) -> Option<&'a str> {
        (key.given)(self.raw)
    }

    /// The value if given and non-empty (for keys whose default is empty or derived).
    pub(crate) fn optional(&self, key: &Key) -> Option<&'a str> {
        self.given(key).filter(|s| !s.is_empty())
    }

    fn value(&self, key: &Key) -> &'a str {
        self.given(key).unwrap_or(key.default)
    }

    fn invalid(&mut self, key: &Key, v: &str) {
        let expectation = key.format.expectation(key.default);
        self.push(key.name, format!("{expectation}, got {v:?}"));
    }

    /// `key`'s value through `parse`; `default` when it is not given, and when what is given does
    /// not parse (reported as invalid).
    fn parsed<T>(&mut self, key: &Key, default: T, parse: impl Fn(&str) -> Option<T>) -> T {
        let Some(v) = self.given(key) else { return default };
        parse(v).unwrap_or_else(|| {
            self.invalid(key, v);
            default
        })
    }

    /// A key read by a getter that does not fit its format: a mistake in the key table, reported
    /// on every run so that the tests catch it.
    fn misdeclared(&mut self, key: &Key, getter: &str) {
        self.push(
            key.name,
            format!(
                "is declared as {:?} but read as {getter} (a bug in the key table)",
                key.format
            ),
        );
    }

    /// A [`Format::Label`], [`Format::Subdomain`], [`Format::Text`] or [`Format::Only`] key.
    pub(crate) fn text(&mut self, key: &Key) -> String {
        let v = self.value(key);
        self.check_text(key, v);
        v.to_owned()
    }

    /// Checks `v` as `key`'s text format (for keys whose default is derived by their section).
    pub(crate) fn check_text(&mut self, key: &Key, v: &str) {
        let ok = match key.format {
            Format::Label => naming::is_dns1123_label(v),
            Format::Subdomain => naming::is_dns1123_subdomain(v),
            Format::Text => !v.trim().is_empty(),
            Format::Only => v == key.default,
            _ => return self.misdeclared(key, "text"),
        };
        if !ok {
            self.invalid(key, v);
        }
    }

    /// A [`Format::Path`] key.
    pub(crate) fn path(&mut self, key: &Key) -> PathBuf {
        let v = self.value(key);
        if key.format != Format::Path {
            self.misdeclared(key, "path");
        } else if !Path::new(v).is_absolute() || v.trim() != v {
            self.invalid(key, v);
        }
        PathBuf::from(v)
    }

    /// A [`Format::Bool`] key.
    pub(crate) fn flag(&mut self, key: &Key) -> bool {
        if key.format != Format::Bool {
            self.misdeclared(key, "flag");
        }
        let parse = |v: &str| match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        };
        let default = parse(key.default).unwrap_or(false);
        self.parsed(key, default, parse)
    }

    /// A [`Format::Int`] or [`Format::WholeSeconds`] key.
    pub(crate) fn int(&mut self, key: &Key) -> u64 {
        let (min, max) = match key.format {
            Format::Int { min, max } => (min, max),
            Format::WholeSeconds { max } => (1, max),
            _ => {
                self.misdeclared(key, "int");
                (0, u64::MAX)
            }
        };
        let parse = |v: &str| v.trim().parse::<u64>().ok().filter(|n| (min..=max).contains(n));
        let default = parse(key.default).unwrap_or(min);
        self.parsed(key, default, parse)
    }

    /// A [`Format::Seconds`] key.
    pub(crate) fn secs(&mut self, key: &Key) -> Duration {
        if key.format != Format::Seconds {
            self.misdeclared(key, "secs");
        }
        self.parsed(key, default_secs(key), parse_duration)
    }

    /// A [`Format::OneOf`] key: the name (any case) must be listed there; `parse` maps each listed
    /// name to its value.
    pub(crate) fn choice<T: Copy>(&mut self, key: &Key, parse: fn(&str) -> Option<T>, fallback: T) -> T {
        let Format::OneOf(names) = key.format else {
            self.misdeclared(key, "choice");
            return fallback;
        };
        let pick = |v: &str| {
            let wanted = v.trim().to_ascii_lowercase();
            names.contains(&wanted.as_str()).then(|| parse(&wanted)).flatten()
        };
        let default = pick(key.default).unwrap_or(fallback);
        self.parsed(key, default, pick)
    }
}

/// The default of a [`Format::Seconds`] or [`Format::WholeSeconds`] key as a duration (zero if
/// the table holds something else, which the tests rule out).
pub(crate) fn default_secs(key: &Key) -> Duration {
    parse_duration(key.default).unwrap_or(Duration::ZERO)
}

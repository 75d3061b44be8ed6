//! Layered configuration loading with the `config` crate: built-in defaults < config file
//! (`--config FILE`, YAML or TOML by extension) < environment < command-line flags, into a
//! [`RawSettings`], then `forge_core::config::validate` (docs/configuration.md).
//!
//! - Defaults are NOT set here: they live in forge-core's key table, so a `Some` field in
//!   [`RawSettings`] means "explicitly given" (which the derived names depend on).
//! - Environment: only the names in [`ENV_VARS`] are taken (the reference's exact names, plus
//!   ours); everything else in the environment (PATH, HOME, KUBERNETES_*...) is ignored. The
//!   `config` crate lower-cases environment keys, which is exactly the snake_case field name.
//! - File keys are the snake_case names (`lease_duration: 15`); an unknown key is an error naming
//!   the file and the key.
//! - The host name (legacy CardanoForgeCluster name) comes from `HOSTNAME` or `/etc/hostname`.
//!
//! Reads the environment and files: this is the I/O half; the core half is pure.
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use config::{Config, Environment, File, FileFormat, Map, Source, Value};
use forge_core::config::{ConfigErrors, ENV_VARS, RawSettings, ValidConfig, validate};

/// Exit code of `forge-manager config` for invalid configuration (clap uses 2 for bad usage too).
const EXIT_INVALID: u8 = 2;

/// Flags of `forge-manager config` and `forge-manager run`. Each flag overrides the environment
/// variable of the same name (`--lease-duration` -> `LEASE_DURATION`); values are validated by
/// the core exactly like environment values.
#[derive(Debug, Args, Default)]
pub struct ConfigArgs {
    /// A YAML (.yaml/.yml) or TOML (.toml) configuration file; keys are the snake_case of the
    /// environment variable names (`lease_duration: 15`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The per-setting flags (boxed: they are many, and `ConfigArgs` sits in the CLI enum).
    #[command(flatten)]
    pub flags: Box<ConfigFlags>,
}

/// `forge-manager config`: the configuration flags, or `--docs`.
#[derive(Debug, Args)]
pub struct ConfigCommand {
    /// Print the configuration reference (docs/configuration.md: every key, its default, format
    /// and meaning) instead of loading the configuration.
    #[arg(long)]
    pub docs: bool,
    /// The configuration to load and print.
    #[command(flatten)]
    pub args: ConfigArgs,
}

/// One flag per common setting; each overrides the environment variable of the same name.
#[derive(Debug, Args, Default)]
pub struct ConfigFlags {
    /// `POD_NAME`: this pod, the Lease holder identity.
    #[arg(long)]
    pub pod_name: Option<String>,
    /// `NAMESPACE`.
    #[arg(long)]
    pub namespace: Option<String>,
    /// `LEASE_NAME`.
    #[arg(long)]
    pub lease_name: Option<String>,
    /// `CRD_NAME`: the CardanoLeader object.
    #[arg(long)]
    pub crd_name: Option<String>,
    /// `LEASE_DURATION`, whole seconds.
    #[arg(long, value_name = "SECONDS")]
    pub lease_duration: Option<String>,
    /// `RENEW_DEADLINE`, seconds (or `500ms`).
    #[arg(long, value_name = "SECONDS")]
    pub renew_deadline: Option<String>,
    /// `RETRY_PERIOD`, seconds (or `500ms`).
    #[arg(long, value_name = "SECONDS")]
    pub retry_period: Option<String>,
    /// `API_TIMEOUT`, seconds (or `500ms`).
    #[arg(long, value_name = "SECONDS")]
    pub api_timeout: Option<String>,
    /// `METRICS_PORT`.
    #[arg(long)]
    pub metrics_port: Option<String>,
    /// `LOG_LEVEL`.
    #[arg(long)]
    pub log_level: Option<String>,
    /// `LOG_FORMAT`: text or json.
    #[arg(long)]
    pub log_format: Option<String>,
    /// `NODE_SOCKET`.
    #[arg(long)]
    pub node_socket: Option<String>,
    /// `GUARD_SOCKET`.
    #[arg(long)]
    pub guard_socket: Option<String>,
    /// `CARDANO_NETWORK`.
    #[arg(long)]
    pub cardano_network: Option<String>,
    /// `NETWORK_MAGIC`.
    #[arg(long)]
    pub network_magic: Option<String>,
    /// `POOL_ID`.
    #[arg(long)]
    pub pool_id: Option<String>,
    /// `CLUSTER_REGION`.
    #[arg(long)]
    pub cluster_region: Option<String>,
    /// `CLUSTER_PRIORITY`.
    #[arg(long)]
    pub cluster_priority: Option<String>,
    /// `PEER_CLUSTERS`: name=/path/to/kubeconfig, comma-separated.
    #[arg(long)]
    pub peer_clusters: Option<String>,
    /// `NAMING_SCHEME`: hashed or reference.
    #[arg(long)]
    pub naming_scheme: Option<String>,
}

impl ConfigFlags {
    /// The given flags as `(field name, value)`: field names are the snake_case env names.
    fn overrides(&self) -> Vec<(&'static str, &str)> {
        let Self {
            pod_name,
            namespace,
            lease_name,
            crd_name,
            lease_duration,
            renew_deadline,
            retry_period,
            api_timeout,
            metrics_port,
            log_level,
            log_format,
            node_socket,
            guard_socket,
            cardano_network,
            network_magic,
            pool_id,
            cluster_region,
            cluster_priority,
            peer_clusters,
            naming_scheme,
        } = self;
        [
            ("pod_name", pod_name),
            ("namespace", namespace),
            ("lease_name", lease_name),
            ("crd_name", crd_name),
            ("lease_duration", lease_duration),
            ("renew_deadline", renew_deadline),
            ("retry_period", retry_period),
            ("api_timeout", api_timeout),
            ("metrics_port", metrics_port),
            ("log_level", log_level),
            ("log_format", log_format),
            ("node_socket", node_socket),
            ("guard_socket", guard_socket),
            ("cardano_network", cardano_network),
            ("network_magic", network_magic),
            ("pool_id", pool_id),
            ("cluster_region", cluster_region),
            ("cluster_priority", cluster_priority),
            ("peer_clusters", peer_clusters),
            ("naming_scheme", naming_scheme),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// Why loading failed. Each displays as one or more lines, one per problem.
#[derive(Debug)]
pub enum LoadError {
    /// The configuration file could not be used (unreadable, wrong extension, bad syntax,
    /// unknown keys): one line per problem, each naming the file.
    File(Vec<String>),
    /// A known environment variable is not valid Unicode.
    NonUnicodeEnv(String),
    /// The layers did not merge into settings (a value of the wrong shape, e.g. a map).
    Merge(String),
    /// The merged settings are invalid: one line per bad key.
    Invalid(ConfigErrors),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(lines) => f.write_str(&lines.join("\n")),
            Self::NonUnicodeEnv(key) => write!(f, "{key}: is not valid Unicode"),
            Self::Merge(problem) => f.write_str(problem),
            Self::Invalid(errors) => errors.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<ConfigErrors> for LoadError {
    fn from(e: ConfigErrors) -> Self {
        Self::Invalid(e)
    }
}

/// Loads and validates the layered configuration from the process environment.
pub fn load(args: &ConfigArgs) -> Result<ValidConfig, LoadError> {
    let env = known_env(std::env::vars_os())?;
    let mut raw = load_raw(args, &env)?;
    raw.host_name = host_name(&env);
    Ok(validate(&raw)?)
}

/// The known environment variables (by [`ENV_VARS`] name) from `vars`; others are ignored.
fn known_env(vars: impl Iterator<Item = (OsString, OsString)>) -> Result<Map<String, String>, LoadError> {
    let known: BTreeSet<&str> = ENV_VARS.iter().map(|v| v.name).chain(["HOSTNAME"]).collect();
    let mut out = Map::new();
    for (k, v) in vars {
        let Some(k) = k.to_str().filter(|k| known.contains(k)) else {
            continue;
        };
        let v = v
            .into_string()
            .map_err(|_| LoadError::NonUnicodeEnv(k.to_owned()))?;
        out.insert(k.to_owned(), v);
    }
    Ok(out)
}

/// `HOSTNAME`, else the first line of `/etc/hostname`.
fn host_name(env: &Map<String, String>) -> Option<String> {
    env.get("HOSTNAME")
        .cloned()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// Merges file < environment < flags into [`RawSettings`], without defaults (module docs).
fn load_raw(args: &ConfigArgs, env: &Map<String, String>) -> Result<RawSettings, LoadError> {
    let mut builder = Config::builder();
    if let Some(path) = &args.config {
        builder = builder.add_source(file_source(path)?);
    }
    let settings_env: Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.as_str() != "HOSTNAME")
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    builder = builder.add_source(Environment::default().source(Some(settings_env)));
    for (key, value) in args.flags.overrides() {
        builder = builder
            .set_override(key, value)
            .map_err(|e| LoadError::Merge(format!("--{key}: {e}")))?;
    }
    let merged = builder.build().map_err(|e| LoadError::Merge(e.to_string()))?;
    merged
        .try_deserialize::<RawSettings>()
        // Environment values and flags are always strings, so a shape error comes from the file.
        .map_err(|e| match &args.config {
            Some(path) => LoadError::File(vec![format!("{}: {e}", path.display())]),
            None => LoadError::Merge(e.to_string()),
        })
}

/// Reads and parses the config file, rejecting unknown keys; every error names the file.
fn file_source(path: &Path) -> Result<File<config::FileSourceString, FileFormat>, LoadError> {
    let shown = path.display();
    let format = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("yaml" | "yml") => FileFormat::Yaml,
        Some("toml") => FileFormat::Toml,
        other => {
            return Err(LoadError::File(vec![format!(
                "{shown}: unsupported config file extension {:?}: use .yaml, .yml or .toml",
                other.unwrap_or("")
            )]));
        }
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::File(vec![format!("{shown}: cannot read: {e}")]))?;
    let table: Map<String, Value> = File::from_str(&text, format)
        .collect()
        .map_err(|e| LoadError::File(vec![format!("{shown}: {e}")]))?;
    let known: BTreeSet<String> = ENV_VARS.iter().map(|v| v.name.to_ascii_lowercase()).collect();
    let unknown: Vec<String> = table
        .keys()
        .filter(|k| !known.contains(*k))
        .map(|k| {
            let lower = k.to_ascii_lowercase();
            if known.contains(&lower) {
                format!("{shown}: unknown key `{k}` (file keys are snake_case: did you mean `{lower}`?)")
            } else {
                format!("{shown}: unknown key `{k}`")
            }
        })
        .collect();
    if !unknown.is_empty() {
        return Err(LoadError::File(unknown));
    }
    Ok(File::from_str(&text, format))
}

/// `forge-manager config`: prints the effective settings as YAML and exits 0, or prints one line
/// per problem to stderr and exits 2. Prints paths and names only, never key material (the
/// configuration holds none). With `--docs`, prints the configuration reference instead.
pub fn run_config(cmd: &ConfigCommand) -> anyhow::Result<ExitCode> {
    if cmd.docs {
        print!("{}", forge_core::config::reference_markdown());
        return Ok(ExitCode::SUCCESS);
    }
    match load(&cmd.args) {
        Ok(cfg) => {
            let yaml = serde_yaml::to_string(&cfg)?;
            print!("{yaml}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("{line}");
            }
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Map<String, String> {
        known_env(pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v)))).expect("unicode")
    }

    #[test]
    fn only_known_environment_variables_are_taken() {
        let e = env(&[("PATH", "/bin"), ("LEASE_DURATION", "15"), ("HOSTNAME", "h")]);
        let mut keys: Vec<_> = e.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, vec!["HOSTNAME", "LEASE_DURATION"]);
        let raw = load_raw(&ConfigArgs::default(), &e).expect("loads");
        assert_eq!(raw.lease_duration.as_deref(), Some("15"));
        assert_eq!(raw.pod_name, None);
    }

    #[test]
    fn flags_override_the_environment() {
        let flags = ConfigFlags {
            lease_duration: Some("20".into()),
            ..ConfigFlags::default()
        };
        let args = ConfigArgs {
            config: None,
            flags: Box::new(flags),
        };
        let raw = load_raw(&args, &env(&[("LEASE_DURATION", "15")])).expect("loads");
        assert_eq!(raw.lease_duration.as_deref(), Some("20"));
    }
}

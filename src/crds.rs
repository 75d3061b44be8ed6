//! `forge-manager crds`: renders the CRDs of forge-core as YAML, the source of `deploy/crds/`.
use std::{path::Path, process::ExitCode};

use anyhow::Context;

/// One `(file name, YAML)` pair per CRD, in the order they are printed.
pub fn render() -> anyhow::Result<Vec<(String, String)>> {
    forge_core::crd::definitions()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().context("a generated CRD has no name")?;
            let yaml = serde_yaml::to_string(&crd).with_context(|| format!("rendering CRD {name}"))?;
            Ok((format!("{name}.yaml"), yaml))
        })
        .collect()
}

/// Prints all CRDs as one multi-document YAML stream, or writes them into `out`.
pub fn run(out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let docs = render()?;
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, yaml) in &docs {
                let path = dir.join(file);
                std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
        None => {
            let stream: Vec<&str> = docs.iter().map(|(_, y)| y.as_str()).collect();
            print!("{}", stream.join("---\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

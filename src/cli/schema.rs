//! `bosun schema [--dir crds] [--check]`: write (or check) the JSON Schemas
//! of every manifest kind.

use std::path::PathBuf;

use anyhow::Context;

use super::Exit;
use crate::manifest::schema;

/// Arguments of `bosun schema`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of the schema files.
    #[arg(long, default_value = "crds")]
    pub dir: PathBuf,
    /// Do not write; exit 2 when the folder differs from what this bosun generates.
    #[arg(long)]
    pub check: bool,
}

/// Run `bosun schema`.
pub fn run(args: &Args) -> super::Result {
    if args.check {
        let stale = schema::check(&args.dir).context("checking schemas")?;
        if stale.is_empty() {
            crate::outln!("{}: schemas are up to date", args.dir.display())?;
            return Ok(Exit::Success);
        }
        let list: Vec<String> = stale.iter().map(ToString::to_string).collect();
        return Err(anyhow::anyhow!(
            "{}\nschemas in {} are stale: run `bosun schema --dir {}` to regenerate them",
            list.join("\n"),
            args.dir.display(),
            args.dir.display()
        )
        .into());
    }
    let written = schema::write(&args.dir).context("writing schemas")?;
    for path in &written {
        crate::outln!("wrote {}", path.display())?;
    }
    if written.is_empty() {
        crate::outln!("{}: schemas are up to date", args.dir.display())?;
    }
    Ok(Exit::Success)
}

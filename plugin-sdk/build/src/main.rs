//! `acmegate-plugin-build`: the one command that builds every plugin into a component.
//!
//! Usage: `acmegate-plugin-build [--out DIR] [WORKSPACE]`. Prints one line per component.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut workspace: Option<PathBuf> = None;
    let mut out: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("usage: acmegate-plugin-build [--out DIR] [WORKSPACE]");
                return ExitCode::SUCCESS;
            }
            other => workspace = Some(PathBuf::from(other)),
        }
    }
    let workspace = workspace.unwrap_or_else(acmegate_plugin_build::workspace_root);
    let mut options = acmegate_plugin_build::Options::for_workspace(&workspace);
    if let Some(out) = out {
        options.out_dir = out;
    }
    match acmegate_plugin_build::build_all(&options) {
        Ok(built) => {
            for plugin in built {
                println!("{} {} bytes", plugin.path.display(), plugin.size);
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("acmegate-plugin-build: {err}");
            ExitCode::FAILURE
        }
    }
}

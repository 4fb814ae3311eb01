//! `cdnsync man [--dir DIR]` and `cdnsync completions SHELL`: the manual
//! pages and shell completions, generated from the command-line definition.

use std::io::Write;
use std::path::Path;

use crate::cli::Cli;
use crate::error::{Error, Result};

fn render(c: clap::Command) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(c)
        .render(&mut buf)
        .map(|_| buf)
        .map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))
}

/// One page to standard output, or a page per subcommand into `dir`
/// (printing each path written).
pub fn run(dir: Option<&Path>) -> Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let Some(dir) = dir else {
        let _ = std::io::stdout().write_all(&render(cmd)?);
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut pages = vec![("cdnsync".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        let name = format!("cdnsync-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, c) in pages {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, render(c)?).map_err(|e| Error::io(&path, e))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// Completions for `shell` on standard output.
pub fn completions(shell: clap_complete::Shell) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "cdnsync", &mut std::io::stdout());
}

//! `lb man`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

/// Arguments of `lb man`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory the pages are written into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// Runs `lb man`: writes `lb.1` and `lb-SUBCOMMAND.1` for every subcommand
/// of `command` into the directory and lists the files on stdout.
pub fn run(args: Args, command: clap::Command) -> anyhow::Result<ExitCode> {
    for page in write_pages(command, &args.dir)? {
        println!("{}", page.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the man pages of `command` into `dir`; returns their paths, sorted.
fn write_pages(command: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let source = format!("lb {}", command.get_version().unwrap_or_default());
    write_page(&command, &source, dir)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "1"))
        .collect();
    pages.sort();
    Ok(pages)
}

/// Writes the page of `command` and of each visible subcommand, recursively,
/// each footed with `source` (`lb VERSION`).
fn write_page(command: &clap::Command, source: &str, dir: &Path) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page(sub, source, dir)?;
    }
    clap_mangen::Man::new(command.clone())
        .source(source)
        .manual("lb manual")
        .generate_to(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap_complete::Shell;

    use super::write_pages;

    /// Every subcommand, as `lb SUBCOMMAND`.
    fn subcommands() -> Vec<String> {
        let names: Vec<String> = crate::command()
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        assert!(names.len() >= 10, "{names:?}");
        names
    }

    #[test]
    fn man_pages_cover_every_subcommand() {
        let dir = std::env::temp_dir().join(format!("lb-man-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pages = write_pages(crate::command(), &dir).unwrap();
        let main = std::fs::read_to_string(dir.join("lb.1")).unwrap();
        assert!(
            main.starts_with(".ie \\n(.g .ds Aq"),
            "not roff: {main:.80}"
        );
        assert!(main.contains(".TH lb 1"), "{main:.300}");
        for name in subcommands() {
            let page = dir.join(format!("lb-{name}.1"));
            assert!(
                pages.contains(&page),
                "no page {}: {pages:?}",
                page.display()
            );
            let text = std::fs::read_to_string(&page).unwrap();
            assert!(text.contains(&format!(".TH lb-{name} 1")), "{text:.300}");
            assert!(main.contains(&format!("lb\\-{name}")), "lb.1 lacks {name}");
        }
        // The pages document the options, e.g. `lb check --json`.
        let check = std::fs::read_to_string(dir.join("lb-check.1")).unwrap();
        assert!(check.contains("\\-\\-json"), "{check}");
        assert!(
            check.contains(&format!("\"lb {}\"", env!("CARGO_PKG_VERSION"))),
            "{check}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn completions_name_every_subcommand_in_each_shell() {
        // How each shell's script names a subcommand and a long option.
        /// How a script spells a name.
        type Form = fn(&str) -> String;
        let forms: [(Shell, Form, Form); 3] = [
            (Shell::Bash, |s| format!("lb,{s})"), |o| format!("--{o}")),
            (Shell::Zsh, |s| format!("'{s}:"), |o| format!("'--{o}")),
            (
                Shell::Fish,
                |s| format!("-a \"{s}\""),
                |o| format!("-l {o}"),
            ),
        ];
        for (shell, subcommand, option) in forms {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut crate::command(), "lb", &mut out);
            let script = String::from_utf8(out).unwrap();
            for name in subcommands() {
                let form = subcommand(&name);
                assert!(script.contains(&form), "{shell}: no {form}");
            }
            // Options of subcommands complete too.
            for name in ["iface", "json", "config"] {
                let form = option(name);
                assert!(script.contains(&form), "{shell}: no {form}");
            }
        }
    }
}

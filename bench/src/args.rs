//! `lb-bench`'s command line (pure).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::sections::Section;

/// The environment variable `--katran` falls back to (for `cargo xtask bench`).
pub const KATRAN_ENV: &str = "LB_BENCH_KATRAN";

/// What the command line asks for.
#[derive(Debug, Default, PartialEq)]
pub struct Args {
    /// `--quick`: tiny sizes, numbers meaningless.
    pub quick: bool,
    /// `--out FILE`: the JSON report.
    pub out: Option<PathBuf>,
    /// `--only SECTION`.
    pub only: Option<Section>,
    /// `--katran DIR` (or [`KATRAN_ENV`]): Katran's objects, built by
    /// `bench/katran/build.sh`, for the lb/Katran rows.
    pub katran: Option<PathBuf>,
}

impl Args {
    /// Parses `args` (without the program name); `katran_env` is
    /// [`KATRAN_ENV`]'s value, used when `--katran` is not given (empty: unset).
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        katran_env: Option<String>,
    ) -> Result<Self> {
        let mut parsed = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => parsed.quick = true,
                "--out" => parsed.out = Some(args.next().context("--out needs a path")?.into()),
                "--only" => {
                    parsed.only = Some(args.next().context("--only needs a section")?.parse()?)
                }
                "--katran" => {
                    parsed.katran = Some(
                        args.next()
                            .context("--katran needs the directory of Katran's objects")?
                            .into(),
                    )
                }
                other => bail!(
                    "unknown argument {other:?} (expected --quick, --out FILE, --only {}, \
                     --katran DIR)",
                    Section::NAMES
                ),
            }
        }
        if parsed.katran.is_none() {
            parsed.katran = katran_env.filter(|v| !v.is_empty()).map(PathBuf::from);
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::Args;
    use crate::sections::Section;

    fn parse(args: &[&str], env: Option<&str>) -> anyhow::Result<Args> {
        Args::parse(args.iter().map(|s| s.to_string()), env.map(str::to_owned))
    }

    #[test]
    fn katran_dir_from_the_flag_or_the_environment() {
        let a = parse(&["--only", "per-packet", "--katran", "/k"], Some("/env")).unwrap();
        assert_eq!(a.katran.as_deref(), Some(std::path::Path::new("/k")));
        assert_eq!(a.only, Some(Section::PerPacket));
        let a = parse(&["--quick"], Some("/env")).unwrap();
        assert_eq!(a.katran.as_deref(), Some(std::path::Path::new("/env")));
        assert!(a.quick);
        assert_eq!(parse(&[], Some("")).unwrap().katran, None);
        assert_eq!(parse(&[], None).unwrap(), Args::default());
    }

    #[test]
    fn missing_values_and_unknown_flags_are_named() {
        let e = parse(&["--katran"], None).unwrap_err().to_string();
        assert!(e.contains("--katran needs"), "{e}");
        let e = parse(&["--kartan", "x"], None).unwrap_err().to_string();
        assert!(
            e.contains("\"--kartan\"") && e.contains("--katran DIR"),
            "{e}"
        );
    }
}

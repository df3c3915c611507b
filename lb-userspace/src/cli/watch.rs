//! `lb watch`: `lb stats` refreshed every second with per-second rates, until
//! Ctrl-C. On a terminal each frame is redrawn in place (cursor home, lines
//! overwritten, rest of the screen cleared: no flicker; the cursor is hidden
//! and restored on exit); otherwise frames are printed one after another,
//! separated by a blank line (`--json`: one JSON object per line).

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossterm::{cursor, queue, terminal};
use lb::stats::{Rates, Snapshot, render_text, report_json};

use super::stats::{Source, snapshot};

/// Arguments of `lb watch`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: Source,
    /// Print one JSON object per refresh (one per line) instead of tables.
    #[arg(long)]
    json: bool,
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    interval: f64,
    /// Stop after this many refreshes (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Show several nodes side by side: enter each of these network namespaces
    /// (names under /run/netns, comma-separated) to read its pins. `{netns}`
    /// in `--pin-root` / `--state-dir` is replaced by each name.
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    netns: Vec<String>,
}

/// Hides the cursor on a terminal and shows it again when dropped.
pub(super) struct CursorGuard {
    active: bool,
}

impl CursorGuard {
    pub(super) fn new(active: bool) -> Self {
        if active {
            let mut out = std::io::stdout();
            let _ = queue!(out, terminal::Clear(terminal::ClearType::All), cursor::Hide);
            let _ = out.flush();
        }
        Self { active }
    }
}

impl Drop for CursorGuard {
    fn drop(&mut self) {
        if self.active {
            let mut out = std::io::stdout();
            let _ = queue!(out, cursor::Show);
            let _ = out.flush();
        }
    }
}

/// Runs `lb watch`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.interval.is_finite() && args.interval > 0.0,
        "--interval must be a number of seconds > 0"
    );
    if !args.netns.is_empty() {
        return super::watch_nodes::run(
            &args.source,
            &args.netns,
            args.interval,
            args.count,
            args.json,
        );
    }
    let target = args.source.target()?;
    // Fail at once, with the clear message, when nothing is attached.
    let first = snapshot(&target)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let tty = std::io::stdout().is_terminal() && !args.json;
    let _cursor = CursorGuard::new(tty);
    runtime.block_on(async {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        // The first frame at once (no rates yet), then one per period.
        draw(&render(&first, None, args.json)?, tty, args.json, true)?;
        let mut frames = 1u64;
        let mut prev: Option<(Snapshot, Instant)> = Some((first, Instant::now()));
        let period = Duration::from_secs_f64(args.interval);
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        while args.count.is_none_or(|n| frames < n) {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = ticker.tick() => {}
            }
            let now = Instant::now();
            let frame = match target.snapshot() {
                Ok(snap) => {
                    let rates = prev
                        .as_ref()
                        .map(|(p, at)| Rates::between(p, &snap, now - *at));
                    let text = render(&snap, rates.as_ref(), args.json)?;
                    prev = Some((snap, now));
                    text
                }
                Err(e) => {
                    prev = None;
                    if args.json {
                        serde_json::json!({ "error": e.to_string() }).to_string()
                    } else {
                        format!("{e}\n(retrying every {:.1} s)\n", args.interval)
                    }
                }
            };
            draw(&frame, tty, args.json, false)?;
            frames += 1;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// One frame's text: tables, or one line of JSON.
fn render(snap: &Snapshot, rates: Option<&Rates>, json: bool) -> anyhow::Result<String> {
    if json {
        serde_json::to_string(&report_json(snap, rates)).context("encoding JSON")
    } else {
        Ok(render_text(snap, rates))
    }
}

/// Draws one frame: in place on a terminal, appended otherwise.
pub(super) fn draw(frame: &str, tty: bool, json: bool, first: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if tty {
        queue!(out, cursor::MoveTo(0, 0))?;
        for line in frame.lines() {
            write!(out, "{line}")?;
            queue!(out, terminal::Clear(terminal::ClearType::UntilNewLine))?;
            write!(out, "\r\n")?;
        }
        queue!(out, terminal::Clear(terminal::ClearType::FromCursorDown))?;
    } else if json {
        writeln!(out, "{}", frame.trim_end())?;
    } else {
        if !first {
            writeln!(out)?;
        }
        write!(out, "{frame}")?;
    }
    out.flush()?;
    Ok(())
}

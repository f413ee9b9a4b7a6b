//! `bench-plot`: the charts of one `benches/load.sh` run, drawn from its results file.
//!
//! Usage: `bench-plot RESULTS.tsv OUT-DIR [LINK-DIR]`. Reads the run's medians
//! (`benches/results/<stamp>.tsv`, format in `plot/results.rs`), writes `rps.svg`, `cpu.svg`
//! and `p99.svg` into OUT-DIR (vigie against nginx and bare pingora per scenario), and prints
//! one Markdown image line per chart, linking to `LINK-DIR/<file>` (default: OUT-DIR), for
//! `load.sh` to embed in `benches/RESULTS.md`. A bad file is refused with the line at fault,
//! and nothing is written.

#[path = "plot/bars.rs"]
mod bars;
#[path = "plot/chart.rs"]
mod chart;
#[path = "plot/results.rs"]
mod results;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-plot: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let usage = "usage: bench-plot RESULTS.tsv OUT-DIR [LINK-DIR]";
    let (Some(tsv), Some(out)) = (args.next(), args.next()) else {
        anyhow::bail!(usage);
    };
    let link = args.next().unwrap_or_else(|| out.clone());
    anyhow::ensure!(args.next().is_none(), usage);
    let tsv = PathBuf::from(tsv);
    let text =
        std::fs::read_to_string(&tsv).with_context(|| format!("reading {}", tsv.display()))?;
    let run = results::parse(&text).with_context(|| format!("{}", tsv.display()))?;
    let link = PathBuf::from(link);
    for chart in chart::write_all(&run, &PathBuf::from(out))? {
        println!("![{}]({})", chart.title, link.join(chart.file).display());
    }
    Ok(())
}

//! The `vigie` command: `run` (default), `check`, `--version`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vigie::reload::{self, Source};

/// vigie: an edge proxy that replaces nginx + certbot + cron.
#[derive(Parser, Debug)]
#[command(name = "vigie", version, about)]
struct Cli {
    /// Configuration file (TOML). Without it, vigie runs its embedded demo.
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve (the default).
    Run,
    /// Check the configuration like `nginx -t`: exit 0 with a summary, or list every error.
    Check,
    /// Print the local CA certificate (PEM) to trust for `tls = "internal"` sites.
    Ca,
}

fn source(cli: &Cli) -> Source {
    match &cli.config {
        Some(path) => Source::File(path.clone()),
        None => Source::Demo,
    }
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn check(source: &Source) -> ExitCode {
    match reload::load(source, None) {
        Ok(snap) => {
            for w in &snap.config.warnings {
                eprintln!(
                    "{}:{}:{}: warning: {}",
                    source.name(),
                    w.line,
                    w.col,
                    w.message
                );
            }
            println!(
                "vigie: the configuration {} is valid: {}",
                source.name(),
                snap.config.summary()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("vigie: the configuration {} is invalid", source.name());
            ExitCode::from(1)
        }
    }
}

fn print_ca(source: &Source) -> ExitCode {
    let config = match reload::read(source) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    match vigie_acme::LocalCa::load_or_create(&config.server.state_dir) {
        Ok(ca) => {
            eprintln!(
                "vigie: local CA certificate ({}):",
                ca.cert_path().display()
            );
            print!("{}", ca.cert_pem());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigie: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(source: Source) -> ExitCode {
    let snap = match reload::load(&source, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "vigie: not started: the configuration {} is invalid",
                source.name()
            );
            return ExitCode::from(1);
        }
    };
    init_tracing(&snap.config.log.level);
    if matches!(source, Source::Demo) {
        eprintln!(
            "vigie: no -c given, running the embedded demo on https://localhost:8443 \
             (pages in {}; trust {}/state/ca/root.pem, or run `vigie ca`)",
            vigie::demo::dir().display(),
            vigie::demo::dir().display()
        );
    }
    match vigie::server::run(snap, source) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigie: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let src = source(&cli);
    match cli.command {
        Some(Command::Check) => check(&src),
        Some(Command::Ca) => print_ca(&src),
        Some(Command::Run) | None => run(src),
    }
}

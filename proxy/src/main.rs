//! The `vigie` command: `run` (default), `check`, `reload`, `ca`, `cert`, `cache`, `import`,
//! `--version`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: under load glibc's arenas contend on their locks and
/// spend a fifth of vigie's CPU (see benches/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use vigie::admin::encode_query_value;
use vigie::reload::{self, Source};

/// vigie: an edge proxy that replaces nginx + certbot + cron.
#[derive(Parser, Debug)]
#[command(name = "vigie", version, about)]
struct Cli {
    /// Configuration file (TOML) [default: /etc/vigie/vigie.toml]. Only a bare `vigie` or
    /// `vigie run`, without -c and without /etc/vigie/vigie.toml, runs the embedded demo.
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<PathBuf>,
    /// Use the embedded demo configuration (pages and state in a temporary directory)
    /// whatever exists in /etc/vigie: `vigie run --demo`, `vigie ca --demo`.
    #[arg(long, global = true, conflicts_with = "config")]
    demo: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve (the default).
    Run {
        /// Take over the listening sockets of a running vigie (graceful binary upgrade):
        /// start the new binary with --upgrade, then send SIGQUIT to the old process.
        #[arg(long)]
        upgrade: bool,
    },
    /// Check the configuration like `nginx -t`: exit 0 with a summary, or list every error.
    Check,
    /// Print the local CA certificate (PEM) to trust for `tls = "internal"` sites.
    Ca,
    /// Check the configuration, then tell the running instance to reload it (SIGHUP to the
    /// pid in STATE/vigie.pid), like `nginx -t && nginx -s reload`.
    Reload,
    /// ACME certificates of the running instance (through its admin listener).
    Cert {
        #[command(subcommand)]
        action: CertAction,
    },
    /// The proxy cache of the running instance (through its admin listener).
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Translate another proxy's configuration into vigie TOML.
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
}

#[derive(Subcommand, Debug)]
enum ImportFrom {
    /// Read FILE (and its includes) like `nginx -T`, write vigie TOML (to -o or stdout) and
    /// print a report of what was dropped or approximated to stderr. Exits 1 only when the
    /// result would not serve the same sites, 2 when FILE cannot be parsed.
    Nginx {
        /// The main nginx file (`/etc/nginx/nginx.conf`).
        file: PathBuf,
        /// Where to write the vigie configuration (default: stdout).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
}

/// `vigie import nginx FILE [-o OUT]`.
fn import(from: &ImportFrom) -> ExitCode {
    let ImportFrom::Nginx { file, output } = from;
    let result = match vigie::import::nginx::import_file(file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigie: {e}");
            return ExitCode::from(2);
        }
    };
    for line in &result.report {
        eprintln!("{line}");
    }
    match output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &result.toml) {
                eprintln!("vigie: cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
            eprintln!(
                "vigie: wrote {}; check it with `vigie check -c {}`",
                path.display(),
                path.display()
            );
        }
        None => print!("{}", result.toml),
    }
    if result.serves_same_sites {
        ExitCode::SUCCESS
    } else {
        eprintln!("vigie: some sites or locations could not be translated (NOT TRANSLATED above)");
        ExitCode::from(1)
    }
}

#[derive(Subcommand, Debug)]
enum CacheAction {
    /// Remove a URL's cached entries (every variant) from every zone, like a CDN purge.
    /// Needs `[server] admin_token`.
    Purge {
        /// Remove every URL that starts with URL (`https://example.com/api/`).
        #[arg(long)]
        prefix: bool,
        /// The absolute URL, as clients ask for it: `https://example.com/api/cv?lang=fr`.
        url: String,
    },
}

#[derive(Subcommand, Debug)]
enum CertAction {
    /// Names, issuer, expiry, next renewal and last error of each managed certificate.
    List,
    /// Renew now (like `certbot renew`); the new certificate is live when this returns.
    Renew {
        /// Renew even if the certificate is not due (like `--force-renewal`).
        #[arg(long)]
        force: bool,
        /// Only the site serving this name.
        name: Option<String>,
    },
    /// Order every managed certificate from a staging directory, with the running instance
    /// answering the challenges; nothing is stored or served. Proves a setup works before
    /// the production CA's rate limits are at stake.
    Issue {
        /// Required: this command only rehearses.
        #[arg(long)]
        dry_run: bool,
        /// Directory to rehearse against (default: Let's Encrypt staging for Let's Encrypt,
        /// else the configured directory).
        #[arg(long)]
        directory: Option<String>,
    },
}

/// The configuration file of every command given no `-c`.
const DEFAULT_CONFIG: &str = "/etc/vigie/vigie.toml";

/// `-c FILE`, else `--demo`, else `/etc/vigie/vigie.toml`; serving (a bare `vigie`, `vigie
/// run`) falls back to the embedded demo when that file does not exist. Every other command
/// acts on the file (and says so when it is missing), never on the demo.
fn source(cli: &Cli) -> Source {
    if let Some(path) = &cli.config {
        return Source::File(path.clone());
    }
    let serving = matches!(cli.command, None | Some(Command::Run { .. }));
    let default = std::path::Path::new(DEFAULT_CONFIG);
    if cli.demo || (serving && !default.exists()) {
        Source::Demo
    } else {
        Source::File(default.to_path_buf())
    }
}

fn init_tracing(level: &str, json: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt.with_filter(vigie::log_noise::ClientGone))
        .try_init();
}

/// `vigie check`: read, validate and compile only (like `nginx -t`, it changes nothing: no
/// file, directory, DNS lookup or socket); what starting would do is printed as notes.
fn check(source: &Source) -> ExitCode {
    match reload::check(source) {
        Ok(checked) => {
            let config = &checked.plan.config;
            for w in &config.warnings {
                eprintln!(
                    "{}:{}:{}: warning: {}",
                    source.name(),
                    w.line,
                    w.col,
                    w.message
                );
            }
            for note in &checked.notes {
                eprintln!("{}: note: {note}", source.name());
            }
            println!(
                "vigie: the configuration {} is valid: {}",
                source.name(),
                config.summary()
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

/// A request to the admin listener; returns the status and body.
fn admin_request(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    token: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(300)))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// The configuration and its admin listener, for a command that talks to the running
/// instance (`vigie cert`, `vigie cache`); the error is already printed.
fn admin_of(
    source: &Source,
    command: &str,
) -> Result<(vigie_config::Config, std::net::SocketAddr), ExitCode> {
    let config = reload::read(source).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(1)
    })?;
    let Some(admin) = config.server.admin else {
        eprintln!("vigie: [server] admin is off: `vigie {command}` talks to the admin listener");
        return Err(ExitCode::from(1));
    };
    Ok((config, admin))
}

/// The configured `[server] admin_token` for a state-changing `command`; `Err` (printed)
/// when there is none.
fn token_for<'a>(config: &'a vigie_config::Config, command: &str) -> Result<&'a str, ExitCode> {
    config.server.admin_token.as_deref().ok_or_else(|| {
        eprintln!("vigie: `vigie {command}` needs [server] admin_token in the configuration");
        ExitCode::from(1)
    })
}

fn cert(source: &Source, action: &CertAction) -> ExitCode {
    let (config, admin) = match admin_of(source, "cert") {
        Ok(found) => found,
        Err(code) => return code,
    };
    let token = match action {
        CertAction::List => None,
        CertAction::Renew { .. } => match token_for(&config, "cert renew") {
            Ok(t) => Some(t),
            Err(code) => return code,
        },
        CertAction::Issue { .. } => match token_for(&config, "cert issue --dry-run") {
            Ok(t) => Some(t),
            Err(code) => return code,
        },
    };
    let (method, target) = match action {
        CertAction::List => ("GET", "/certs".to_string()),
        CertAction::Renew { force, name } => {
            let mut t = format!("/certs/renew?force={}", u8::from(*force));
            if let Some(n) = name {
                t.push_str(&format!("&name={}", encode_query_value(n)));
            }
            ("POST", t)
        }
        CertAction::Issue { dry_run, directory } => {
            if !dry_run {
                eprintln!(
                    "vigie: `cert issue` only rehearses (--dry-run); running instances order \
                     their certificates by themselves"
                );
                return ExitCode::from(2);
            }
            let mut t = "/certs/dry-run".to_string();
            if let Some(d) = directory {
                t.push_str(&format!("?directory={}", encode_query_value(d)));
            }
            ("POST", t)
        }
    };
    call_admin(admin, method, &target, token, "")
}

/// Send one request to the admin listener, print the answer; exit status from its status.
fn call_admin(
    admin: std::net::SocketAddr,
    method: &str,
    target: &str,
    token: Option<&str>,
    body: &str,
) -> ExitCode {
    match admin_request(admin, method, target, token, body) {
        Ok((status, body)) => {
            print!("{body}");
            if status == 200 {
                ExitCode::SUCCESS
            } else {
                eprintln!("vigie: the admin listener answered {status}");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("vigie: cannot reach the admin listener at {admin}: {e} (is vigie running?)");
            ExitCode::from(1)
        }
    }
}

fn cache(source: &Source, action: &CacheAction) -> ExitCode {
    let (config, admin) = match admin_of(source, "cache") {
        Ok(found) => found,
        Err(code) => return code,
    };
    let token = match token_for(&config, "cache purge") {
        Ok(t) => t,
        Err(code) => return code,
    };
    match action {
        CacheAction::Purge { prefix, url } => {
            let target = format!("/cache/purge?prefix={}", u8::from(*prefix));
            call_admin(admin, "POST", &target, Some(token), url)
        }
    }
}

fn reload_running(source: &Source) -> ExitCode {
    let checked = match reload::check(source) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "vigie: not reloading: the configuration {} is invalid",
                source.name()
            );
            return ExitCode::from(1);
        }
    };
    let pid_file = checked.plan.config.server.state_dir.join("vigie.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok());
    let Some(pid) = pid else {
        eprintln!(
            "vigie: no running instance: cannot read a pid from {}",
            pid_file.display()
        );
        return ExitCode::from(1);
    };
    match nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    ) {
        Ok(()) => {
            println!("vigie: the configuration is valid; reload signalled to pid {pid}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "vigie: cannot signal pid {pid} (from {}): {e}",
                pid_file.display()
            );
            ExitCode::from(1)
        }
    }
}

fn run(source: Source, upgrade: bool) -> ExitCode {
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
    init_tracing(&snap.config.log.level, snap.config.log.json);
    if matches!(source, Source::Demo) {
        eprintln!(
            "vigie: running the embedded demo (no -c, no {DEFAULT_CONFIG}, or --demo) on \
             https://localhost:8443 \
             (pages in {}; trust {}/state/ca/root.pem, or run `vigie ca`)",
            vigie::demo::dir().display(),
            vigie::demo::dir().display()
        );
    }
    match vigie::server::run(snap, source, upgrade) {
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
    match &cli.command {
        Some(Command::Check) => check(&src),
        Some(Command::Ca) => print_ca(&src),
        Some(Command::Reload) => reload_running(&src),
        Some(Command::Cert { action }) => cert(&src, action),
        Some(Command::Cache { action }) => cache(&src, action),
        Some(Command::Import { from }) => import(from),
        Some(Command::Run { upgrade }) => run(src, *upgrade),
        None => run(src, false),
    }
}

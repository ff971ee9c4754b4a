//! Configuration of `coper-server`: the command line, with environment variables and an optional
//! TOML file beneath it.
//!
//! Precedence, highest first: command-line flag, environment variable (`COPER_…`), the TOML file
//! given with `--config`, the built-in default. Every field is documented where it is declared, so
//! `coper-server serve --help` is the reference.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use jiff::Timestamp;
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "coper-server",
    version,
    about = "coper: the Questura's central server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and the kiosks' sync WebSocket.
    Serve(ServeArgs),
    /// Issue a one-time enrolment code for a new kiosk of a partner body; prints the code.
    KioskCode(KioskCodeArgs),
    /// Revoke a kiosk (by id): it is refused from its next connection on, and its leases are
    /// returned. Given an enrolment code instead, withdraw that code.
    KioskRevoke(KioskRevokeArgs),
    /// Create an administrator account, so a fresh install can start without a browser. The
    /// password comes from COPER_ADMIN_PASSWORD or, if that is unset, the first line of
    /// standard input.
    CreateAdmin(CreateAdminArgs),
    /// Create a staff account with a role (`admin` or `counter`); the password as for
    /// `create-admin`.
    CreateUser(CreateUserArgs),
    /// Import the list of ready permits (CSV from the national system). Nothing is imported if
    /// any row is wrong; each error is printed with its line number.
    ImportReady(ImportReadyArgs),
    /// Search, correct or remove entries of the ready list (audited, as on the administration's
    /// page `/admin/permits/list`).
    ReadyList(ReadyListArgs),
    /// Copy the database into a new file, consistently while the server runs and kiosks book
    /// (SQLite's online backup); the copy is checked before it gets its name.
    Backup(BackupArgs),
    /// Put a backup in place of the database, with the server stopped. Refuses a file that is
    /// not a coper database or comes from a newer coper; the database it replaces is kept
    /// beside it (`coper.sqlite3.before-restore-…`).
    Restore(RestoreArgs),
    /// Internal: parse a kiosk's changes from standard input, in the child process `serve`
    /// starts with bounded memory and time (`sync::sandbox`).
    #[command(hide = true)]
    CheckChanges,
}

#[derive(Debug, Args)]
pub struct CreateAdminArgs {
    /// Login name: 3 to 64 letters, digits, dots, hyphens or underscores.
    #[arg(long)]
    pub username: String,
    /// Name shown in the audit log and the pages.
    #[arg(long, default_value = "")]
    pub display_name: String,
    /// The server's data folder.
    #[arg(long, env = "COPER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    pub account: CreateAdminArgs,
    /// `admin` (sets up the Questura), `counter` (works the counter) or `precheck` (checks
    /// people's documents before their appointment).
    #[arg(long, value_parser = ["admin", "counter", "precheck"])]
    pub role: String,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file (an existing one is not overwritten).
    #[arg(long)]
    pub to: PathBuf,
    /// The server's data folder.
    #[arg(long, env = "COPER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore.
    #[arg(long)]
    pub from: PathBuf,
    /// The server's data folder (created if missing, e.g. on a new machine).
    #[arg(long, env = "COPER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportReadyArgs {
    /// The CSV file: `;` or `,`, UTF-8 with or without BOM, dates gg/mm/aaaa.
    pub file: PathBuf,
    /// The server's data folder.
    #[arg(long, env = "COPER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReadyListArgs {
    #[command(subcommand)]
    pub action: ReadyListAction,
    /// The server's data folder.
    #[arg(long, env = "COPER_DATA_DIR", default_value = DEFAULT_DATA_DIR, global = true)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ReadyListAction {
    /// Print the entries whose names contain every word given (accents and case ignored), or
    /// whose receipt or pratica number it is: id, names, dates, numbers, drawer, state.
    Search {
        /// Names, or a receipt or pratica number.
        query: Vec<String>,
    },
    /// Correct entry ID: the fields given replace the stored ones (dates gg/mm/aaaa).
    Correct {
        id: i64,
        #[arg(long)]
        surname: Option<String>,
        #[arg(long)]
        given_names: Option<String>,
        #[arg(long)]
        birth_date: Option<String>,
        #[arg(long)]
        fingerprint_date: Option<String>,
        #[arg(long)]
        receipt: Option<String>,
        #[arg(long)]
        pratica: Option<String>,
        #[arg(long)]
        drawer: Option<String>,
    },
    /// Remove entry ID from the list, with the reason for the audit log (refused while the
    /// person has an active booking).
    Remove {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct KioskCodeArgs {
    /// The partner body (its id, as in `GET /api/v1/partners`).
    #[arg(long)]
    pub partner: i64,
    /// A name for the kiosk, e.g. "Sportello 1".
    #[arg(long)]
    pub label: String,
    /// Days the code stays valid.
    #[arg(long, default_value_t = 7)]
    pub valid_days: i64,
    /// How many codes to issue (one per line), e.g. to set up a room of kiosks.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// The server's data folder.
    #[arg(long, env = "COPER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct KioskRevokeArgs {
    /// The kiosk's id, or an enrolment code not used yet.
    pub kiosk: String,
    /// The server's data folder.
    #[arg(long, env = "COPER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on. Port 0 picks a free port; the address actually bound is
    /// printed on standard output as `coper-server listening on http://ADDR`.
    #[arg(long, env = "COPER_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Folder for the database and other state; created if missing.
    #[arg(long, env = "COPER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Optional TOML file with the same settings (`listen`, `data_dir`, `demo`,
    /// `trusted_proxies`, `fixed_now`), a `[limits]` table (docs/SECURITY.md lists them) and a
    /// `[notices]` table (the SMTP relay and the SMS gateway: docs/NOTICES.md).
    #[arg(long, env = "COPER_CONFIG")]
    pub config: Option<PathBuf>,

    /// Seed a synthetic Pavia-like Questura (services, a week of bookings, partner bodies, ready
    /// permits) if the database has never been seeded. Never touches a database seeded before.
    #[arg(long, env = "COPER_DEMO")]
    pub demo: bool,

    /// Freeze the server's clock at this instant (RFC 3339, e.g. `2026-11-23T08:00:00Z`). For
    /// tests and reproducible demonstrations only: never set it in production.
    #[arg(long, env = "COPER_FIXED_NOW", hide = true)]
    pub fixed_now: Option<Timestamp>,

    /// A reverse proxy (address or network, e.g. `127.0.0.1/32`) whose `X-Forwarded-For` is
    /// believed, so that limits per address count real clients. Repeat, or comma-separate in
    /// the environment. None by default: the connecting address is the client.
    #[arg(
        long = "trusted-proxy",
        env = "COPER_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The origin people, staff and kiosks reach this server at, e.g.
    /// `https://permessi.questura.example` (behind a reverse proxy, the proxy's). When set, a
    /// browser's `Origin` must be exactly this, and the links in messages start with it. Unset,
    /// the `Host` header is believed (enough on loopback and for the demo).
    #[arg(long, env = "COPER_PUBLIC_ORIGIN", value_parser = parse_public_origin)]
    pub public_origin: Option<String>,
}

/// A public origin as the setting takes it: `http(s)://host[:port]`, lowercase, without a path
/// or a final `/`, because browsers send `Origin` in that form and links are built on it.
pub fn parse_public_origin(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('/').to_ascii_lowercase();
    let authority = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("public_origin must start with https:// (or http://)")?;
    let valid = |c: char| c.is_ascii_alphanumeric() || "-.:[]".contains(c);
    if authority.is_empty() || !authority.chars().all(valid) {
        return Err(format!(
            "public_origin must be a scheme and a host, without a path: «{text}»"
        ));
    }
    Ok(text)
}

/// The TOML file's shape: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    fixed_now: Option<Timestamp>,
    demo: Option<bool>,
    trusted_proxies: Option<Vec<ipnet::IpNet>>,
    public_origin: Option<String>,
    #[serde(default)]
    limits: crate::limits::LimitsFile,
    #[serde(default)]
    notices: crate::notices::NoticesConfig,
    #[serde(default)]
    metrics: crate::metrics::MetricsAccess,
}

/// The settings `serve` runs with, once every layer is merged.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub demo: bool,
    pub clock: crate::clock::Clock,
    /// Every limit on what the network may send: the defaults, the file's `[limits]` over them,
    /// and the trusted proxies.
    pub limits: crate::limits::Limits,
    /// How messages to people leave (`[notices]`): the log channel when absent. Its
    /// `public_url` (where links in messages start) is the public origin unless set.
    pub notices: crate::notices::NoticesConfig,
    /// Where people, staff and kiosks reach the server (`public_origin`).
    pub public_origin: Option<String>,
    /// Who may read `/metrics` (`[metrics]`; the token also from `COPER_METRICS_TOKEN`).
    pub metrics: crate::metrics::MetricsAccess,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DATABASE_FILE: &str = "coper.sqlite3";
/// Locked by a running `serve` for as long as it runs: a second server, or a restore, on the
/// same data folder is refused.
pub const LOCK_FILE: &str = "coper.lock";
/// Written by `backup` when a backup of this data folder succeeded: its time and file, for
/// `/metrics`.
pub const LAST_BACKUP_FILE: &str = "last-backup";

impl ServeConfig {
    pub fn from_args(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        let fixed_now = args.fixed_now.or(file.fixed_now);
        let mut notices = file.notices;
        let public_origin = args
            .public_origin
            .or(file.public_origin)
            .map(|origin| parse_public_origin(&origin))
            .transpose()
            .map_err(anyhow::Error::msg)?;
        // Links in messages start with the public origin, unless `[notices] public_url` says
        // otherwise (its older, links-only setting).
        if notices.public_url.is_none() {
            notices.public_url.clone_from(&public_origin);
        }
        Ok(Self {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            demo: args.demo || file.demo.unwrap_or(false),
            clock: match fixed_now {
                Some(at) => crate::clock::Clock::Fixed(at),
                None => crate::clock::Clock::System,
            },
            limits: crate::limits::Limits {
                trusted_proxies: if args.trusted_proxies.is_empty() {
                    file.trusted_proxies.unwrap_or_default()
                } else {
                    args.trusted_proxies
                },
                ..file
                    .limits
                    .apply(crate::limits::Limits::default())
                    .map_err(anyhow::Error::msg)?
            },
            notices,
            public_origin,
            metrics: crate::metrics::MetricsAccess {
                token: std::env::var("COPER_METRICS_TOKEN")
                    .ok()
                    .or(file.metrics.token),
                ..file.metrics
            },
        })
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }
}

fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("the configuration file {} is not valid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(argv: &[&str]) -> ServeArgs {
        let mut full = vec!["coper-server", "serve"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("coper.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/coper\"\n",
        )
        .unwrap();
        let from_file =
            ServeConfig::from_args(serve_args(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(from_file.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(from_file.data_dir, PathBuf::from("/srv/coper"));
        let flag_wins = ServeConfig::from_args(serve_args(&[
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "0.0.0.0:80",
        ]))
        .unwrap();
        assert_eq!(flag_wins.listen.to_string(), "0.0.0.0:80");
        assert_eq!(flag_wins.data_dir, PathBuf::from("/srv/coper"));
    }

    #[test]
    fn trusted_proxies_come_from_flags_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("coper.toml");
        std::fs::write(&file, "trusted_proxies = [\"10.0.0.0/8\", \"::1/128\"]\n").unwrap();
        let config = file.to_str().unwrap();
        let from_file = ServeConfig::from_args(serve_args(&["--config", config])).unwrap();
        assert_eq!(from_file.limits.trusted_proxies.len(), 2);
        let flags = ServeConfig::from_args(serve_args(&[
            "--config",
            config,
            "--trusted-proxy",
            "127.0.0.1/32",
        ]))
        .unwrap();
        assert_eq!(
            flags.limits.trusted_proxies,
            vec!["127.0.0.1/32".parse().unwrap()]
        );
        let nonsense = ["coper-server", "serve", "--trusted-proxy", "nonsense"];
        assert!(Cli::try_parse_from(nonsense).is_err());
    }

    #[test]
    fn the_public_origin_is_normalised_and_a_path_refused() {
        let parsed = |argv: &[&str]| ServeConfig::from_args(serve_args(argv));
        let config = parsed(&["--public-origin", "HTTPS://Permessi.Questura.example/"]).unwrap();
        assert_eq!(
            config.public_origin.as_deref(),
            Some("https://permessi.questura.example")
        );
        assert_eq!(config.notices.public_url, config.public_origin);
        let cli = |origin: &str| {
            Cli::try_parse_from(["coper-server", "serve", "--public-origin", origin])
        };
        assert!(cli("https://permessi.questura.example/prenota").is_err());
        assert!(cli("permessi.questura.example").is_err());
        assert!(cli("https://").is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("coper.toml");
        std::fs::write(&file, "[notices]\npublic_url = \"https://old.example\"\n").unwrap();
        // The older, links-only setting changes the links, not the origin browsers must send.
        let links_only = parsed(&["--config", file.to_str().unwrap()]).unwrap();
        assert_eq!(links_only.public_origin, None);
        assert_eq!(
            links_only.notices.public_url.as_deref(),
            Some("https://old.example")
        );
    }

    #[test]
    fn a_misspelt_key_in_the_file_is_an_error_not_a_silent_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("coper.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let err =
            ServeConfig::from_args(serve_args(&["--config", file.to_str().unwrap()])).unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
    }
}

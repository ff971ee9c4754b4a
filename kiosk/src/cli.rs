//! The `coper-kiosk` command line.
//!
//! ```sh
//! coper-kiosk enrol --server wss://questura.example/api/v1/sync --code ABCD-EFGH --data-dir /var/lib/coper-kiosk
//! coper-kiosk run --data-dir /var/lib/coper-kiosk --printer escpos:/dev/usb/lp0
//! coper-kiosk reminder --sample --lang ar --format escpos --out r.bin --png r.png
//! ```

use std::{path::PathBuf, sync::Arc};

use clap::{Parser, Subcommand, ValueEnum};
use slint::ComponentHandle;

use crate::{
    AppWindow,
    core::{KioskConfig, KioskCore},
    reminder::{self, Paper},
    ui::{self, Printer},
};

#[derive(Debug, Parser)]
#[command(
    name = "coper-kiosk",
    version,
    about = "coper: the partner offices' kiosk"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the touchscreen application (the default).
    Run(RunArgs),
    /// Enrol this kiosk with a one-time code from the Questura (once, before the first run).
    Enrol {
        /// The server's sync address, e.g. wss://questura.example/api/v1/sync
        #[arg(long)]
        server: String,
        #[arg(long)]
        code: String,
        #[arg(long, env = "COPER_KIOSK_DATA_DIR", default_value = "./kiosk-data")]
        data_dir: PathBuf,
        /// Seal the kiosk's key with this file (see `run --key-file`).
        #[arg(long, env = "COPER_KIOSK_KEY_FILE")]
        key_file: Option<PathBuf>,
        /// Trust only this certificate (PEM: the Questura's own CA) for a `wss://` server,
        /// instead of the system's CAs; kept in the data folder for every later connection.
        #[arg(long)]
        server_certificate: Option<PathBuf>,
    },
    /// Write a reminder to a file without a printer: for tests and for setting printers up.
    Reminder(ReminderArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[arg(long, env = "COPER_KIOSK_DATA_DIR", default_value = "./kiosk-data")]
    pub data_dir: PathBuf,
    /// Where reminders go: pdf (CUPS, A5), pdf-a4, pdf:PRINTER, escpos:DEVICE, dir:FOLDER.
    #[arg(long, env = "COPER_KIOSK_PRINTER", default_value = "pdf")]
    pub printer: String,
    /// A window instead of the full screen (for trying the kiosk on a desktop).
    #[arg(long)]
    pub windowed: bool,
    /// A file of 32+ random bytes that seals the kiosk's signing key at rest. Defaults to the
    /// systemd credential `coper-kiosk-key` when the service has one (`LoadCredentialEncrypted=`).
    #[arg(long, env = "COPER_KIOSK_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

/// The kiosk's configuration for `data_dir`, with the key file given, or else the systemd
/// credential `coper-kiosk-key` if the service was started with one.
fn config(data_dir: &std::path::Path, key_file: Option<PathBuf>) -> KioskConfig {
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|dir| PathBuf::from(dir).join("coper-kiosk-key"))
        .filter(|path| path.exists());
    KioskConfig {
        key_file: key_file.or(credential),
        ..KioskConfig::new(data_dir)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Pdf,
    Escpos,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PaperArg {
    A4,
    A5,
}

#[derive(Debug, clap::Args)]
pub struct ReminderArgs {
    /// A synthetic booking (the only source from the command line).
    #[arg(long)]
    pub sample: bool,
    /// The person's language: it, en, fr, ar, sq, uk, ru, zh, es, bn, ur.
    #[arg(long, default_value = "it")]
    pub lang: String,
    #[arg(long, value_enum, default_value = "pdf")]
    pub format: Format,
    #[arg(long, value_enum, default_value = "a5")]
    pub paper: PaperArg,
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the receipt's rendered raster as a PNG.
    #[arg(long)]
    pub png: Option<PathBuf>,
}

type Error = Box<dyn std::error::Error>;

pub fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    match cli.command {
        None => run(RunArgs {
            data_dir: std::env::var_os("COPER_KIOSK_DATA_DIR")
                .map_or_else(|| "./kiosk-data".into(), Into::into),
            printer: std::env::var("COPER_KIOSK_PRINTER").unwrap_or_else(|_| "pdf".into()),
            windowed: false,
            key_file: std::env::var_os("COPER_KIOSK_KEY_FILE").map(Into::into),
        }),
        Some(Command::Run(args)) => run(args),
        Some(Command::Enrol {
            server,
            code,
            data_dir,
            key_file,
            server_certificate,
        }) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let config = config(&data_dir, key_file);
            if let Some(certificate) = &server_certificate {
                crate::core::pin_server_certificate(&config, certificate)?;
            }
            if server.starts_with("ws://") {
                eprintln!(
                    "attenzione: ws:// non è cifrato; in produzione usare wss:// \
                     (warning: ws:// is not encrypted; use wss:// in production)"
                );
            }
            let kiosk = runtime.block_on(crate::core::enrol(&config, &server, &code))?;
            println!("kiosk {kiosk} enrolled");
            Ok(())
        }
        Some(Command::Reminder(args)) => write_reminder(&args),
    }
}

fn write_reminder(args: &ReminderArgs) -> Result<(), Error> {
    if !args.sample {
        return Err("only --sample is available from the command line".into());
    }
    if crate::i18n::language(&args.lang).is_none() {
        return Err(format!("unknown language «{}»", args.lang).into());
    }
    let sample = reminder::sample(&args.lang);
    match args.format {
        Format::Pdf => {
            let paper = match args.paper {
                PaperArg::A4 => Paper::A4,
                PaperArg::A5 => Paper::A5,
            };
            std::fs::write(&args.out, reminder::pdf(&sample, paper)?)?;
        }
        Format::Escpos => {
            let raster = reminder::receipt_raster(&sample)?;
            std::fs::write(&args.out, reminder::escpos(&raster))?;
        }
    }
    if let Some(png) = &args.png {
        std::fs::write(png, reminder::receipt_png(&sample)?)?;
    }
    println!("{}", args.out.display());
    Ok(())
}

fn run(args: RunArgs) -> Result<(), Error> {
    let printer = Printer::parse(&args.printer)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let core = {
        let _guard = runtime.enter();
        Arc::new(KioskCore::start(config(
            &args.data_dir,
            args.key_file.clone(),
        ))?)
    };
    let window = AppWindow::new()?;
    let controller = ui::bind(&window, core.clone(), printer);
    let timer = controller.watch_inactivity();
    if !args.windowed {
        window.window().set_fullscreen(true);
    }
    window.run()?;
    drop(timer);
    drop(controller);
    drop(window);
    if let Ok(core) = Arc::try_unwrap(core) {
        runtime.block_on(core.shutdown());
    }
    Ok(())
}

//! The printer: where reminders go (`--printer`), and the thread that prints them, so no screen
//! waits on a printer. Jobs are printed one at a time, in order; each reports back when done.

use std::{path::PathBuf, sync::mpsc, time::Duration};

use crate::reminder::{self, Paper, Reminder};

/// Where reminders go, from the kiosk's configuration (`--printer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Printer {
    /// A PDF to the system printer through CUPS (`lp`), optionally a named one.
    Cups {
        printer: Option<String>,
        paper: Paper,
    },
    /// An 80 mm ESC/POS receipt printer's device, e.g. `/dev/usb/lp0`.
    EscPos(PathBuf),
    /// Files in a folder (PDF and ESC/POS both): for tests and for setting printers up.
    Folder {
        folder: PathBuf,
        /// Waited before each reminder is written: a slow printer, for tests that show the
        /// screens never wait on it. Zero from `dir:FOLDER`.
        delay: Duration,
    },
}

impl Printer {
    /// `pdf`, `pdf-a4`, `pdf:PRINTER`, `escpos:DEVICE` or `dir:FOLDER`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        match spec.split_once(':') {
            None if spec == "pdf" => Ok(Self::Cups {
                printer: None,
                paper: Paper::A5,
            }),
            None if spec == "pdf-a4" => Ok(Self::Cups {
                printer: None,
                paper: Paper::A4,
            }),
            Some(("pdf", name)) => Ok(Self::Cups {
                printer: Some(name.to_owned()),
                paper: Paper::A5,
            }),
            Some(("escpos", device)) => Ok(Self::EscPos(device.into())),
            Some(("dir", folder)) => Ok(Self::folder(folder)),
            _ => Err(format!(
                "unknown printer «{spec}»: pdf, pdf-a4, pdf:NAME, escpos:DEVICE or dir:FOLDER"
            )),
        }
    }

    /// Files in `folder`, written at once.
    pub fn folder(folder: impl Into<PathBuf>) -> Self {
        Self::Folder {
            folder: folder.into(),
            delay: Duration::ZERO,
        }
    }

    /// Print `r`, however long it takes.
    fn print(&self, r: &Reminder) -> Result<(), String> {
        match self {
            Self::Cups { printer, paper } => {
                let pdf = reminder::pdf(r, *paper).map_err(|e| e.to_string())?;
                reminder::print_pdf(&pdf, printer.as_deref()).map_err(|e| e.to_string())
            }
            Self::EscPos(device) => {
                let raster = reminder::receipt_raster(r).map_err(|e| e.to_string())?;
                reminder::print_escpos(&reminder::escpos(&raster), device)
                    .map_err(|e| e.to_string())
            }
            Self::Folder { folder, delay } => {
                std::thread::sleep(*delay);
                std::fs::create_dir_all(folder).map_err(|e| e.to_string())?;
                let pdf = reminder::pdf(r, Paper::A5).map_err(|e| e.to_string())?;
                std::fs::write(folder.join(format!("{}.pdf", r.booking_code)), pdf)
                    .map_err(|e| e.to_string())?;
                let raster = reminder::receipt_raster(r).map_err(|e| e.to_string())?;
                std::fs::write(
                    folder.join(format!("{}.escpos", r.booking_code)),
                    reminder::escpos(&raster),
                )
                .map_err(|e| e.to_string())
            }
        }
    }
}

/// What a finished job reports: nothing, or why it did not print.
type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The printer's thread. It stops when this is dropped, after the jobs already sent.
pub(super) struct Worker {
    jobs: mpsc::Sender<(Reminder, Done)>,
}

impl Worker {
    pub(super) fn start(printer: Printer) -> Self {
        let (jobs, queue) = mpsc::channel::<(Reminder, Done)>();
        std::thread::Builder::new()
            .name("printer".into())
            .spawn(move || {
                for (reminder, done) in queue {
                    done(printer.print(&reminder));
                }
            })
            .expect("the system starts a thread");
        Self { jobs }
    }

    /// Print `reminder` on the printer's thread; `done` is called there when it is finished.
    pub(super) fn print(
        &self,
        reminder: Reminder,
        done: impl FnOnce(Result<(), String>) + Send + 'static,
    ) {
        if let Err(mpsc::SendError((_, done))) = self.jobs.send((reminder, Box::new(done))) {
            done(Err("the printer's thread has stopped".into()));
        }
    }
}

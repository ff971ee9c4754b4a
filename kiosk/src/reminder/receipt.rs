//! The reminder for an 80 mm ESC/POS receipt printer: the PDF layout set 72 mm wide, rasterised
//! at the printer's 203 dpi by `pdftoppm` (receipt printers' code pages cannot print Arabic,
//! Bengali or Chinese), and sent as one bitmap (`GS v 0`).

use std::{path::Path, process::Command};

use super::{Paper, Reminder, ReminderError, pdf::pdf};

/// A 1-bit raster: `width` dots per row, rows of `(width + 7) / 8` bytes, 1 = black.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub bits: Vec<u8>,
}

impl Raster {
    pub fn is_black(&self, x: usize, y: usize) -> bool {
        let row = self.width.div_ceil(8);
        self.bits[y * row + x / 8] & (0x80 >> (x % 8)) != 0
    }

    /// Parse a binary PBM (`P4`), as `pdftoppm -mono` writes it.
    fn from_pbm(bytes: &[u8]) -> Option<Self> {
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 3 {
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if bytes.get(at) == Some(&b'#') {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            let start = at;
            while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            fields.push(std::str::from_utf8(&bytes[start..at]).ok()?.to_owned());
        }
        if fields[0] != "P4" {
            return None;
        }
        let (width, height): (usize, usize) = (fields[1].parse().ok()?, fields[2].parse().ok()?);
        let data = bytes.get(at + 1..)?;
        let len = width.div_ceil(8) * height;
        (data.len() >= len).then(|| Self {
            width,
            height,
            bits: data[..len].to_vec(),
        })
    }

    /// Without the blank rows at the bottom (the receipt page is taller than its text).
    fn trimmed(mut self) -> Self {
        let row = self.width.div_ceil(8);
        while self.height > 1
            && self.bits[(self.height - 1) * row..self.height * row]
                .iter()
                .all(|b| *b == 0)
        {
            self.height -= 1;
        }
        self.bits.truncate(self.height * row);
        self
    }
}

/// The printer's resolution: 8 dots per millimetre, 576 dots across 72 mm.
pub const RECEIPT_DPI: u32 = 203;

fn pdftoppm(pdf: &[u8], args: &[&str], extension: &str) -> Result<Vec<u8>, ReminderError> {
    let dir = tempfile_dir()?;
    // The PDF carries a name: the folder goes whatever happens.
    let result = rasterise(&dir, pdf, args, extension);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn rasterise(
    dir: &Path,
    pdf: &[u8],
    args: &[&str],
    extension: &str,
) -> Result<Vec<u8>, ReminderError> {
    let input = dir.join("reminder.pdf");
    std::fs::write(&input, pdf).map_err(|e| ReminderError::Raster(e.to_string()))?;
    let output = dir.join("reminder");
    let status = Command::new("pdftoppm")
        .args(args)
        .arg("-singlefile")
        .arg(&input)
        .arg(&output)
        .status()
        .map_err(|e| ReminderError::Raster(e.to_string()))?;
    if !status.success() {
        return Err(ReminderError::Raster(format!(
            "pdftoppm exited with {status}"
        )));
    }
    std::fs::read(output.with_extension(extension))
        .map_err(|e| ReminderError::Raster(e.to_string()))
}

pub(super) fn tempfile_dir() -> Result<std::path::PathBuf, ReminderError> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| ReminderError::Raster(e.to_string()))?;
    let dir = std::env::temp_dir().join(format!(
        "coper-reminder-{}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| ReminderError::Raster(e.to_string()))?;
    Ok(dir)
}

/// The receipt as the printer will print it.
pub fn receipt_raster(reminder: &Reminder) -> Result<Raster, ReminderError> {
    let pdf = pdf(reminder, Paper::Receipt)?;
    let dpi = RECEIPT_DPI.to_string();
    let pbm = pdftoppm(&pdf, &["-mono", "-r", &dpi], "pbm")?;
    Raster::from_pbm(&pbm)
        .map(Raster::trimmed)
        .ok_or_else(|| ReminderError::Raster("unreadable PBM".into()))
}

/// The receipt as a PNG picture (for setting printers up, and for the documentation).
pub fn receipt_png(reminder: &Reminder) -> Result<Vec<u8>, ReminderError> {
    let pdf = pdf(reminder, Paper::Receipt)?;
    pdftoppm(&pdf, &["-png", "-r", &RECEIPT_DPI.to_string()], "png")
}

/// The ESC/POS byte stream of `raster`: initialise, the bitmap in bands (`GS v 0`), feed, cut.
pub fn escpos(raster: &Raster) -> Vec<u8> {
    const BAND: usize = 256;
    let row = raster.width.div_ceil(8);
    let mut out = vec![0x1B, 0x40]; // ESC @: initialise
    out.extend_from_slice(&[0x1B, 0x61, 0x01]); // ESC a 1: centre
    for start in (0..raster.height).step_by(BAND) {
        let rows = BAND.min(raster.height - start);
        out.extend_from_slice(&[0x1D, 0x76, 0x30, 0x00]);
        out.extend_from_slice(&(row as u16).to_le_bytes());
        out.extend_from_slice(&(rows as u16).to_le_bytes());
        out.extend_from_slice(&raster.bits[start * row..(start + rows) * row]);
    }
    out.extend_from_slice(&[0x1B, 0x64, 0x04]); // ESC d 4: feed four lines
    out.extend_from_slice(&[0x1D, 0x56, 0x42, 0x00]); // GS V B 0: cut
    out
}

/// Read the bitmap back out of an ESC/POS stream written by [`escpos`] (for tests and checks).
pub fn raster_of_escpos(bytes: &[u8]) -> Option<Raster> {
    let mut at = 0;
    let (mut width, mut bits, mut height) = (0, Vec::new(), 0);
    while at + 8 <= bytes.len() {
        if bytes[at..at + 4] == [0x1D, 0x76, 0x30, 0x00] {
            let row = u16::from_le_bytes([bytes[at + 4], bytes[at + 5]]) as usize;
            let rows = u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]) as usize;
            width = row * 8;
            bits.extend_from_slice(bytes.get(at + 8..at + 8 + row * rows)?);
            height += rows;
            at += 8 + row * rows;
        } else {
            at += 1;
        }
    }
    (height > 0).then_some(Raster {
        width,
        height,
        bits,
    })
}

/// Write an ESC/POS stream to a receipt printer's device (e.g. `/dev/usb/lp0`).
pub fn print_escpos(bytes: &[u8], device: &Path) -> std::io::Result<()> {
    std::fs::write(device, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escpos_stream_gives_its_bitmap_back() {
        let raster = Raster {
            width: 16,
            height: 300,
            bits: (0..600).map(|i| (i % 251) as u8).collect(),
        };
        assert_eq!(raster_of_escpos(&escpos(&raster)), Some(raster));
    }
}

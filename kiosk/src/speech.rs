//! Reading the kiosk's answers aloud (issue #15; EN 301 549 5.1.3 for closed-functionality
//! kiosks): the self-check's answer, the booking proposal and the confirmation, in the person's
//! language, with espeak-ng (Debian's `espeak-ng`: every one of the eleven languages, offline).
//! One utterance at a time: a new one stops the one speaking. Off the UI thread.
//!
//! `Speaker::Folder` writes WAV files instead of playing them (tests, and setting a kiosk up).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
};

/// espeak-ng's voice for one of the kiosk's languages.
pub fn voice(lang: &str) -> &'static str {
    match lang {
        "en" => "en-gb",
        "fr" => "fr",
        "ar" => "ar",
        "sq" => "sq",
        "uk" => "uk",
        "ru" => "ru",
        "zh" => "cmn",
        "es" => "es",
        "bn" => "bn",
        "ur" => "ur",
        _ => "it",
    }
}

/// Words a minute: a little slower than espeak-ng's 175, for people hearing a second language.
const RATE: &str = "145";

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("espeak-ng cannot be started (install it: scripts/install-deps): {0}")]
    Missing(std::io::Error),
    #[error("espeak-ng failed: {0}")]
    Failed(String),
}

/// Where speech goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Speaker {
    /// The kiosk's loudspeaker.
    System,
    /// WAV files in a folder, numbered in order (`1-ar.wav`, …).
    Folder(PathBuf),
}

/// Speaks, one utterance at a time.
pub struct Voice {
    speaker: Speaker,
    speaking: Mutex<(Option<Child>, usize)>,
}

impl Voice {
    pub fn new(speaker: Speaker) -> Self {
        Self {
            speaker,
            speaking: Mutex::new((None, 0)),
        }
    }

    /// Stop whatever is being said (the next person must not hear the last one's booking).
    pub fn stop(&self) {
        let mut speaking = self.speaking.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = speaking.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Say `text` in `lang`, stopping whatever is being said. Returns at once; the file written,
    /// with [`Speaker::Folder`].
    pub fn say(&self, lang: &str, text: &str) -> Result<Option<PathBuf>, SpeechError> {
        self.stop();
        let mut speaking = self.speaking.lock().unwrap_or_else(|p| p.into_inner());
        speaking.1 += 1;
        match &self.speaker {
            Speaker::System => {
                let child = espeak(lang, text, None)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(SpeechError::Missing)?;
                speaking.0 = Some(child);
                Ok(None)
            }
            Speaker::Folder(folder) => {
                // Written aside, then named: a reader never finds half a file.
                let wav = folder.join(format!("{}-{lang}.wav", speaking.1));
                let part = wav.with_extension("part");
                synthesize(lang, text, &part)?;
                std::fs::rename(&part, &wav)
                    .map_err(|e| SpeechError::Failed(format!("{}: {e}", wav.display())))?;
                Ok(Some(wav))
            }
        }
    }
}

/// espeak-ng saying `text` in `lang`, to the loudspeaker or into `wav`.
fn espeak(lang: &str, text: &str, wav: Option<&Path>) -> Command {
    let mut command = Command::new("espeak-ng");
    command.args(["-v", voice(lang), "-s", RATE]);
    if let Some(wav) = wav {
        command.arg("-w").arg(wav);
    }
    // The text after "--": a text starting with "-" is never read as an option.
    command.arg("--").arg(text);
    command
}

/// Write `text` in `lang` to `wav`.
pub fn synthesize(lang: &str, text: &str, wav: &Path) -> Result<(), SpeechError> {
    let out = espeak(lang, text, Some(wav))
        .output()
        .map_err(SpeechError::Missing)?;
    if !out.status.success() {
        return Err(SpeechError::Failed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(())
}

/// A WAV file's length in seconds and its loudness (root mean square of the 16-bit samples, 0 to
/// 1): what tests check of a synthesised answer.
pub fn measure(wav: &[u8]) -> Option<(f64, f64)> {
    if wav.get(..4)? != b"RIFF" || wav.get(8..12)? != b"WAVE" {
        return None;
    }
    let (mut at, mut rate, mut samples) = (12, 0u32, None);
    while at + 8 <= wav.len() {
        let id = &wav[at..at + 4];
        let size = u32::from_le_bytes(wav[at + 4..at + 8].try_into().ok()?) as usize;
        let body = wav.get(at + 8..(at + 8 + size).min(wav.len()))?;
        match id {
            b"fmt " => rate = u32::from_le_bytes(body.get(4..8)?.try_into().ok()?),
            b"data" => samples = Some(body),
            _ => {}
        }
        at += 8 + size + size % 2;
    }
    let samples = samples?;
    let values: Vec<f64> = samples
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    if rate == 0 || values.is_empty() {
        return None;
    }
    let rms = (values.iter().map(|v| v * v).sum::<f64>() / values.len() as f64).sqrt();
    Some((values.len() as f64 / f64::from(rate), rms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{LANGUAGES, tr};

    /// Every language of the kiosk is spoken: the self-check's answer, synthesised, lasts as
    /// long as a sentence and is not silence.
    #[test]
    fn every_language_is_spoken() {
        let dir = tempfile::tempdir().unwrap();
        let voice = Voice::new(Speaker::Folder(dir.path().to_owned()));
        for lang in LANGUAGES.map(|l| l.code) {
            let text = tr(
                lang,
                "Your permit is ready. Book the collection here, with this office's operator.",
            );
            let wav = voice.say(lang, &text).unwrap().expect("a file");
            let (seconds, loudness) = measure(&std::fs::read(&wav).unwrap()).unwrap();
            assert!(
                (1.5..30.0).contains(&seconds),
                "{lang}: {seconds:.1} s for «{text}»"
            );
            assert!(loudness > 0.02, "{lang}: silent ({loudness:.3})");
        }
    }
}

//! The document pre-check's files: what a person sends is checked and made safe before it is
//! kept. A picture is decoded (within limits that refuse a decompression bomb before anything is
//! allocated) and encoded again as JPEG, which drops its metadata (EXIF: the GPS position, the
//! camera) and anything hidden after the image; a PDF must look whole (`%PDF-` … `%%EOF`) and is
//! kept as it is, served to staff only as an attachment. Anything else is refused. Files live
//! in the data folder's `precheck/`, named by a random id, never under the web root.

use std::path::{Path, PathBuf};

/// Why a file is refused; the person reads it in their language (`page.error.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("not a picture or a PDF")]
    NotAccepted,
    #[error("too large")]
    TooLarge,
}

impl UploadError {
    /// The key of the person's page text that says it.
    pub fn text_key(self) -> &'static str {
        match self {
            Self::NotAccepted => "page.error.file",
            Self::TooLarge => "page.error.size",
        }
    }
}

/// What is kept of an accepted file: `image` (JPEG) or `pdf`, and its bytes.
#[derive(Debug)]
pub struct Accepted {
    pub kind: &'static str,
    pub bytes: Vec<u8>,
}

/// The largest picture decoded, on each side: a phone's 50-megapixel photo fits.
const MAX_SIDE: u32 = 10_000;
/// What decoding one picture may allocate.
const MAX_ALLOC: u64 = 512 << 20;
/// Pictures are kept at most this wide or tall: enough to read a document.
const KEPT_SIDE: u32 = 3_000;

/// Check and clean `bytes` (at most `limit` long).
pub fn accept(bytes: &[u8], limit: usize) -> Result<Accepted, UploadError> {
    if bytes.len() > limit {
        return Err(UploadError::TooLarge);
    }
    if bytes.starts_with(b"%PDF-") {
        let tail = &bytes[bytes.len().saturating_sub(1024)..];
        return if tail.windows(5).any(|w| w == b"%%EOF") {
            Ok(Accepted {
                kind: "pdf",
                bytes: bytes.to_vec(),
            })
        } else {
            Err(UploadError::NotAccepted)
        };
    }
    let format = image::guess_format(bytes).map_err(|_| UploadError::NotAccepted)?;
    if !matches!(format, image::ImageFormat::Jpeg | image::ImageFormat::Png) {
        return Err(UploadError::NotAccepted);
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let picture = reader.decode().map_err(|_| UploadError::NotAccepted)?;
    let picture = if picture.width().max(picture.height()) > KEPT_SIDE {
        picture.resize(KEPT_SIDE, KEPT_SIDE, image::imageops::FilterType::Triangle)
    } else {
        picture
    };
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    picture
        .to_rgb8()
        .write_with_encoder(encoder)
        .map_err(|_| UploadError::NotAccepted)?;
    Ok(Accepted {
        kind: "image",
        bytes: out,
    })
}

/// A limit per person's link (in memory).
pub type TokenLimiter = governor::RateLimiter<
    String,
    governor::state::keyed::HashMapStateStore<String>,
    governor::clock::DefaultClock,
>;

/// At most `n` messages and files a minute through one link.
pub fn per_token_per_minute(n: u32) -> TokenLimiter {
    governor::RateLimiter::hashmap(governor::Quota::per_minute(
        std::num::NonZeroU32::new(n.max(1)).expect("positive"),
    ))
}

/// A person's link's token: 128 random bits in hex, short enough for an SMS.
pub fn link_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    hex::encode(bytes)
}

/// The link the person opens: on this server (`base`, as people reach it), at
/// `/documents/{token}`.
pub fn person_link(base: &str, token: &str) -> String {
    format!("{base}/documents/{token}")
}

/// A fresh unguessable name (256 bits, hex) for a stored file.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    hex::encode(bytes)
}

/// Where the pre-check's files are kept.
pub fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join("precheck")
}

/// Write an accepted file under a random name; the name.
pub fn store(folder: &Path, accepted: &Accepted) -> std::io::Result<String> {
    std::fs::create_dir_all(folder)?;
    let name = format!(
        "{}.{}",
        random_token(),
        if accepted.kind == "pdf" { "pdf" } else { "jpg" }
    );
    let path = folder.join(&name);
    let partial = folder.join(format!("{name}.part"));
    std::fs::write(&partial, &accepted.bytes)?;
    std::fs::rename(&partial, &path)?;
    Ok(name)
}

/// The path of a stored file, if `name` is one of ours (no path tricks).
pub fn path_of(folder: &Path, name: &str) -> Option<PathBuf> {
    let ours = name.len() == 68
        && name
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '.' || c.is_ascii_lowercase());
    ours.then(|| folder.join(name))
}

/// Delete the files kept past their time (`keep_days` after the booking ended or the
/// conversation closed): rows first, in one transaction, then the files; then any file no row
/// names (left by a crash between the two). How many files were deleted.
pub async fn expire(
    state: &crate::AppState,
    keep_days: i64,
) -> Result<usize, crate::store::StoreError> {
    let before = state.clock.now() - coper_shared::jiff::SignedDuration::from_hours(24 * keep_days);
    let names = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let names = crate::store::precheck::expire_uploads(&tx, before)?;
            tx.commit()?;
            Ok::<_, crate::store::StoreError>(names)
        })
        .await?;
    let folder = state.precheck_dir.clone();
    let mut deleted = 0;
    for name in &names {
        if let Some(path) = path_of(&folder, name)
            && std::fs::remove_file(path).is_ok()
        {
            deleted += 1;
        }
    }
    // Orphans: on disk, named by no row, and older than an hour (a crash after writing and
    // before recording; a file being recorded right now is younger).
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let old_files: Vec<String> = std::fs::read_dir(folder.as_ref())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    e.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t < hour_ago)
                })
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    for name in old_files {
        let key = name.clone();
        let recorded = state
            .db
            .read(move |conn| crate::store::precheck::is_recorded(conn, &key))
            .await?;
        let ours = path_of(&folder, name.trim_end_matches(".part")).is_some();
        if !recorded && ours && std::fs::remove_file(folder.join(&name)).is_ok() {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// A small PNG whose header claims `width` × `height`: a decompression bomb's shape, for the
/// tests (here and end to end) that show it is refused.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for b in bytes {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &header);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let picture = image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 30]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut out)
            .encode_image(&picture)
            .unwrap();
        out
    }

    #[test]
    fn a_picture_is_encoded_again_and_its_metadata_dropped() {
        let mut bytes = jpeg(40, 30);
        // An EXIF segment right after the start marker, as a phone writes it.
        let exif = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x25\x88\x04\0\x01\0\0\0\x1a\0\0\0GPS";
        let mut segment = vec![0xFF, 0xE1];
        segment.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        segment.extend_from_slice(exif);
        bytes.splice(2..2, segment);
        assert!(bytes.windows(4).any(|w| w == b"Exif"));
        let kept = accept(&bytes, 1 << 20).unwrap();
        assert_eq!(kept.kind, "image");
        assert!(!kept.bytes.windows(4).any(|w| w == b"Exif"));
        let back = image::load_from_memory(&kept.bytes).unwrap();
        assert_eq!((back.width(), back.height()), (40, 30));
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(
            accept(b"\x7fELF\x02\x01\x01\0not a picture", 1 << 20).unwrap_err(),
            UploadError::NotAccepted
        );
        assert_eq!(
            accept(b"%PDF-1.7\n1 0 obj", 1 << 20).unwrap_err(),
            UploadError::NotAccepted,
            "a PDF cut short"
        );
        assert_eq!(
            accept(&jpeg(10, 10), 100).unwrap_err(),
            UploadError::TooLarge
        );
        let truncated = jpeg(64, 64);
        assert!(accept(&truncated[..truncated.len() / 3], 1 << 20).is_err());
        assert_eq!(
            accept(b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\n%%EOF\n", 1 << 20)
                .unwrap()
                .kind,
            "pdf"
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_it_is_decoded() {
        let bomb = png_claiming(100_000, 100_000);
        assert_eq!(
            accept(&bomb, 1 << 20).unwrap_err(),
            UploadError::NotAccepted
        );
    }
}

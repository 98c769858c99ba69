//! Reading an input file with a stated cap, so `/dev/zero` or a mistaken path cannot fill the
//! host's memory.

use std::io::Read;
use std::path::Path;

/// Why a capped file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BoundedReadError {
    /// Opening or reading failed.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than its cap.
    #[error("is larger than {} KiB, the most read from such a file", .max_bytes >> 10)]
    TooLarge {
        /// The cap.
        max_bytes: u64,
    },
    /// The file is not UTF-8 text.
    #[error("is not UTF-8 text (at byte {at})")]
    NotText {
        /// Where the first byte that is not UTF-8 is.
        at: usize,
    },
}

/// The bytes of the file at `path`, refused when it holds more than `max_bytes`.
pub fn read_bytes(path: &Path, max_bytes: u64) -> Result<Vec<u8>, BoundedReadError> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(BoundedReadError::TooLarge { max_bytes });
    }
    Ok(bytes)
}

/// The text of the file at `path`, refused when it holds more than `max_bytes` or is not UTF-8.
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String, BoundedReadError> {
    String::from_utf8(read_bytes(path, max_bytes)?)
        .map_err(|e| BoundedReadError::NotText { at: e.utf8_error().valid_up_to() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_at_its_cap_and_binary_is_not_text() {
        let zero = Path::new("/dev/zero");
        assert!(matches!(read_bytes(zero, 1 << 20), Err(BoundedReadError::TooLarge { .. })));
        let dir = std::env::temp_dir().join(format!("bounded-read-{}", std::process::id()));
        std::fs::write(&dir, b"ok\xff").unwrap();
        assert!(matches!(read_text(&dir, 10), Err(BoundedReadError::NotText { at: 2 })));
        assert_eq!(read_bytes(&dir, 3).unwrap(), b"ok\xff");
        std::fs::remove_file(&dir).unwrap();
    }
}

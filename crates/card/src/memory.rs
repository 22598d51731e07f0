//! The card's persistent memory: what a real card keeps in EEPROM, kept here in one file per card.
//!
//! A real card's EEPROM commits updates atomically per write (JavaCard transactions). We model
//! that with whole-image commits: every persistent change of the applet is one [`Storage::commit`]
//! of the complete encoded state, and a storage guarantees that after a power cut [`Storage::load`]
//! returns either the image before the commit or the image after it, never a mix.
//!
//! [`FileStorage`] writes a temporary file, syncs it, renames it over the card file and syncs the
//! directory. [`MemoryStorage`] keeps the image in memory (shared, so a test can "power cycle" a
//! card by building a new one on the same memory). [`PowerCut`] wraps any storage and cuts the
//! power at a chosen write point: the fault-injection tests use it to prove that no write order of
//! the applet leaks a PIN guess or a half-written object.
//!
//! The image format: the magic `TSSRCARD`, a format version (u16, big-endian), the payload
//! length (u32, big-endian), the payload, and SHA-256 over everything before it. A truncated or
//! corrupted image is refused with [`MemoryError`]; it is never half-loaded.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// Errors of the card memory.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The storage could not be read or written.
    #[error("card memory {path}: {source}")]
    Io {
        /// The card file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The power was cut during or before this write (fault injection, or a card that lost
    /// power and has not been powered up again).
    #[error("the card lost power")]
    PowerLost,
    /// The image does not start with the card-file magic.
    #[error("not a Tessera card file (bad magic)")]
    BadMagic,
    /// The image was written by an unknown format version.
    #[error("card file format version {0} is not supported")]
    UnsupportedVersion(u16),
    /// The image is shorter than its header says.
    #[error("card file is truncated")]
    Truncated,
    /// The image's checksum does not match.
    #[error("card file checksum mismatch (corrupted)")]
    Checksum,
    /// The payload does not decode.
    #[error("card file payload does not decode: {0}")]
    Payload(String),
}

/// Where a card's image lives.
pub trait Storage: Send {
    /// The last committed image, or `None` for a card that was never written.
    fn load(&mut self) -> Result<Option<Vec<u8>>, MemoryError>;
    /// Replace the image atomically.
    fn commit(&mut self, image: &[u8]) -> Result<(), MemoryError>;
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn load(&mut self) -> Result<Option<Vec<u8>>, MemoryError> {
        (**self).load()
    }
    fn commit(&mut self, image: &[u8]) -> Result<(), MemoryError> {
        (**self).commit(image)
    }
}

/// One card file on disk, replaced atomically (temporary file, fsync, rename, fsync of the
/// directory).
#[derive(Debug, Clone)]
pub struct FileStorage {
    path: PathBuf,
}

impl FileStorage {
    /// A card file at `path` (it need not exist yet: it is created on the first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The card file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> MemoryError {
        MemoryError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl Storage for FileStorage {
    fn load(&mut self) -> Result<Option<Vec<u8>>, MemoryError> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }

    fn commit(&mut self, image: &[u8]) -> Result<(), MemoryError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(
            ".{}.tmp",
            name.unwrap_or_else(|| "card".to_owned())
        ));
        let result = (|| {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(image)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, &self.path)?;
            // The rename is durable only once the directory is synced.
            fs::File::open(&dir)?.sync_all()
        })();
        result.map_err(|e| self.io(e))
    }
}

/// A card image in memory, shared between clones: build a new card on a clone to model a power
/// cycle.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    image: Arc<Mutex<Option<Vec<u8>>>>,
}

impl MemoryStorage {
    /// An empty memory (a card never written).
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the current image.
    pub fn snapshot(&self) -> Option<Vec<u8>> {
        self.image
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> Result<Option<Vec<u8>>, MemoryError> {
        Ok(self.snapshot())
    }
    fn commit(&mut self, image: &[u8]) -> Result<(), MemoryError> {
        let mut guard = self.image.lock().unwrap_or_else(|p| p.into_inner());
        *guard = Some(image.to_vec());
        Ok(())
    }
}

/// Whether the write that the power cut interrupts still lands.
///
/// An atomic commit interrupted by a power cut either completed (the rename happened) or did not.
/// Tests try both at every write point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutWrite {
    /// The interrupted write is lost: the old image stays.
    Lost,
    /// The interrupted write lands, but the card dies before it can answer.
    Lands,
}

/// A fault-injecting wrapper: counts commits and cuts the power at the `n`-th (0-based).
///
/// From the cut on, every operation fails with [`MemoryError::PowerLost`], so the applet can
/// neither answer nor write again; the test then "powers up" a new card on the inner storage.
#[derive(Debug)]
pub struct PowerCut<S> {
    inner: S,
    cut_at: usize,
    mode: CutWrite,
    writes: usize,
    dead: bool,
}

impl<S: Storage> PowerCut<S> {
    /// Cut the power at write number `cut_at` (0 is the first write).
    pub fn new(inner: S, cut_at: usize, mode: CutWrite) -> Self {
        Self {
            inner,
            cut_at,
            mode,
            writes: 0,
            dead: false,
        }
    }

    /// How many writes were attempted (the cut one included).
    pub fn writes(&self) -> usize {
        self.writes
    }

    /// Whether the power was cut.
    pub fn was_cut(&self) -> bool {
        self.dead
    }
}

impl<S: Storage> Storage for PowerCut<S> {
    fn load(&mut self) -> Result<Option<Vec<u8>>, MemoryError> {
        if self.dead {
            return Err(MemoryError::PowerLost);
        }
        self.inner.load()
    }

    fn commit(&mut self, image: &[u8]) -> Result<(), MemoryError> {
        if self.dead {
            return Err(MemoryError::PowerLost);
        }
        let this = self.writes;
        self.writes += 1;
        if this == self.cut_at {
            self.dead = true;
            if self.mode == CutWrite::Lands {
                self.inner.commit(image)?;
            }
            return Err(MemoryError::PowerLost);
        }
        self.inner.commit(image)
    }
}

const MAGIC: &[u8; 8] = b"TSSRCARD";
/// The current card-file format version.
pub const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 4;
const DIGEST_LEN: usize = 32;

/// Wrap `payload` in the card-file envelope (magic, version, length, SHA-256).
pub fn seal(payload: &[u8]) -> Vec<u8> {
    let mut image = Vec::with_capacity(HEADER_LEN + payload.len() + DIGEST_LEN);
    image.extend_from_slice(MAGIC);
    image.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    // Card state is far below 4 GiB; saturate rather than wrap if it ever is not, so the length
    // check on load refuses the image instead of misreading it.
    image.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    image.extend_from_slice(payload);
    let digest = Sha256::digest(&image);
    image.extend_from_slice(&digest);
    image
}

/// Check the envelope and return the payload.
pub fn open(image: &[u8]) -> Result<&[u8], MemoryError> {
    let (header, rest) = image
        .split_at_checked(HEADER_LEN)
        .ok_or(MemoryError::Truncated)?;
    let (magic, rest_header) = header.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(MemoryError::BadMagic);
    }
    let (version, len) = rest_header.split_at(2);
    let version = u16::from_be_bytes([version[0], version[1]]);
    if version != FORMAT_VERSION {
        return Err(MemoryError::UnsupportedVersion(version));
    }
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let (payload, digest) = rest.split_at_checked(len).ok_or(MemoryError::Truncated)?;
    if digest.len() != DIGEST_LEN {
        return Err(if digest.len() < DIGEST_LEN {
            MemoryError::Truncated
        } else {
            MemoryError::Checksum
        });
    }
    let computed = Sha256::digest(&image[..HEADER_LEN + len]);
    if computed.as_slice() != digest {
        return Err(MemoryError::Checksum);
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_returns_the_payload() {
        let image = seal(b"state");
        assert_eq!(open(&image).unwrap(), b"state");
    }

    #[test]
    fn every_truncation_and_every_flipped_bit_is_refused() {
        let image = seal(b"some card state");
        for cut in 0..image.len() {
            assert!(open(&image[..cut]).is_err(), "truncated at {cut} accepted");
        }
        for byte in 0..image.len() {
            for bit in 0..8 {
                let mut bad = image.clone();
                bad[byte] ^= 1 << bit;
                assert!(open(&bad).is_err(), "flip at {byte}.{bit} accepted");
            }
        }
        let mut longer = image.clone();
        longer.push(0);
        assert!(matches!(open(&longer), Err(MemoryError::Checksum)));
    }

    #[test]
    fn file_storage_creates_then_replaces_the_card_file() {
        let dir = std::env::temp_dir().join(format!("tessera-memory-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut storage = FileStorage::new(dir.join("card.bin"));
        assert!(storage.load().unwrap().is_none());
        storage.commit(b"one").unwrap();
        storage.commit(b"two").unwrap();
        assert_eq!(storage.load().unwrap().unwrap(), b"two");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn power_cut_keeps_or_lands_the_interrupted_write_and_then_refuses_everything() {
        for (mode, expect) in [(CutWrite::Lost, b"one"), (CutWrite::Lands, b"two")] {
            let memory = MemoryStorage::new();
            let mut cut = PowerCut::new(memory.clone(), 1, mode);
            cut.commit(b"one").unwrap();
            assert!(matches!(cut.commit(b"two"), Err(MemoryError::PowerLost)));
            assert!(matches!(cut.commit(b"three"), Err(MemoryError::PowerLost)));
            assert!(matches!(cut.load(), Err(MemoryError::PowerLost)));
            assert!(cut.was_cut());
            assert_eq!(memory.snapshot().unwrap(), expect);
        }
    }
}

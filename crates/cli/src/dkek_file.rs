//! sc-hsm-tool's password-encrypted DKEK share files (sc-hsm-protocol.md §3.6), so that
//! shares made with `sc-hsm-tool --create-dkek-share` import with `tessera dkek import`.
//!
//! The file is 64 bytes: `Salted__`, an 8-byte salt, and the 32-byte share encrypted with
//! AES-256-CBC and PKCS#7 padding (48 bytes). Key and IV come from OpenSSL's
//! `EVP_BytesToKey` with MD5, the salt, the password and an iteration count (10 000 000 in
//! sc-hsm-tool). Shares split into password shares (`--pwd-shares-total`) are not supported:
//! sc-hsm-tool must recombine those.

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use md5::{Digest, Md5};
use tessera_sc_hsm::DkekShare;
use zeroize::Zeroizing;

/// The file's magic (OpenSSL's salted format).
pub const MAGIC: &[u8; 8] = b"Salted__";

/// sc-hsm-tool's iteration count for `EVP_BytesToKey` (sc-hsm-protocol.md §3.6). A file made
/// with another count needs `tessera dkek import --pbe-iterations N`.
pub const SC_HSM_TOOL_ITERATIONS: u32 = 10_000_000;

/// The length of an encrypted share file: magic, salt, 48 bytes of ciphertext.
pub const FILE_LEN: usize = 8 + 8 + 48;

/// Why a share file cannot be decrypted. Never carries the password or the share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecryptError {
    /// Not 64 bytes starting with `Salted__`.
    NotAShareFile(usize),
    /// The padding or the length is wrong after decryption.
    WrongPassword,
}

impl std::fmt::Display for DecryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecryptError::NotAShareFile(len) => write!(
                f,
                "an encrypted sc-hsm-tool DKEK share file is {FILE_LEN} bytes starting with \
                 Salted__, not {len} bytes"
            ),
            DecryptError::WrongPassword => f.write_str(
                "the share does not decrypt: wrong password (or a different iteration count: \
                 --pbe-iterations)",
            ),
        }
    }
}

impl std::error::Error for DecryptError {}

/// Whether `bytes` look like an encrypted share file.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Decrypts a share file with `password`.
pub fn decrypt(file: &[u8], password: &[u8], iterations: u32) -> Result<DkekShare, DecryptError> {
    if file.len() != FILE_LEN || !is_encrypted(file) {
        return Err(DecryptError::NotAShareFile(file.len()));
    }
    let (salt, ciphertext) = file
        .get(8..16)
        .zip(file.get(16..))
        .ok_or(DecryptError::NotAShareFile(file.len()))?;
    let material = bytes_to_key(password, salt, iterations);
    let (key, iv) = material.split_at(32);
    let decryptor = cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
        .map_err(|_| DecryptError::WrongPassword)?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let plain = decryptor
        .decrypt_padded_mut::<Pkcs7>(&mut buffer)
        .map_err(|_| DecryptError::WrongPassword)?;
    DkekShare::from_slice(plain).map_err(|_| DecryptError::WrongPassword)
}

/// OpenSSL's `EVP_BytesToKey` with MD5 for a 32-byte key and a 16-byte IV: `D_i =
/// MD5^count(D_{i-1} ‖ password ‖ salt)`, concatenated.
fn bytes_to_key(password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<[u8; 48]> {
    let mut out = Zeroizing::new([0u8; 48]);
    let mut previous: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    for chunk in out.chunks_mut(16) {
        let mut hasher = Md5::new();
        hasher.update(&*previous);
        hasher.update(password);
        hasher.update(salt);
        let mut digest = hasher.finalize();
        for _ in 1..iterations.max(1) {
            digest = Md5::digest(digest);
        }
        chunk.copy_from_slice(&digest);
        *previous = digest.to_vec();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_to_key_matches_openssl() {
        // `openssl enc -aes-256-cbc -md md5 -S 0001020304050607 -pass pass:secret -P`
        // (one iteration) prints this key and IV.
        let material = bytes_to_key(b"secret", &[0, 1, 2, 3, 4, 5, 6, 7], 1);
        let hex: String = material.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(&hex[..64], OPENSSL_KEY);
        assert_eq!(&hex[64..], OPENSSL_IV);
    }

    #[test]
    fn bytes_to_key_iterates_each_block() {
        // EVP_BytesToKey(MD5, count = 1000) for the same input, from an independent
        // implementation (Python's hashlib: D_i = MD5^1000(D_{i-1} || password || salt)).
        let material = bytes_to_key(b"secret", &[0, 1, 2, 3, 4, 5, 6, 7], 1000);
        let hex: String = material.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            hex,
            "2464AA0A4C6FF939B3C4745F357A1091434797C2716AE5A2CD72CC488EF7DA77\
             BBFAF4FB2EA818731E9F9A116F2158DA"
        );
    }

    const OPENSSL_KEY: &str = "035FB8145B73CF111570DC936112BE9C375A5D3D8B915BC213BDBEF9DBFB7851";
    const OPENSSL_IV: &str = "1D112C3C48B1D30DBCEEAFF080816BE4";

    #[test]
    fn short_or_unsalted_files_are_not_share_files() {
        assert_eq!(
            decrypt(b"Salted__", b"pw", 1).unwrap_err(),
            DecryptError::NotAShareFile(8)
        );
        assert_eq!(
            decrypt(&[0u8; 64], b"pw", 1).unwrap_err(),
            DecryptError::NotAShareFile(64)
        );
    }
}

//! SIGN (sc-hsm-protocol.md §2.12): mechanisms and their algorithm ids, DigestInfo for
//! PKCS#1 v1.5 on a hash, and the signature formats (ECDSA DER as the card answers, or `r‖s`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sha1::Digest;
use tessera_apdu::{Tag, Tlv};

use crate::der;
use crate::error::InputError;

/// A hash function (FIPS 180-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashAlg {
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-224 (28 bytes).
    Sha224,
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-384 (48 bytes).
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashAlg {
    /// Every hash, shortest first.
    pub const ALL: [HashAlg; 5] = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// The output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Hashes `data` on the host.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlg::Sha224 => sha2::Sha224::digest(data).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The DER prefix of a PKCS#1 v1.5 DigestInfo for this hash: `SEQUENCE { SEQUENCE { OID,
    /// NULL }, OCTET STRING (hash) }` up to the hash (RFC 8017 §9.2, note 1).
    pub fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00, 0x04,
                0x14,
            ],
            HashAlg::Sha224 => &[
                0x30, 0x2D, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x04, 0x05, 0x00, 0x04, 0x1C,
            ],
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// The DigestInfo of `hash` (which must be [`output_len`](Self::output_len) bytes).
    pub fn digest_info(self, hash: &[u8]) -> Vec<u8> {
        [self.digest_info_prefix(), hash].concat()
    }

    /// Offset of this hash in the SIGN algorithm ids `x1`..`x5` (§2.12).
    const fn offset(self) -> u8 {
        match self {
            HashAlg::Sha1 => 1,
            HashAlg::Sha224 => 2,
            HashAlg::Sha256 => 3,
            HashAlg::Sha384 => 4,
            HashAlg::Sha512 => 5,
        }
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashAlg::Sha1 => "SHA-1",
            HashAlg::Sha224 => "SHA-224",
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
        })
    }
}

impl FromStr for HashAlg {
    type Err = InputError;

    /// `sha1`, `sha-256`, `SHA384`, ...
    fn from_str(s: &str) -> Result<HashAlg, InputError> {
        let name: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Ok(match name.as_str() {
            "sha1" => HashAlg::Sha1,
            "sha224" => HashAlg::Sha224,
            "sha256" => HashAlg::Sha256,
            "sha384" => HashAlg::Sha384,
            "sha512" => HashAlg::Sha512,
            _ => {
                return Err(InputError::Unsupported(format!(
                    "unknown hash {s:?}; use sha1, sha224, sha256, sha384 or sha512"
                )))
            }
        })
    }
}

/// How to sign (sc-hsm-protocol.md §2.12): the algorithm id in P2, and what the input is.
///
/// `…Hash` mechanisms take a hash computed by the host; `…Message` ones take the message and
/// the card hashes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "mechanism", content = "hash", rename_all = "kebab-case")]
pub enum SignMechanism {
    /// ECDSA on a hash (P2 `70`). Any hash length 1..=64.
    EcdsaHash,
    /// ECDSA, the card hashes the message (P2 `71`..`75`).
    EcdsaMessage(HashAlg),
    /// RSA PKCS#1 v1.5 on a hash of this algorithm: the DigestInfo is built here and sent with
    /// P2 `30`.
    RsaPkcs1Hash(HashAlg),
    /// RSA PKCS#1 v1.5, the card hashes the message (P2 `31`, `33`, `34`, `35`; no SHA-224).
    RsaPkcs1Message(HashAlg),
    /// RSA-PSS on a hash (P2 `40`; the card infers the hash from its length, salt = hash
    /// length, MGF1 with the same hash).
    RsaPssHash,
    /// RSA-PSS, the card hashes the message (P2 `41`, `43`, `44`, `45`; no SHA-224).
    RsaPssMessage(HashAlg),
}

impl SignMechanism {
    /// Whether this is an ECDSA mechanism.
    pub const fn is_ecdsa(self) -> bool {
        matches!(
            self,
            SignMechanism::EcdsaHash | SignMechanism::EcdsaMessage(_)
        )
    }

    /// The SIGN algorithm id, P2 (§2.12). RSA with on-card SHA-224 (`32`, `42`) is pico-hsm's,
    /// not the SmartCard-HSM's: refused.
    pub fn algorithm_id(self) -> Result<u8, InputError> {
        let no_224 = |h: HashAlg| {
            if h == HashAlg::Sha224 {
                Err(InputError::Unsupported(
                    "the SmartCard-HSM has no RSA with on-card SHA-224; hash on the host instead"
                        .to_owned(),
                ))
            } else {
                Ok(())
            }
        };
        Ok(match self {
            SignMechanism::EcdsaHash => 0x70,
            SignMechanism::EcdsaMessage(h) => 0x70 + h.offset(),
            SignMechanism::RsaPkcs1Hash(_) => 0x30,
            SignMechanism::RsaPkcs1Message(h) => {
                no_224(h)?;
                0x30 + h.offset()
            }
            SignMechanism::RsaPssHash => 0x40,
            SignMechanism::RsaPssMessage(h) => {
                no_224(h)?;
                0x40 + h.offset()
            }
        })
    }

    /// The data field of SIGN for `input`, after checking its length.
    pub fn command_data(self, input: &[u8]) -> Result<Vec<u8>, InputError> {
        let bad = |expected| InputError::SignInputLength {
            mechanism: self.to_string(),
            expected,
            len: input.len(),
        };
        match self {
            SignMechanism::EcdsaHash if input.is_empty() || input.len() > 64 => {
                Err(bad("a hash of 1 to 64 bytes"))
            }
            SignMechanism::RsaPkcs1Hash(h) if input.len() != h.output_len() => {
                Err(bad("a hash of the named algorithm's length"))
            }
            SignMechanism::RsaPkcs1Hash(h) => Ok(h.digest_info(input)),
            SignMechanism::RsaPssHash
                if !HashAlg::ALL.iter().any(|h| h.output_len() == input.len()) =>
            {
                Err(bad("a hash of 20, 28, 32, 48 or 64 bytes"))
            }
            _ => Ok(input.to_vec()),
        }
    }
}

impl fmt::Display for SignMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignMechanism::EcdsaHash => f.write_str("ECDSA on a hash"),
            SignMechanism::EcdsaMessage(h) => write!(f, "ECDSA with {h}"),
            SignMechanism::RsaPkcs1Hash(h) => write!(f, "RSA PKCS#1 v1.5 on a {h} hash"),
            SignMechanism::RsaPkcs1Message(h) => write!(f, "RSA PKCS#1 v1.5 with {h}"),
            SignMechanism::RsaPssHash => f.write_str("RSA-PSS on a hash"),
            SignMechanism::RsaPssMessage(h) => write!(f, "RSA-PSS with {h}"),
        }
    }
}

/// How an ECDSA signature is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EcdsaFormat {
    /// DER `SEQUENCE { INTEGER r, INTEGER s }` (RFC 3279 §2.2.3), as the card answers and
    /// OpenSSL reads.
    #[default]
    Der,
    /// `r‖s`, each left-padded to the field size (BSI TR-03111 §5.2.1, PKCS#11).
    Raw,
}

/// Converts an ECDSA signature from DER to `r‖s` with halves of `field_bytes` bytes.
pub fn ecdsa_der_to_raw(der: &[u8], field_bytes: usize) -> Result<Vec<u8>, String> {
    let outer = Tlv::parse(der).map_err(|e| format!("ECDSA signature: {e}"))?;
    if outer.tag() != Tag::new(0x30) {
        return Err(format!(
            "an ECDSA signature is a SEQUENCE (30), not tag {}",
            outer.tag()
        ));
    }
    let mut parts = outer.children().into_iter().flatten();
    let mut half = |name: &str| -> Result<Vec<u8>, String> {
        let t = parts
            .next()
            .ok_or_else(|| format!("ECDSA signature: {name} missing"))?
            .map_err(|e| format!("ECDSA signature: {e}"))?;
        if t.tag() != Tag::new(0x02) {
            return Err(format!("ECDSA signature: {name} is not an INTEGER"));
        }
        let first = t
            .value()
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(t.value().len());
        let magnitude = t.value().get(first..).unwrap_or(&[]);
        if magnitude.len() > field_bytes {
            return Err(format!(
                "ECDSA signature: {name} is longer than the {field_bytes}-byte field"
            ));
        }
        let mut out = vec![0u8; field_bytes - magnitude.len()];
        out.extend_from_slice(magnitude);
        Ok(out)
    };
    let r = half("r")?;
    let s = half("s")?;
    if parts.next().is_some() {
        return Err("ECDSA signature: bytes after s".to_owned());
    }
    Ok([r, s].concat())
}

/// Converts an ECDSA signature from `r‖s` to DER.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.is_empty() || raw.len() % 2 != 0 {
        return Err(format!(
            "an r‖s signature has an even length, not {}",
            raw.len()
        ));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Ok(der::seq(
        0x30,
        &[&der::unsigned_integer(r), &der::unsigned_integer(s)],
    ))
}

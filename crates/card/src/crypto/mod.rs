//! The virtual card's cryptography: key generation, signing, raw RSA deciphering, ECDH and DKEK
//! key wrapping, on RustCrypto (nothing hand-rolled but the byte layouts).
//!
//! The operations follow the SmartCard-HSM commands of `sc-hsm-protocol.md`: GENERATE ASYMMETRIC
//! KEY PAIR (§2.11: [`PrivateKey::generate`]), SIGN (§2.12: [`sign`] with a [`SignAlgorithm`]
//! decoded from P2), DECIPHER and ECDH (§2.13: [`decipher_raw`], [`ecdh`]), WRAP KEY and UNWRAP
//! KEY (§2.14, §2.15, blob format §3.5: [`wrap`], [`unwrap`], [`kcv`]).
//!
//! Randomness: everything that needs it takes `&mut impl CryptoRngCore`; the applet passes a
//! ChaCha20Rng seeded from the card's seed, so a virtual card is deterministic from its seed.
//! ECDSA draws its nonce from that generator (the real card's nonce method is not known).
//!
//! Key material: [`PrivateKey`] zeroizes on drop (every RustCrypto key type inside it does) and
//! its `Debug` shows the key specification only; no error carries key bytes.
//!
//! What it does not know: APDUs, status words, key ids, files, PINs, algorithm lists (the applet
//! checks a key's allowed algorithms before it calls [`sign`]).

mod curve;
mod der;
mod dkek;
mod ec;
mod rsa_key;

pub use curve::{Curve, DomainParameters};
pub use der::{ecdsa_der_to_plain, ecdsa_plain_to_der};
pub use dkek::{kcv, unwrap, wrap};
use rand_core::CryptoRngCore;

use ec::EcSecret;

/// What to generate: an EC key on a curve, or an RSA key of a modulus size (public exponent
/// 65537, as OpenSC and sc-hsm-embedded request it, §2.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySpec {
    /// An EC key on this curve.
    Ec(Curve),
    /// An RSA key with a modulus of exactly `bits` bits.
    Rsa {
        /// The modulus size: [`KeySpec::RSA_MIN_BITS`]..=[`KeySpec::RSA_MAX_BITS`] in steps of
        /// [`KeySpec::RSA_BITS_STEP`].
        bits: u16,
    },
}

impl KeySpec {
    /// The smallest RSA modulus the virtual card generates or accepts.
    pub const RSA_MIN_BITS: u16 = 1024;
    /// The largest RSA modulus the virtual card generates or accepts.
    pub const RSA_MAX_BITS: u16 = 4096;
    /// RSA modulus sizes go up in steps of this many bits (1024, 1280, …, 4096; OpenSC offers
    /// 1024/1536/2048/3072/4096, §2.11).
    pub const RSA_BITS_STEP: u16 = 256;

    /// Whether the virtual card supports this specification (every curve; RSA sizes as above).
    pub const fn is_supported(self) -> bool {
        match self {
            KeySpec::Ec(_) => true,
            KeySpec::Rsa { bits } => {
                bits >= Self::RSA_MIN_BITS
                    && bits <= Self::RSA_MAX_BITS
                    && bits % Self::RSA_BITS_STEP == 0
            }
        }
    }
}

/// A hash algorithm the card computes on-card for SIGN (§2.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
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

impl HashAlgorithm {
    /// Every hash algorithm, shortest output first.
    pub const ALL: [HashAlgorithm; 5] = [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha224,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    /// The length of the hash in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha224 => 28,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// The hash algorithm whose output is `len` bytes long (how PSS with an external hash,
    /// algorithm `40`, tells the hash from the input length).
    pub fn from_output_len(len: usize) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|h| h.output_len() == len)
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            HashAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlgorithm::Sha224 => sha2::Sha224::digest(data).to_vec(),
            HashAlgorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlgorithm::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlgorithm::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// A SIGN algorithm, decoded from the P2 byte of SIGN (`80 68`, sc-hsm-protocol.md §2.12).
///
/// `32` (PKCS#1 v1.5 with SHA-224) and `42` (PSS with SHA-224) appear only in pico-hsm; the
/// virtual card accepts them like the other on-card hashes (a deliberate superset of the real
/// card, whose answer to them is not known). Every other byte, including the DECIPHER-only
/// `21` and `80`, decodes to [`SignAlgorithm::Unknown`], which keeps the byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignAlgorithm {
    /// `20`: raw RSA; the input is a full modulus-length block below the modulus.
    RsaRaw,
    /// `30`: RSA PKCS#1 v1.5; the input is a DigestInfo (at most modulus length − 11 bytes).
    RsaPkcs1v15DigestInfo,
    /// `31`..`35`: RSA PKCS#1 v1.5 over the on-card hash of the input.
    RsaPkcs1v15(HashAlgorithm),
    /// `40`: RSA-PSS over a hash computed by the host; the hash algorithm follows from the
    /// input length (20/28/32/48/64 bytes), MGF1 uses the same hash, salt length = hash length.
    RsaPssPrehashed,
    /// `41`..`45`: RSA-PSS over the on-card hash of the input (salt length = hash length).
    RsaPss(HashAlgorithm),
    /// `70`: ECDSA on a hash of any non-zero length, truncated to the order's bit length
    /// (FIPS 186-4 §6.4, SEC 1 §4.1.3 step 5) or, when shorter, taken as is.
    EcdsaPrehashed,
    /// `71`..`75`: ECDSA over the on-card hash of the input.
    Ecdsa(HashAlgorithm),
    /// Any other P2 byte.
    Unknown(u8),
}

impl SignAlgorithm {
    /// Decodes the P2 byte of SIGN.
    pub const fn from_p2(p2: u8) -> SignAlgorithm {
        use HashAlgorithm::*;
        match p2 {
            0x20 => SignAlgorithm::RsaRaw,
            0x30 => SignAlgorithm::RsaPkcs1v15DigestInfo,
            0x31 => SignAlgorithm::RsaPkcs1v15(Sha1),
            0x32 => SignAlgorithm::RsaPkcs1v15(Sha224),
            0x33 => SignAlgorithm::RsaPkcs1v15(Sha256),
            0x34 => SignAlgorithm::RsaPkcs1v15(Sha384),
            0x35 => SignAlgorithm::RsaPkcs1v15(Sha512),
            0x40 => SignAlgorithm::RsaPssPrehashed,
            0x41 => SignAlgorithm::RsaPss(Sha1),
            0x42 => SignAlgorithm::RsaPss(Sha224),
            0x43 => SignAlgorithm::RsaPss(Sha256),
            0x44 => SignAlgorithm::RsaPss(Sha384),
            0x45 => SignAlgorithm::RsaPss(Sha512),
            0x70 => SignAlgorithm::EcdsaPrehashed,
            0x71 => SignAlgorithm::Ecdsa(Sha1),
            0x72 => SignAlgorithm::Ecdsa(Sha224),
            0x73 => SignAlgorithm::Ecdsa(Sha256),
            0x74 => SignAlgorithm::Ecdsa(Sha384),
            0x75 => SignAlgorithm::Ecdsa(Sha512),
            other => SignAlgorithm::Unknown(other),
        }
    }

    /// The P2 byte (the inverse of [`SignAlgorithm::from_p2`]).
    pub const fn p2(self) -> u8 {
        const fn hash_offset(h: HashAlgorithm) -> u8 {
            match h {
                HashAlgorithm::Sha1 => 1,
                HashAlgorithm::Sha224 => 2,
                HashAlgorithm::Sha256 => 3,
                HashAlgorithm::Sha384 => 4,
                HashAlgorithm::Sha512 => 5,
            }
        }
        match self {
            SignAlgorithm::RsaRaw => 0x20,
            SignAlgorithm::RsaPkcs1v15DigestInfo => 0x30,
            SignAlgorithm::RsaPkcs1v15(h) => 0x30 + hash_offset(h),
            SignAlgorithm::RsaPssPrehashed => 0x40,
            SignAlgorithm::RsaPss(h) => 0x40 + hash_offset(h),
            SignAlgorithm::EcdsaPrehashed => 0x70,
            SignAlgorithm::Ecdsa(h) => 0x70 + hash_offset(h),
            SignAlgorithm::Unknown(b) => b,
        }
    }

    /// Whether the algorithm is for RSA keys (`false` for ECDSA and unknown bytes).
    pub const fn is_rsa(self) -> bool {
        matches!(
            self,
            SignAlgorithm::RsaRaw
                | SignAlgorithm::RsaPkcs1v15DigestInfo
                | SignAlgorithm::RsaPkcs1v15(_)
                | SignAlgorithm::RsaPssPrehashed
                | SignAlgorithm::RsaPss(_)
        )
    }

    /// Whether the algorithm is ECDSA.
    pub const fn is_ecdsa(self) -> bool {
        matches!(
            self,
            SignAlgorithm::EcdsaPrehashed | SignAlgorithm::Ecdsa(_)
        )
    }
}

impl From<u8> for SignAlgorithm {
    fn from(p2: u8) -> Self {
        SignAlgorithm::from_p2(p2)
    }
}

impl From<SignAlgorithm> for u8 {
    fn from(alg: SignAlgorithm) -> Self {
        alg.p2()
    }
}

/// What ECDH (DECIPHER with P2 `80`, §2.13) answers.
///
/// The real card's answer is **UNKNOWN** (sc-hsm-protocol.md §2.13, §9 question 3): OpenSC's
/// comment says it returns "the point result … with a leading 04" (which suggests the full
/// point), pico-hsm returns `04‖X` and pypicohsm strips the `04`. The applet picks the default
/// and makes it configurable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EcdhResultForm {
    /// `04‖X` (1 + field size bytes): what pico-hsm answers.
    XOnly,
    /// `04‖X‖Y`: the whole shared point, uncompressed.
    FullPoint,
}

/// A public key, as the card exports it in a CV request (§2.11).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// An EC public key.
    Ec {
        /// The curve.
        curve: Curve,
        /// The point, uncompressed `04‖X‖Y` (1 + 2 × field size bytes).
        point: Vec<u8>,
    },
    /// An RSA public key; both integers big-endian without leading zero bytes.
    Rsa {
        /// The modulus n.
        modulus: Vec<u8>,
        /// The public exponent e.
        exponent: Vec<u8>,
    },
}

impl PublicKey {
    /// An EC public key, after checking that `point` is an uncompressed point on `curve`.
    pub fn ec(curve: Curve, point: &[u8]) -> Result<PublicKey, CryptoError> {
        ec::validate_point(curve, point)?;
        Ok(PublicKey::Ec {
            curve,
            point: point.to_vec(),
        })
    }

    /// An RSA public key, after checking the modulus size (a supported [`KeySpec`]) and the
    /// exponent (odd, 3 ≤ e < n). Leading zero bytes are dropped.
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Result<PublicKey, CryptoError> {
        let key = rsa_key::public_key(modulus, exponent)?;
        Ok(rsa_key::public_of(&key))
    }

    /// The key specification (RSA: the bit length of the modulus).
    pub fn spec(&self) -> KeySpec {
        match self {
            PublicKey::Ec { curve, .. } => KeySpec::Ec(*curve),
            PublicKey::Rsa { modulus, .. } => KeySpec::Rsa {
                bits: bit_len(modulus),
            },
        }
    }
}

/// The bit length of a big-endian integer (saturating at `u16::MAX`).
fn bit_len(bytes: &[u8]) -> u16 {
    let v = curve::strip_leading_zeros(bytes);
    match v.first() {
        None => 0,
        Some(&b) => {
            let bits = (v.len() - 1) * 8 + (8 - b.leading_zeros() as usize);
            u16::try_from(bits).unwrap_or(u16::MAX)
        }
    }
}

/// A private key of the virtual card: an EC key on a [`Curve`] or an RSA key.
///
/// Zeroized on drop (the RustCrypto key types inside zeroize themselves). `Debug` shows the
/// key specification only.
#[derive(Clone)]
pub struct PrivateKey(Inner);

#[derive(Clone)]
enum Inner {
    Ec(EcSecret),
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl core::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("spec", &self.spec())
            .finish_non_exhaustive()
    }
}

/// Version byte of the [`PrivateKey::to_bytes`] record.
const RECORD_VERSION: u8 = 1;
/// Record type bytes of [`PrivateKey::to_bytes`].
const RECORD_P256: u8 = 0x01;
const RECORD_P384: u8 = 0x02;
const RECORD_P521: u8 = 0x03;
const RECORD_BP256: u8 = 0x04;
const RECORD_RSA: u8 = 0x10;

impl PrivateKey {
    /// Generates a key (GENERATE ASYMMETRIC KEY PAIR, §2.11). RSA keys have the public exponent
    /// 65537.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedKeySpec`] for an RSA size outside [`KeySpec::is_supported`].
    pub fn generate(
        spec: KeySpec,
        rng: &mut impl CryptoRngCore,
    ) -> Result<PrivateKey, CryptoError> {
        if !spec.is_supported() {
            return Err(CryptoError::UnsupportedKeySpec(spec));
        }
        Ok(match spec {
            KeySpec::Ec(curve) => PrivateKey(Inner::Ec(EcSecret::generate(curve, rng)?)),
            KeySpec::Rsa { bits } => {
                PrivateKey(Inner::Rsa(Box::new(rsa_key::generate(bits, rng)?)))
            }
        })
    }

    /// The key specification.
    pub fn spec(&self) -> KeySpec {
        match &self.0 {
            Inner::Ec(k) => KeySpec::Ec(k.curve()),
            Inner::Rsa(k) => KeySpec::Rsa {
                bits: rsa_key::bits(k),
            },
        }
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        match &self.0 {
            Inner::Ec(k) => PublicKey::Ec {
                curve: k.curve(),
                point: k.public_point(),
            },
            Inner::Rsa(k) => rsa_key::public_of(k.as_ref()),
        }
    }

    /// The key as a versioned record for the card's persistent memory (read back with
    /// [`PrivateKey::from_bytes`]).
    ///
    /// Layout (version 1): `01` version, a type byte (`01` P-256, `02` P-384, `03` P-521,
    /// `04` brainpoolP256r1, `10` RSA), then for EC the private scalar at field width, for RSA
    /// five 2-byte-length-prefixed big-endian integers n, e, d, p, q.
    ///
    /// The record holds the private key in clear: the caller keeps it in a `Zeroizing` buffer
    /// (as the card state does) and protects the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        match &self.0 {
            Inner::Ec(k) => {
                out.push(match k.curve() {
                    Curve::P256 => RECORD_P256,
                    Curve::P384 => RECORD_P384,
                    Curve::P521 => RECORD_P521,
                    Curve::BrainpoolP256r1 => RECORD_BP256,
                });
                out.extend_from_slice(&k.scalar_bytes());
            }
            Inner::Rsa(k) => {
                out.push(RECORD_RSA);
                rsa_key::write_record(k, &mut out);
            }
        }
        out
    }

    /// Reads a record written by [`PrivateKey::to_bytes`].
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedRecordVersion`] for another version, and
    /// [`CryptoError::MalformedKeyRecord`] for anything that is not a valid key (wrong
    /// lengths, trailing bytes, an EC scalar out of range, inconsistent RSA components).
    pub fn from_bytes(bytes: &[u8]) -> Result<PrivateKey, CryptoError> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or(CryptoError::MalformedKeyRecord("empty record"))?;
        if version != RECORD_VERSION {
            return Err(CryptoError::UnsupportedRecordVersion(version));
        }
        let (&kind, body) = rest
            .split_first()
            .ok_or(CryptoError::MalformedKeyRecord("no key type"))?;
        let curve = match kind {
            RECORD_P256 => Curve::P256,
            RECORD_P384 => Curve::P384,
            RECORD_P521 => Curve::P521,
            RECORD_BP256 => Curve::BrainpoolP256r1,
            RECORD_RSA => {
                return Ok(PrivateKey(Inner::Rsa(Box::new(rsa_key::read_record(
                    body,
                )?))));
            }
            _ => return Err(CryptoError::MalformedKeyRecord("unknown key type")),
        };
        if body.len() != curve.field_size() {
            return Err(CryptoError::MalformedKeyRecord(
                "EC scalar has the wrong length",
            ));
        }
        EcSecret::from_scalar_bytes(curve, body)
            .map(|k| PrivateKey(Inner::Ec(k)))
            .map_err(|_| CryptoError::MalformedKeyRecord("EC scalar out of range"))
    }

    fn from_ec(k: EcSecret) -> PrivateKey {
        PrivateKey(Inner::Ec(k))
    }

    fn from_rsa(k: rsa::RsaPrivateKey) -> PrivateKey {
        PrivateKey(Inner::Rsa(Box::new(k)))
    }
}

/// Errors of the card's cryptography. None carries key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The key specification is not supported (an RSA size outside 1024..=4096 step 256).
    #[error("unsupported key specification {0:?}")]
    UnsupportedKeySpec(KeySpec),
    /// The SIGN algorithm byte is not one the card knows.
    #[error("unknown algorithm {0:#04x}")]
    UnknownAlgorithm(u8),
    /// The algorithm is for another key type (an RSA algorithm with an EC key or vice versa).
    #[error("algorithm {algorithm:?} does not fit a {key:?} key")]
    AlgorithmKeyMismatch {
        /// The requested algorithm.
        algorithm: SignAlgorithm,
        /// The key's specification.
        key: KeySpec,
    },
    /// The operation needs another key type (DECIPHER needs RSA, ECDH needs EC).
    #[error("{operation} does not work with a {key:?} key")]
    WrongKeyType {
        /// The operation.
        operation: &'static str,
        /// The key's specification.
        key: KeySpec,
    },
    /// The input has the wrong length for the operation.
    #[error("input of {len} bytes has the wrong length: expected {expected}")]
    InputLength {
        /// The input's length.
        len: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// A raw RSA input (SIGN `20`, DECIPHER `21`) is not below the modulus.
    #[error("raw RSA input is not below the modulus")]
    InputNotBelowModulus,
    /// An EC point is not an uncompressed point on the key's curve (or is the identity).
    #[error("not an uncompressed point on the curve")]
    InvalidPoint,
    /// An RSA public key is malformed (size not supported, bad exponent, even modulus).
    #[error("invalid RSA public key: {0}")]
    InvalidPublicKey(&'static str),
    /// A signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// An RSA private-key operation failed (for example a PSS encoding that does not fit a
    /// small modulus).
    #[error("RSA operation failed: {0}")]
    RsaOperation(&'static str),
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    KeyGeneration(&'static str),
    /// The random generator gave no usable value in 64 draws (an EC scalar or ECDSA nonce in
    /// range); does not happen with a working generator.
    #[error("the random generator gave no usable {0}")]
    RandomExhausted(&'static str),
    /// A persistent key record has another version.
    #[error("unsupported key record version {0}")]
    UnsupportedRecordVersion(u8),
    /// A persistent key record is not a valid key.
    #[error("malformed key record: {0}")]
    MalformedKeyRecord(&'static str),
    /// A wrapped-key blob is truncated or its structure is malformed.
    #[error("malformed wrapped key: {0}")]
    MalformedBlob(&'static str),
    /// A wrapped-key blob was made under another DKEK (its KCV differs).
    #[error("wrapped key was made under another DKEK (KCV mismatch)")]
    WrongKcv,
    /// A wrapped-key blob fails its CMAC.
    #[error("wrapped key fails its MAC")]
    BadMac,
    /// A wrapped-key blob has a key type the virtual card does not unwrap (only `05` RSA and
    /// `0C` EC; `06` RSA-CRT and `0F` AES are not supported).
    #[error("unsupported wrapped key type {0:#04x}")]
    UnsupportedKeyType(u8),
    /// A wrapped-key blob decrypts to key data that is not a valid key.
    #[error("invalid wrapped key data: {0}")]
    InvalidKeyData(&'static str),
}

/// Signs `input` with `key` (SIGN, §2.12). RSA signatures are exactly modulus length; ECDSA
/// signatures are DER `30 L 02 r 02 s`, as the card answers.
///
/// # Errors
/// [`CryptoError::UnknownAlgorithm`], [`CryptoError::AlgorithmKeyMismatch`],
/// [`CryptoError::InputLength`] (raw RSA input not modulus length, DigestInfo longer than
/// modulus length − 11, PSS hash of no known length, empty ECDSA hash),
/// [`CryptoError::InputNotBelowModulus`], [`CryptoError::RsaOperation`].
pub fn sign(
    key: &PrivateKey,
    algorithm: SignAlgorithm,
    input: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CryptoError> {
    if let SignAlgorithm::Unknown(b) = algorithm {
        return Err(CryptoError::UnknownAlgorithm(b));
    }
    let mismatch = || CryptoError::AlgorithmKeyMismatch {
        algorithm,
        key: key.spec(),
    };
    match &key.0 {
        Inner::Rsa(k) => match algorithm {
            SignAlgorithm::RsaRaw => rsa_key::raw_private(k, input, Some(rng)),
            SignAlgorithm::RsaPkcs1v15DigestInfo => rsa_key::sign_pkcs1v15(k, None, input, rng),
            SignAlgorithm::RsaPkcs1v15(h) => {
                rsa_key::sign_pkcs1v15(k, Some(h), &h.digest(input), rng)
            }
            SignAlgorithm::RsaPssPrehashed => {
                let h = HashAlgorithm::from_output_len(input.len()).ok_or(
                    CryptoError::InputLength {
                        len: input.len(),
                        expected: "a hash of 20, 28, 32, 48 or 64 bytes",
                    },
                )?;
                rsa_key::sign_pss(k, h, input, rng)
            }
            SignAlgorithm::RsaPss(h) => rsa_key::sign_pss(k, h, &h.digest(input), rng),
            _ => Err(mismatch()),
        },
        Inner::Ec(k) => {
            let rs = match algorithm {
                SignAlgorithm::EcdsaPrehashed => k.sign_hash(input, rng)?,
                SignAlgorithm::Ecdsa(h) => k.sign_hash(&h.digest(input), rng)?,
                _ => return Err(mismatch()),
            };
            ecdsa_plain_to_der(&rs)
        }
    }
}

/// Verifies a signature in the form [`sign`] produces (RSA: modulus length; ECDSA: DER).
///
/// # Errors
/// [`CryptoError::BadSignature`] when it does not verify; the errors of [`sign`] for an
/// algorithm that does not fit the key or an input of the wrong length; and
/// [`CryptoError::InvalidPoint`] / [`CryptoError::InvalidPublicKey`] for a malformed key.
pub fn verify(
    key: &PublicKey,
    algorithm: SignAlgorithm,
    input: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    if let SignAlgorithm::Unknown(b) = algorithm {
        return Err(CryptoError::UnknownAlgorithm(b));
    }
    let mismatch = || CryptoError::AlgorithmKeyMismatch {
        algorithm,
        key: key.spec(),
    };
    match key {
        PublicKey::Rsa { modulus, exponent } => {
            let pk = rsa_key::public_key(modulus, exponent)?;
            match algorithm {
                SignAlgorithm::RsaRaw => rsa_key::verify_raw(&pk, input, signature),
                SignAlgorithm::RsaPkcs1v15DigestInfo => {
                    rsa_key::verify_pkcs1v15(&pk, None, input, signature)
                }
                SignAlgorithm::RsaPkcs1v15(h) => {
                    rsa_key::verify_pkcs1v15(&pk, Some(h), &h.digest(input), signature)
                }
                SignAlgorithm::RsaPssPrehashed => {
                    let h = HashAlgorithm::from_output_len(input.len()).ok_or(
                        CryptoError::InputLength {
                            len: input.len(),
                            expected: "a hash of 20, 28, 32, 48 or 64 bytes",
                        },
                    )?;
                    rsa_key::verify_pss(&pk, h, input, signature)
                }
                SignAlgorithm::RsaPss(h) => {
                    rsa_key::verify_pss(&pk, h, &h.digest(input), signature)
                }
                _ => Err(mismatch()),
            }
        }
        PublicKey::Ec { curve, point } => {
            let hash = match algorithm {
                SignAlgorithm::EcdsaPrehashed => input.to_vec(),
                SignAlgorithm::Ecdsa(h) => h.digest(input),
                _ => return Err(mismatch()),
            };
            let rs = ecdsa_der_to_plain(signature, curve.field_size())
                .map_err(|_| CryptoError::BadSignature)?;
            ec::verify_hash(*curve, point, &hash, &rs)
        }
    }
}

/// Verifies a plain `r‖s` ECDSA signature (each half at field width, BSI TR-03111 §5.2.1, the
/// form inside CV certificates) over `hash` (any non-zero length, truncated as for SIGN `70`).
///
/// # Errors
/// [`CryptoError::BadSignature`], [`CryptoError::InvalidPoint`], [`CryptoError::InputLength`].
pub fn verify_ecdsa_plain(
    curve: Curve,
    point: &[u8],
    hash: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    ec::verify_hash(curve, point, hash, signature)
}

/// Signs `hash` with an EC key and returns the plain `r‖s` form (each half at field width), as
/// CV certificates carry ECDSA signatures (BSI TR-03111 §5.2.1).
///
/// # Errors
/// [`CryptoError::WrongKeyType`] for an RSA key, [`CryptoError::InputLength`] for an empty hash.
pub fn sign_ecdsa_plain(
    key: &PrivateKey,
    hash: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CryptoError> {
    match &key.0 {
        Inner::Ec(k) => k.sign_hash(hash, rng),
        Inner::Rsa(_) => Err(CryptoError::WrongKeyType {
            operation: "ECDSA",
            key: key.spec(),
        }),
    }
}

/// Raw RSA deciphering (DECIPHER with P2 `21`, §2.13): `cryptogram^d mod n`, left-padded to the
/// modulus length. Padding is the host's business. Not blinded (it takes no generator; the
/// virtual card's timing is not a secret worth guarding), but checked by re-encryption.
///
/// # Errors
/// [`CryptoError::WrongKeyType`] for an EC key, [`CryptoError::InputLength`] unless the
/// cryptogram is exactly modulus length, [`CryptoError::InputNotBelowModulus`].
pub fn decipher_raw(key: &PrivateKey, cryptogram: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match &key.0 {
        Inner::Rsa(k) => rsa_key::raw_private(k, cryptogram, None::<&mut rand_chacha::ChaCha20Rng>),
        Inner::Ec(_) => Err(CryptoError::WrongKeyType {
            operation: "DECIPHER",
            key: key.spec(),
        }),
    }
}

/// ECDH (DECIPHER with P2 `80`, §2.13): multiplies the peer's point (uncompressed `04‖X‖Y` on
/// the key's curve) by the private scalar and answers in `form`.
///
/// # Errors
/// [`CryptoError::WrongKeyType`] for an RSA key, [`CryptoError::InvalidPoint`] for a peer point
/// of the wrong length or form, not on the curve, or giving the identity.
pub fn ecdh(
    key: &PrivateKey,
    peer_point: &[u8],
    form: EcdhResultForm,
) -> Result<Vec<u8>, CryptoError> {
    match &key.0 {
        Inner::Ec(k) => {
            let mut point = k.ecdh(peer_point)?;
            if form == EcdhResultForm::XOnly {
                point.truncate(1 + k.curve().field_size());
            }
            Ok(point)
        }
        Inner::Rsa(_) => Err(CryptoError::WrongKeyType {
            operation: "ECDH",
            key: key.spec(),
        }),
    }
}

/// Compile-time proof that every key type inside [`PrivateKey`] zeroizes itself on drop.
#[allow(dead_code)]
fn assert_zeroize_on_drop() {
    fn zod<T: zeroize::ZeroizeOnDrop>() {}
    zod::<p256::SecretKey>();
    zod::<p384::SecretKey>();
    zod::<p521::SecretKey>();
    zod::<bp256::r1::SecretKey>();
    zod::<rsa::RsaPrivateKey>();
}

//! Card-verifiable (CV) certificates and requests as the SmartCard-HSM uses them (BSI TR-03110-3
//! Appendix C; sc-hsm-protocol.md §1.4, §2.11, §6.9), and the virtual card's device identity.
//!
//! - [`Certificate`]: `7F21 { 7F4E body, 5F37 signature }`, a certificate or a (self-signed)
//!   request; [`CertificateBody`] is the body `{ 5F29 CPI, [42 CAR], 7F49 public key, 5F20 CHR,
//!   [7F4C CHAT], [5F25 effective date, 5F24 expiration date], [65 extensions] }`.
//! - [`AuthenticatedRequest`]: `67 { 7F21 request, 42 outer CAR, 5F37 outer signature }`.
//! - [`PublicKeyTemplate`]: the `7F49` public key with its algorithm OID ([`TaAlgorithm`]).
//! - [`KeyGenerationTemplate`]: the data of GENERATE ASYMMETRIC KEY PAIR (§2.11), and the CV
//!   request the card answers with.
//! - [`DeviceIdentity`]: the device key and the certificate chain of EF `2F02` (§1.4).
//!
//! Signatures cover the whole body object (`7F4E`, length and value, as encoded). The signer's
//! `7F49` algorithm OID selects the scheme: the issuer's for a certificate, the key's own for a
//! self-signed request. ECDSA signatures are plain `r‖s`, each half as long as the order
//! (BSI TR-03111 §5.2.1), not DER; RSA signatures are modulus length.
//!
//! What it does not know: APDUs, files, status words; time (dates are carried, never checked).

use rand_core::CryptoRngCore;
use tessera_apdu::{Tag, Tlv, TlvError, TlvWriter, Tlvs};

use crate::crypto::{
    self, CryptoError, Curve, HashAlgorithm, KeySpec, PrivateKey, PublicKey, SignAlgorithm,
};

/// Tags of CV certificates (BSI TR-03110-3 Table D.1 / Appendix C).
mod tag {
    use tessera_apdu::Tag;
    pub const CERTIFICATE: Tag = Tag::new(0x7F21);
    pub const AUTHENTICATED_REQUEST: Tag = Tag::new(0x67);
    pub const BODY: Tag = Tag::new(0x7F4E);
    pub const SIGNATURE: Tag = Tag::new(0x5F37);
    pub const CPI: Tag = Tag::new(0x5F29);
    pub const CAR: Tag = Tag::new(0x42);
    pub const PUBLIC_KEY: Tag = Tag::new(0x7F49);
    pub const CHR: Tag = Tag::new(0x5F20);
    pub const CHAT: Tag = Tag::new(0x7F4C);
    pub const EFFECTIVE_DATE: Tag = Tag::new(0x5F25);
    pub const EXPIRATION_DATE: Tag = Tag::new(0x5F24);
    pub const EXTENSIONS: Tag = Tag::new(0x65);
    pub const OID: Tag = Tag::new(0x06);
    pub const DISCRETIONARY_DATA: Tag = Tag::new(0x53);
    /// In `7F49`: modulus / prime.
    pub const KEY_81: Tag = Tag::new(0x81);
    /// In `7F49`: public exponent / coefficient a.
    pub const KEY_82: Tag = Tag::new(0x82);
    pub const EC_B: Tag = Tag::new(0x83);
    pub const EC_GENERATOR: Tag = Tag::new(0x84);
    pub const EC_ORDER: Tag = Tag::new(0x85);
    pub const EC_POINT: Tag = Tag::new(0x86);
    pub const EC_COFACTOR: Tag = Tag::new(0x87);
    /// In a key-generation template's `7F49`: the RSA modulus size in bits (pypicohsm, §6.7).
    pub const RSA_BITS: Tag = Tag::new(0x02);
    /// Key-generation template: outer CAR, key-use counter, algorithm list, key domain (§2.11).
    pub const OUTER_CAR: Tag = Tag::new(0x45);
    pub const USE_COUNTER: Tag = Tag::new(0x90);
    pub const ALGORITHMS: Tag = Tag::new(0x91);
    pub const KEY_DOMAIN: Tag = Tag::new(0x92);
}

/// The largest CV object this module writes (an RSA-4096 request is about 1.2 KiB).
const MAX_ENCODED_LEN: usize = 16 * 1024;

/// Errors of CV certificate handling.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CvcError {
    /// The BER-TLV structure is malformed (or a value is too long to write).
    #[error("malformed BER-TLV: {0}")]
    Tlv(#[from] TlvError),
    /// An object has another tag than its place requires.
    #[error("expected tag {expected}, found {found}")]
    UnexpectedTag {
        /// The tag required here.
        expected: Tag,
        /// The tag found.
        found: Tag,
    },
    /// A mandatory data object is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A data object is malformed, duplicated, unknown at its place, or bytes trail.
    #[error("malformed CV object: {0}")]
    Malformed(&'static str),
    /// The public key names an algorithm OID this module does not know.
    #[error("unknown algorithm OID {0:02X?}")]
    UnknownAlgorithm(Vec<u8>),
    /// EC domain parameters (or a point) of no supported curve.
    #[error("unknown or mismatching EC domain parameters")]
    UnknownCurve,
    /// The algorithm is for another key type (an ECDSA OID with an RSA key or vice versa).
    #[error("algorithm {algorithm:?} does not fit a {key:?} key")]
    AlgorithmKeyMismatch {
        /// The algorithm.
        algorithm: TaAlgorithm,
        /// The key's specification.
        key: KeySpec,
    },
    /// The CHR prefix of a device identity is not 1 to 8 ASCII letters and digits.
    #[error("CHR prefix must be 1 to 8 ASCII letters or digits")]
    InvalidPrefix,
    /// A cryptographic operation failed; [`CryptoError::BadSignature`] when a signature does
    /// not verify.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

// ---------------------------------------------------------------------------------------------
// Algorithms

/// A signature algorithm OID of terminal authentication (BSI TR-03110-3 §A.6.4.2):
/// `id-TA = 0.4.0.127.0.7.2.2.2`, `id-TA-RSA = id-TA 1`, `id-TA-ECDSA = id-TA 2`.
///
/// The SmartCard-HSM uses id-TA-ECDSA-SHA-256 and id-TA-RSA-v1-5-SHA-256 (§2.11); the others
/// are accepted in certificates, and [`TaAlgorithm::for_key`] picks SHA-384 / SHA-512 ECDSA
/// for P-384 / P-521 keys so the hash is as strong as the curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaAlgorithm {
    /// id-TA-RSA-v1-5-SHA-1 (`…02 01 01`).
    RsaV15Sha1,
    /// id-TA-RSA-v1-5-SHA-256 (`…02 01 02`).
    RsaV15Sha256,
    /// id-TA-RSA-PSS-SHA-1 (`…02 01 03`).
    RsaPssSha1,
    /// id-TA-RSA-PSS-SHA-256 (`…02 01 04`).
    RsaPssSha256,
    /// id-TA-RSA-v1-5-SHA-512 (`…02 01 05`).
    RsaV15Sha512,
    /// id-TA-RSA-PSS-SHA-512 (`…02 01 06`).
    RsaPssSha512,
    /// id-TA-ECDSA-SHA-1 (`…02 02 01`).
    EcdsaSha1,
    /// id-TA-ECDSA-SHA-224 (`…02 02 02`).
    EcdsaSha224,
    /// id-TA-ECDSA-SHA-256 (`…02 02 03`).
    EcdsaSha256,
    /// id-TA-ECDSA-SHA-384 (`…02 02 04`).
    EcdsaSha384,
    /// id-TA-ECDSA-SHA-512 (`…02 02 05`).
    EcdsaSha512,
}

/// The content bytes of `id-TA` (0.4.0.127.0.7.2.2.2).
const ID_TA: [u8; 8] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02];

impl TaAlgorithm {
    /// Every algorithm.
    pub const ALL: [TaAlgorithm; 11] = [
        TaAlgorithm::RsaV15Sha1,
        TaAlgorithm::RsaV15Sha256,
        TaAlgorithm::RsaPssSha1,
        TaAlgorithm::RsaPssSha256,
        TaAlgorithm::RsaV15Sha512,
        TaAlgorithm::RsaPssSha512,
        TaAlgorithm::EcdsaSha1,
        TaAlgorithm::EcdsaSha224,
        TaAlgorithm::EcdsaSha256,
        TaAlgorithm::EcdsaSha384,
        TaAlgorithm::EcdsaSha512,
    ];

    /// The last two arcs below id-TA.
    const fn arcs(self) -> [u8; 2] {
        match self {
            TaAlgorithm::RsaV15Sha1 => [1, 1],
            TaAlgorithm::RsaV15Sha256 => [1, 2],
            TaAlgorithm::RsaPssSha1 => [1, 3],
            TaAlgorithm::RsaPssSha256 => [1, 4],
            TaAlgorithm::RsaV15Sha512 => [1, 5],
            TaAlgorithm::RsaPssSha512 => [1, 6],
            TaAlgorithm::EcdsaSha1 => [2, 1],
            TaAlgorithm::EcdsaSha224 => [2, 2],
            TaAlgorithm::EcdsaSha256 => [2, 3],
            TaAlgorithm::EcdsaSha384 => [2, 4],
            TaAlgorithm::EcdsaSha512 => [2, 5],
        }
    }

    /// The OID's content bytes (the value of tag `06`), e.g. `04 00 7F 00 07 02 02 02 02 03`.
    pub const fn oid(self) -> [u8; 10] {
        let [a, b] = self.arcs();
        let t = ID_TA;
        [t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], a, b]
    }

    /// The algorithm with these OID content bytes.
    pub fn from_oid(oid: &[u8]) -> Option<TaAlgorithm> {
        TaAlgorithm::ALL.into_iter().find(|a| a.oid() == oid)
    }

    /// The hash algorithm.
    pub const fn hash(self) -> HashAlgorithm {
        match self {
            TaAlgorithm::RsaV15Sha1 | TaAlgorithm::RsaPssSha1 | TaAlgorithm::EcdsaSha1 => {
                HashAlgorithm::Sha1
            }
            TaAlgorithm::EcdsaSha224 => HashAlgorithm::Sha224,
            TaAlgorithm::RsaV15Sha256 | TaAlgorithm::RsaPssSha256 | TaAlgorithm::EcdsaSha256 => {
                HashAlgorithm::Sha256
            }
            TaAlgorithm::EcdsaSha384 => HashAlgorithm::Sha384,
            TaAlgorithm::RsaV15Sha512 | TaAlgorithm::RsaPssSha512 | TaAlgorithm::EcdsaSha512 => {
                HashAlgorithm::Sha512
            }
        }
    }

    /// Whether this is an ECDSA algorithm (else RSA).
    pub const fn is_ecdsa(self) -> bool {
        self.arcs()[0] == 2
    }

    /// The SIGN algorithm with on-card hashing that computes the same signature (for ECDSA in
    /// DER form; a CVC holds it as `r‖s`).
    pub const fn sign_algorithm(self) -> SignAlgorithm {
        match self {
            TaAlgorithm::RsaV15Sha1 | TaAlgorithm::RsaV15Sha256 | TaAlgorithm::RsaV15Sha512 => {
                SignAlgorithm::RsaPkcs1v15(self.hash())
            }
            TaAlgorithm::RsaPssSha1 | TaAlgorithm::RsaPssSha256 | TaAlgorithm::RsaPssSha512 => {
                SignAlgorithm::RsaPss(self.hash())
            }
            _ => SignAlgorithm::Ecdsa(self.hash()),
        }
    }

    /// The algorithm a key of `spec` signs its CV objects with: RSA v1.5 SHA-256 for RSA (as
    /// the SmartCard-HSM, §2.11), ECDSA SHA-256 for 256-bit curves, SHA-384 for P-384 and
    /// SHA-512 for P-521.
    pub const fn for_key(spec: KeySpec) -> TaAlgorithm {
        match spec {
            KeySpec::Rsa { .. } => TaAlgorithm::RsaV15Sha256,
            KeySpec::Ec(Curve::P384) => TaAlgorithm::EcdsaSha384,
            KeySpec::Ec(Curve::P521) => TaAlgorithm::EcdsaSha512,
            KeySpec::Ec(_) => TaAlgorithm::EcdsaSha256,
        }
    }

    /// Whether the algorithm fits keys of `spec` (ECDSA for EC keys, RSA for RSA keys).
    pub const fn fits(self, spec: KeySpec) -> bool {
        self.is_ecdsa() == matches!(spec, KeySpec::Ec(_))
    }
}

fn check_fits(algorithm: TaAlgorithm, spec: KeySpec) -> Result<(), CvcError> {
    if algorithm.fits(spec) {
        Ok(())
    } else {
        Err(CvcError::AlgorithmKeyMismatch {
            algorithm,
            key: spec,
        })
    }
}

/// Signs `data` as a CV object carries the signature (ECDSA `r‖s`, RSA modulus length).
fn cv_sign(
    signer: &PrivateKey,
    algorithm: TaAlgorithm,
    data: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CvcError> {
    check_fits(algorithm, signer.spec())?;
    Ok(if algorithm.is_ecdsa() {
        crypto::sign_ecdsa_plain(signer, &algorithm.hash().digest(data), rng)?
    } else {
        crypto::sign(signer, algorithm.sign_algorithm(), data, rng)?
    })
}

/// Verifies a CV signature over `data` with the signer's public key template.
fn cv_verify(signer: &PublicKeyTemplate, data: &[u8], signature: &[u8]) -> Result<(), CvcError> {
    let algorithm = signer.algorithm;
    check_fits(algorithm, signer.key.spec())?;
    match &signer.key {
        PublicKey::Ec { curve, point } => {
            let hash = algorithm.hash().digest(data);
            crypto::verify_ecdsa_plain(*curve, point, &hash, signature)?;
        }
        PublicKey::Rsa { .. } => {
            crypto::verify(&signer.key, algorithm.sign_algorithm(), data, signature)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Runs `write` on a TLV writer over a fresh buffer and returns what it wrote.
fn encode<F>(write: F) -> Result<Vec<u8>, CvcError>
where
    F: for<'b> FnOnce(&mut TlvWriter<'b>) -> Result<(), TlvError>,
{
    let mut buffer = vec![0u8; MAX_ENCODED_LEN];
    let len = {
        let mut writer = TlvWriter::new(&mut buffer);
        write(&mut writer)?;
        writer.len()
    };
    buffer.truncate(len);
    Ok(buffer)
}

/// Parses exactly one object with tag `expected`.
fn parse_one(bytes: &[u8], expected: Tag) -> Result<Tlv<'_>, CvcError> {
    let tlv = Tlv::parse(bytes)?;
    expect_tag(&tlv, expected)?;
    Ok(tlv)
}

fn expect_tag(tlv: &Tlv<'_>, expected: Tag) -> Result<(), CvcError> {
    if tlv.tag() == expected {
        Ok(())
    } else {
        Err(CvcError::UnexpectedTag {
            expected,
            found: tlv.tag(),
        })
    }
}

/// Stores `value` in `slot`, refusing a second occurrence.
fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), CvcError> {
    if slot.is_some() {
        return Err(CvcError::Malformed("duplicate data object"));
    }
    *slot = Some(value);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Public key template (7F49)

/// A CV public key (`7F49`): its algorithm OID and the key.
///
/// EC keys in CVCA certificates and in requests carry the curve's domain parameters (tags
/// `81`..`85`, `87`); other certificates carry only the point (`86`), and the curve is then
/// the one the point lies on (checked against every supported curve of that point length).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicKeyTemplate {
    /// The signature algorithm this key is used with.
    pub algorithm: TaAlgorithm,
    /// The key.
    pub key: PublicKey,
    /// Whether the domain parameters are written (EC keys only; ignored for RSA).
    pub domain_parameters: bool,
}

impl PublicKeyTemplate {
    /// The template of `key`, with domain parameters for EC keys (as in a request).
    pub fn new(algorithm: TaAlgorithm, key: PublicKey) -> Result<PublicKeyTemplate, CvcError> {
        check_fits(algorithm, key.spec())?;
        Ok(PublicKeyTemplate {
            algorithm,
            key,
            domain_parameters: true,
        })
    }

    /// Reads the value of a `7F49` object.
    pub fn parse(value: &[u8]) -> Result<PublicKeyTemplate, CvcError> {
        let mut oid = None;
        let mut fields: [Option<&[u8]>; 7] = [None; 7];
        for tlv in Tlvs::new(value) {
            let tlv = tlv?;
            let raw = tlv.tag().raw();
            if tlv.tag() == tag::OID {
                set_once(&mut oid, tlv.value())?;
            } else if (0x81..=0x87).contains(&raw) {
                set_once(&mut fields[(raw - 0x81) as usize], tlv.value())?;
            } else {
                return Err(CvcError::Malformed("unknown tag in the public key"));
            }
        }
        let oid = oid.ok_or(CvcError::Missing("public key algorithm OID (06)"))?;
        let algorithm =
            TaAlgorithm::from_oid(oid).ok_or_else(|| CvcError::UnknownAlgorithm(oid.to_vec()))?;
        let [f81, f82, f83, f84, f85, f86, f87] = fields;
        if !algorithm.is_ecdsa() {
            if [f83, f84, f85, f86, f87].iter().any(Option::is_some) {
                return Err(CvcError::Malformed("EC fields in an RSA public key"));
            }
            let modulus = f81.ok_or(CvcError::Missing("RSA modulus (81)"))?;
            let exponent = f82.ok_or(CvcError::Missing("RSA public exponent (82)"))?;
            let key = PublicKey::rsa(modulus, exponent)?;
            return Ok(PublicKeyTemplate {
                algorithm,
                key,
                domain_parameters: false,
            });
        }
        let point = f86.ok_or(CvcError::Missing("EC public point (86)"))?;
        let params = [f81, f82, f83, f84, f85, f87];
        let curve = if params.iter().all(Option::is_none) {
            curve_of_point(point)?
        } else {
            let [Some(p), Some(a), Some(b), Some(g), Some(n), Some(h)] = params else {
                return Err(CvcError::Malformed("incomplete EC domain parameters"));
            };
            curve_of_parameters(p, a, b, g, n, h)?
        };
        let key = PublicKey::ec(curve, point)?;
        Ok(PublicKeyTemplate {
            algorithm,
            key,
            domain_parameters: params[0].is_some(),
        })
    }

    /// Writes the `7F49` object: `06` OID, then RSA `81` modulus, `82` exponent, or EC
    /// `81`..`85` domain parameters (if [`domain_parameters`](Self::domain_parameters)), `86`
    /// point, `87` cofactor.
    pub fn write(&self, w: &mut TlvWriter<'_>) -> Result<(), TlvError> {
        w.write_constructed(tag::PUBLIC_KEY, |w| {
            w.write(tag::OID, &self.algorithm.oid())?;
            match &self.key {
                PublicKey::Rsa { modulus, exponent } => {
                    w.write(tag::KEY_81, modulus)?;
                    w.write(tag::KEY_82, exponent)
                }
                PublicKey::Ec { curve, point } => {
                    let d = curve.domain_parameters();
                    if self.domain_parameters {
                        w.write(tag::KEY_81, d.prime)?;
                        w.write(tag::KEY_82, d.a)?;
                        w.write(tag::EC_B, d.b)?;
                        w.write(tag::EC_GENERATOR, d.generator)?;
                        w.write(tag::EC_ORDER, d.order)?;
                    }
                    w.write(tag::EC_POINT, point)?;
                    if self.domain_parameters {
                        w.write(tag::EC_COFACTOR, d.cofactor)?;
                    }
                    Ok(())
                }
            }
        })
    }
}

/// The curve with these domain parameters (integers compared without leading zero bytes).
fn curve_of_parameters(
    p: &[u8],
    a: &[u8],
    b: &[u8],
    g: &[u8],
    n: &[u8],
    h: &[u8],
) -> Result<Curve, CvcError> {
    let curve = Curve::from_prime(p).ok_or(CvcError::UnknownCurve)?;
    let d = curve.domain_parameters();
    let same = |x: &[u8], y: &[u8]| strip_zeros(x) == strip_zeros(y);
    if same(a, d.a) && same(b, d.b) && g == d.generator && same(n, d.order) && same(h, d.cofactor) {
        Ok(curve)
    } else {
        Err(CvcError::UnknownCurve)
    }
}

/// The supported curve `point` (uncompressed) lies on.
fn curve_of_point(point: &[u8]) -> Result<Curve, CvcError> {
    Curve::ALL
        .into_iter()
        .find(|&c| PublicKey::ec(c, point).is_ok())
        .ok_or(CvcError::UnknownCurve)
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

// ---------------------------------------------------------------------------------------------
// Dates and CHAT

/// A CV certificate date (BSI TR-03110-3 §D.2.1.3): six bytes, one decimal digit each, `YYMMDD`,
/// years 2000..=2099.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CvDate {
    /// The year, 2000..=2099.
    pub year: u16,
    /// The month, 1..=12.
    pub month: u8,
    /// The day, 1..=31.
    pub day: u8,
}

impl CvDate {
    /// The date, if it is in range.
    pub fn new(year: u16, month: u8, day: u8) -> Option<CvDate> {
        ((2000..=2099).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day))
            .then_some(CvDate { year, month, day })
    }

    /// Reads the six digit bytes.
    pub fn parse(bytes: &[u8]) -> Result<CvDate, CvcError> {
        let bad = CvcError::Malformed("date is not six digits YYMMDD");
        let digits: [u8; 6] = bytes.try_into().map_err(|_| bad.clone())?;
        if digits.iter().any(|&d| d > 9) {
            return Err(bad);
        }
        let [y1, y2, m1, m2, d1, d2] = digits;
        CvDate::new(2000 + u16::from(y1 * 10 + y2), m1 * 10 + m2, d1 * 10 + d2).ok_or(bad)
    }

    /// The six digit bytes.
    pub fn to_bytes(self) -> [u8; 6] {
        let y = (self.year % 100) as u8;
        [
            y / 10,
            y % 10,
            self.month / 10,
            self.month % 10,
            self.day / 10,
            self.day % 10,
        ]
    }
}

/// A certificate holder authorization template (`7F4C { 06 role OID, 53 authorization }`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chat {
    /// The role OID's content bytes (the SmartCard-HSM root uses 1.3.6.1.4.1.24991.3.1.1).
    pub role: Vec<u8>,
    /// The relative authorization bits (the first byte's two top bits: `C0` CVCA, `80` DV,
    /// `00` terminal).
    pub authorization: Vec<u8>,
}

impl Chat {
    /// The role OID of the SmartCard-HSM's CV certificates, 1.3.6.1.4.1.24991.3.1.1 (as in the
    /// root certificate, §6.9).
    pub const SMARTCARD_HSM_ROLE: [u8; 11] = [
        0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x03, 0x01, 0x01,
    ];

    fn parse(value: &[u8]) -> Result<Chat, CvcError> {
        let mut children = Tlvs::new(value);
        let role = children
            .next()
            .ok_or(CvcError::Missing("CHAT role OID"))??;
        expect_tag(&role, tag::OID)?;
        let auth = children
            .next()
            .ok_or(CvcError::Missing("CHAT authorization"))??;
        expect_tag(&auth, tag::DISCRETIONARY_DATA)?;
        if children.next().is_some() {
            return Err(CvcError::Malformed("trailing objects in the CHAT"));
        }
        Ok(Chat {
            role: role.value().to_vec(),
            authorization: auth.value().to_vec(),
        })
    }

    fn write(&self, w: &mut TlvWriter<'_>) -> Result<(), TlvError> {
        w.write_constructed(tag::CHAT, |w| {
            w.write(tag::OID, &self.role)?;
            w.write(tag::DISCRETIONARY_DATA, &self.authorization)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Certificate body and certificate

/// The body of a CV certificate or request (`7F4E`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertificateBody {
    /// Certificate profile identifier (`5F29`), 0 for the SmartCard-HSM.
    pub profile_identifier: u8,
    /// Certification authority reference (`42`); optional in requests.
    pub car: Option<Vec<u8>>,
    /// The public key (`7F49`).
    pub public_key: PublicKeyTemplate,
    /// Certificate holder reference (`5F20`).
    pub chr: Vec<u8>,
    /// Certificate holder authorization template (`7F4C`).
    pub chat: Option<Chat>,
    /// Certificate effective date (`5F25`).
    pub effective_date: Option<CvDate>,
    /// Certificate expiration date (`5F24`).
    pub expiration_date: Option<CvDate>,
    /// Certificate extensions (`65`), kept as their raw value.
    pub extensions: Option<Vec<u8>>,
}

impl CertificateBody {
    /// Reads the value of a `7F4E` object. Objects may come in any order; each at most once.
    pub fn parse(value: &[u8]) -> Result<CertificateBody, CvcError> {
        let mut cpi = None;
        let mut car = None;
        let mut public_key = None;
        let mut chr = None;
        let mut chat = None;
        let mut effective = None;
        let mut expiration = None;
        let mut extensions = None;
        for tlv in Tlvs::new(value) {
            let tlv = tlv?;
            let v = tlv.value();
            match tlv.tag() {
                t if t == tag::CPI => {
                    let [b] = v else {
                        return Err(CvcError::Malformed("CPI is not one byte"));
                    };
                    set_once(&mut cpi, *b)?;
                }
                t if t == tag::CAR => set_once(&mut car, v.to_vec())?,
                t if t == tag::PUBLIC_KEY => {
                    set_once(&mut public_key, PublicKeyTemplate::parse(v)?)?
                }
                t if t == tag::CHR => set_once(&mut chr, v.to_vec())?,
                t if t == tag::CHAT => set_once(&mut chat, Chat::parse(v)?)?,
                t if t == tag::EFFECTIVE_DATE => set_once(&mut effective, CvDate::parse(v)?)?,
                t if t == tag::EXPIRATION_DATE => set_once(&mut expiration, CvDate::parse(v)?)?,
                t if t == tag::EXTENSIONS => set_once(&mut extensions, v.to_vec())?,
                _ => return Err(CvcError::Malformed("unknown tag in the certificate body")),
            }
        }
        Ok(CertificateBody {
            profile_identifier: cpi.ok_or(CvcError::Missing("CPI (5F29)"))?,
            car,
            public_key: public_key.ok_or(CvcError::Missing("public key (7F49)"))?,
            chr: chr.ok_or(CvcError::Missing("CHR (5F20)"))?,
            chat,
            effective_date: effective,
            expiration_date: expiration,
            extensions,
        })
    }

    /// Writes the `7F4E` object, objects in the order of TR-03110-3 Table C.1.
    pub fn write(&self, w: &mut TlvWriter<'_>) -> Result<(), TlvError> {
        w.write_constructed(tag::BODY, |w| {
            w.write(tag::CPI, &[self.profile_identifier])?;
            if let Some(car) = &self.car {
                w.write(tag::CAR, car)?;
            }
            self.public_key.write(w)?;
            w.write(tag::CHR, &self.chr)?;
            if let Some(chat) = &self.chat {
                chat.write(w)?;
            }
            if let Some(date) = self.effective_date {
                w.write(tag::EFFECTIVE_DATE, &date.to_bytes())?;
            }
            if let Some(date) = self.expiration_date {
                w.write(tag::EXPIRATION_DATE, &date.to_bytes())?;
            }
            if let Some(extensions) = &self.extensions {
                w.write(tag::EXTENSIONS, extensions)?;
            }
            Ok(())
        })
    }

    /// The encoded `7F4E` object (what the signature covers).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CvcError> {
        encode(|w| self.write(w))
    }

    /// Signs the body with `signer` under `algorithm` (the signer's own algorithm: the issuer's
    /// for a certificate, the key's for a self-signed request).
    ///
    /// # Errors
    /// [`CvcError::AlgorithmKeyMismatch`], [`CvcError::Tlv`] for values too long to encode.
    pub fn sign(
        self,
        signer: &PrivateKey,
        algorithm: TaAlgorithm,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Certificate, CvcError> {
        let body_bytes = self.to_bytes()?;
        let signature = cv_sign(signer, algorithm, &body_bytes, rng)?;
        let bytes = encode(|w| {
            w.write_constructed(tag::CERTIFICATE, |w| {
                w.write_raw(&Tlv::parse(&body_bytes)?)?;
                w.write(tag::SIGNATURE, &signature)
            })
        })?;
        Certificate::parse(&bytes)
    }

    /// The CHR as text, if it is ASCII.
    pub fn chr_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.chr)
            .ok()
            .filter(|s| s.is_ascii())
    }
}

/// A CV certificate or a self-signed CV request (`7F21 { 7F4E body, 5F37 signature }`), with
/// its encoding as received or written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Certificate {
    bytes: Vec<u8>,
    body_bytes: Vec<u8>,
    body: CertificateBody,
    signature: Vec<u8>,
}

impl Certificate {
    /// Reads a buffer holding exactly one certificate.
    pub fn parse(bytes: &[u8]) -> Result<Certificate, CvcError> {
        match Certificate::parse_prefix(bytes)? {
            (certificate, []) => Ok(certificate),
            _ => Err(CvcError::Malformed("bytes after the certificate")),
        }
    }

    /// Reads the certificate at the front of `bytes` and returns the bytes after it (EF `2F02`
    /// holds two certificates back to back, §1.4).
    pub fn parse_prefix(bytes: &[u8]) -> Result<(Certificate, &[u8]), CvcError> {
        let (outer, rest) = Tlv::parse_prefix(bytes)?;
        expect_tag(&outer, tag::CERTIFICATE)?;
        let mut children = Tlvs::new(outer.value());
        let body = children
            .next()
            .ok_or(CvcError::Missing("certificate body (7F4E)"))??;
        expect_tag(&body, tag::BODY)?;
        let signature = children
            .next()
            .ok_or(CvcError::Missing("signature (5F37)"))??;
        expect_tag(&signature, tag::SIGNATURE)?;
        if children.next().is_some() {
            return Err(CvcError::Malformed("objects after the signature"));
        }
        let certificate = Certificate {
            bytes: outer.as_bytes().to_vec(),
            body_bytes: body.as_bytes().to_vec(),
            body: CertificateBody::parse(body.value())?,
            signature: signature.value().to_vec(),
        };
        Ok((certificate, rest))
    }

    /// The encoding (`7F21 …`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The body.
    pub fn body(&self) -> &CertificateBody {
        &self.body
    }

    /// The encoded body object (`7F4E …`), what the signature covers.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body_bytes
    }

    /// The signature (`5F37` value).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The holder's public key.
    pub fn public_key(&self) -> &PublicKeyTemplate {
        &self.body.public_key
    }

    /// The CHR.
    pub fn chr(&self) -> &[u8] {
        &self.body.chr
    }

    /// The CAR, if any.
    pub fn car(&self) -> Option<&[u8]> {
        self.body.car.as_deref()
    }

    /// Verifies the signature with the issuer's public key (its algorithm OID selects the
    /// scheme).
    ///
    /// # Errors
    /// [`CvcError::Crypto`] with [`CryptoError::BadSignature`] when it does not verify;
    /// [`CvcError::AlgorithmKeyMismatch`] when the issuer's OID does not fit its key.
    pub fn verify(&self, issuer: &PublicKeyTemplate) -> Result<(), CvcError> {
        cv_verify(issuer, &self.body_bytes, &self.signature)
    }

    /// Verifies a self-signed certificate or a request with its own public key.
    pub fn verify_self_signed(&self) -> Result<(), CvcError> {
        self.verify(&self.body.public_key)
    }
}

/// An authenticated CV request: `67 { 7F21 request, 42 outer CAR, 5F37 outer signature }`; the
/// outer signature covers the encoded request followed by the encoded outer CAR object
/// (BSI TR-03110-3 §C.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AuthenticatedRequest {
    bytes: Vec<u8>,
    request: Certificate,
    outer_car: Vec<u8>,
    signed_bytes: Vec<u8>,
    outer_signature: Vec<u8>,
}

impl AuthenticatedRequest {
    /// Reads a buffer holding exactly one authenticated request.
    pub fn parse(bytes: &[u8]) -> Result<AuthenticatedRequest, CvcError> {
        let outer = parse_one(bytes, tag::AUTHENTICATED_REQUEST)?;
        let mut children = Tlvs::new(outer.value());
        let request = children
            .next()
            .ok_or(CvcError::Missing("inner request (7F21)"))??;
        let car = children
            .next()
            .ok_or(CvcError::Missing("outer CAR (42)"))??;
        expect_tag(&car, tag::CAR)?;
        let signature = children
            .next()
            .ok_or(CvcError::Missing("outer signature (5F37)"))??;
        expect_tag(&signature, tag::SIGNATURE)?;
        if children.next().is_some() {
            return Err(CvcError::Malformed("objects after the outer signature"));
        }
        let mut signed_bytes = request.as_bytes().to_vec();
        signed_bytes.extend_from_slice(car.as_bytes());
        Ok(AuthenticatedRequest {
            bytes: outer.as_bytes().to_vec(),
            request: Certificate::parse(request.as_bytes())?,
            outer_car: car.value().to_vec(),
            signed_bytes,
            outer_signature: signature.value().to_vec(),
        })
    }

    /// Wraps `request` with an outer signature by `signer` (for the card: the device key) under
    /// `algorithm`, naming `outer_car`.
    pub fn sign(
        request: &Certificate,
        outer_car: &[u8],
        signer: &PrivateKey,
        algorithm: TaAlgorithm,
        rng: &mut impl CryptoRngCore,
    ) -> Result<AuthenticatedRequest, CvcError> {
        let car = encode(|w| w.write(tag::CAR, outer_car))?;
        let mut signed = request.as_bytes().to_vec();
        signed.extend_from_slice(&car);
        let signature = cv_sign(signer, algorithm, &signed, rng)?;
        let bytes = encode(|w| {
            w.write_constructed(tag::AUTHENTICATED_REQUEST, |w| {
                w.write_raw(&Tlv::parse(request.as_bytes())?)?;
                w.write(tag::CAR, outer_car)?;
                w.write(tag::SIGNATURE, &signature)
            })
        })?;
        AuthenticatedRequest::parse(&bytes)
    }

    /// The encoding (`67 …`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The inner request.
    pub fn request(&self) -> &Certificate {
        &self.request
    }

    /// The outer CAR.
    pub fn outer_car(&self) -> &[u8] {
        &self.outer_car
    }

    /// The outer signature.
    pub fn outer_signature(&self) -> &[u8] {
        &self.outer_signature
    }

    /// Verifies the outer signature with the key the outer CAR names.
    pub fn verify(&self, outer_signer: &PublicKeyTemplate) -> Result<(), CvcError> {
        cv_verify(outer_signer, &self.signed_bytes, &self.outer_signature)
    }
}

// ---------------------------------------------------------------------------------------------
// Key generation (GENERATE ASYMMETRIC KEY PAIR, §2.11)

/// The data of GENERATE ASYMMETRIC KEY PAIR (§2.11): the contents of a CV body plus the
/// card's key options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyGenerationTemplate {
    /// CPI (`5F29`); 0 when absent.
    pub profile_identifier: u8,
    /// CAR (`42`), copied into the request.
    pub car: Option<Vec<u8>>,
    /// The algorithm OID of the `7F49` template.
    pub algorithm: TaAlgorithm,
    /// The key to generate: the curve from the domain parameters (`81` prime, others checked
    /// when present), or the RSA size from `02` (bits).
    pub spec: KeySpec,
    /// CHR (`5F20`) of the request.
    pub chr: Vec<u8>,
    /// Outer CAR (`45`): the host asks for an authenticated request.
    pub outer_car: Option<Vec<u8>>,
    /// Key-use counter (`90`, four bytes, 1..=2^32−1).
    pub use_counter: Option<u32>,
    /// Allowed algorithm list (`91`, at most 16 bytes).
    pub algorithms: Option<Vec<u8>>,
    /// Key domain (`92`, one byte).
    pub key_domain: Option<u8>,
}

impl KeyGenerationTemplate {
    /// Reads the command data.
    ///
    /// # Errors
    /// [`CvcError::Tlv`] / [`CvcError::Malformed`] / [`CvcError::Missing`] for a malformed
    /// template (unknown tags included), [`CvcError::UnknownAlgorithm`] for an unknown OID,
    /// [`CvcError::UnknownCurve`] for domain parameters of no supported curve (pico answers
    /// 6A81), [`CvcError::Crypto`] with [`CryptoError::UnsupportedKeySpec`] for an RSA size the
    /// card does not generate or a public exponent other than 65537.
    pub fn parse(data: &[u8]) -> Result<KeyGenerationTemplate, CvcError> {
        let mut cpi = None;
        let mut car = None;
        let mut key = None;
        let mut chr = None;
        let mut outer_car = None;
        let mut use_counter = None;
        let mut algorithms = None;
        let mut key_domain = None;
        for tlv in Tlvs::new(data) {
            let tlv = tlv?;
            let v = tlv.value();
            match tlv.tag() {
                t if t == tag::CPI => {
                    let [b] = v else {
                        return Err(CvcError::Malformed("CPI is not one byte"));
                    };
                    set_once(&mut cpi, *b)?;
                }
                t if t == tag::CAR => set_once(&mut car, v.to_vec())?,
                t if t == tag::PUBLIC_KEY => set_once(&mut key, requested_key(v)?)?,
                t if t == tag::CHR => set_once(&mut chr, v.to_vec())?,
                t if t == tag::OUTER_CAR => set_once(&mut outer_car, v.to_vec())?,
                t if t == tag::USE_COUNTER => {
                    let counter = <[u8; 4]>::try_from(v)
                        .map(u32::from_be_bytes)
                        .ok()
                        .filter(|&c| c != 0)
                        .ok_or(CvcError::Malformed("key-use counter is not 1..2^32-1"))?;
                    set_once(&mut use_counter, counter)?;
                }
                t if t == tag::ALGORITHMS => {
                    if v.len() > 16 {
                        return Err(CvcError::Malformed("algorithm list longer than 16 bytes"));
                    }
                    set_once(&mut algorithms, v.to_vec())?;
                }
                t if t == tag::KEY_DOMAIN => {
                    let [b] = v else {
                        return Err(CvcError::Malformed("key domain is not one byte"));
                    };
                    set_once(&mut key_domain, *b)?;
                }
                _ => {
                    return Err(CvcError::Malformed(
                        "unknown tag in the key generation data",
                    ))
                }
            }
        }
        let (algorithm, spec) = key.ok_or(CvcError::Missing("public key template (7F49)"))?;
        Ok(KeyGenerationTemplate {
            profile_identifier: cpi.unwrap_or(0),
            car,
            algorithm,
            spec,
            chr: chr.ok_or(CvcError::Missing("CHR (5F20)"))?,
            outer_car,
            use_counter,
            algorithms,
            key_domain,
        })
    }

    /// The self-signed CV request for the generated `key` (§2.11): `7F21 { 7F4E { 5F29, [42
    /// CAR], 7F49 { 06 OID, EC: 81..85, 86 point, 87 | RSA: 81 modulus, 82 exponent }, 5F20 CHR
    /// }, 5F37 signature by the new key }`.
    pub fn build_request(
        &self,
        key: &PrivateKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CvcError> {
        Ok(self.request(key, rng)?.as_bytes().to_vec())
    }

    /// The answer of GENERATE ASYMMETRIC KEY PAIR: [`build_request`](Self::build_request), and
    /// when the template names an outer CAR (`45`), that request wrapped as an
    /// [`AuthenticatedRequest`] signed by `outer_key` (the device key) under
    /// [`TaAlgorithm::for_key`] of that key.
    pub fn build_response(
        &self,
        key: &PrivateKey,
        outer_key: &PrivateKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CvcError> {
        let request = self.request(key, rng)?;
        match &self.outer_car {
            None => Ok(request.as_bytes().to_vec()),
            Some(outer_car) => {
                let algorithm = TaAlgorithm::for_key(outer_key.spec());
                let outer =
                    AuthenticatedRequest::sign(&request, outer_car, outer_key, algorithm, rng)?;
                Ok(outer.as_bytes().to_vec())
            }
        }
    }

    fn request(
        &self,
        key: &PrivateKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Certificate, CvcError> {
        key_generation_request(
            key,
            self.profile_identifier,
            self.car.as_deref(),
            &self.chr,
            self.algorithm,
            rng,
        )
    }
}

/// What a key-generation template's `7F49` asks for: the OID and the key specification.
fn requested_key(value: &[u8]) -> Result<(TaAlgorithm, KeySpec), CvcError> {
    let mut oid = None;
    let mut bits = None;
    let mut fields: [Option<&[u8]>; 7] = [None; 7];
    for tlv in Tlvs::new(value) {
        let tlv = tlv?;
        let raw = tlv.tag().raw();
        if tlv.tag() == tag::OID {
            set_once(&mut oid, tlv.value())?;
        } else if tlv.tag() == tag::RSA_BITS {
            set_once(&mut bits, tlv.value())?;
        } else if (0x81..=0x87).contains(&raw) {
            set_once(&mut fields[(raw - 0x81) as usize], tlv.value())?;
        } else {
            return Err(CvcError::Malformed(
                "unknown tag in the public key template",
            ));
        }
    }
    let oid = oid.ok_or(CvcError::Missing("public key algorithm OID (06)"))?;
    let algorithm =
        TaAlgorithm::from_oid(oid).ok_or_else(|| CvcError::UnknownAlgorithm(oid.to_vec()))?;
    let [f81, f82, f83, f84, f85, f86, f87] = fields;
    if f86.is_some() {
        return Err(CvcError::Malformed(
            "a public point in a key generation template",
        ));
    }
    if algorithm.is_ecdsa() {
        if bits.is_some() {
            return Err(CvcError::Malformed("RSA size in an EC template"));
        }
        let prime = f81.ok_or(CvcError::Missing("EC prime (81)"))?;
        let curve = Curve::from_prime(prime).ok_or(CvcError::UnknownCurve)?;
        let d = curve.domain_parameters();
        let expected = [
            Some(d.a),
            Some(d.b),
            Some(d.generator),
            Some(d.order),
            Some(d.cofactor),
        ];
        for (given, expected) in [f82, f83, f84, f85, f87].into_iter().zip(expected) {
            if let (Some(given), Some(expected)) = (given, expected) {
                if strip_zeros(given) != strip_zeros(expected) {
                    return Err(CvcError::UnknownCurve);
                }
            }
        }
        return Ok((algorithm, KeySpec::Ec(curve)));
    }
    if [f81, f83, f84, f85, f87].iter().any(Option::is_some) {
        return Err(CvcError::Malformed("EC fields in an RSA template"));
    }
    if let Some(exponent) = f82 {
        if strip_zeros(exponent) != [0x01, 0x00, 0x01] {
            return Err(CryptoError::UnsupportedKeySpec(KeySpec::Rsa { bits: 0 }).into());
        }
    }
    let bits = bits.ok_or(CvcError::Missing("RSA modulus size (02)"))?;
    let bits = match strip_zeros(bits) {
        [b] => u16::from(*b),
        [hi, lo] => u16::from_be_bytes([*hi, *lo]),
        _ => return Err(CvcError::Malformed("RSA modulus size is not 1 or 2 bytes")),
    };
    let spec = KeySpec::Rsa { bits };
    if !spec.is_supported() {
        return Err(CryptoError::UnsupportedKeySpec(spec).into());
    }
    Ok((algorithm, spec))
}

/// Builds the self-signed CV request for a newly generated `key` (§2.11): `7F21 { 7F4E {
/// 5F29 CPI, [42 CAR], 7F49 { 06 OID, EC: 81..85, 86, 87 | RSA: 81, 82 }, 5F20 CHR }, 5F37 }`,
/// signed by `key` itself under `algorithm`.
///
/// # Errors
/// [`CvcError::AlgorithmKeyMismatch`] when `algorithm` does not fit the key.
pub fn key_generation_request(
    key: &PrivateKey,
    profile_identifier: u8,
    car: Option<&[u8]>,
    chr: &[u8],
    algorithm: TaAlgorithm,
    rng: &mut impl CryptoRngCore,
) -> Result<Certificate, CvcError> {
    let body = CertificateBody {
        profile_identifier,
        car: car.map(<[u8]>::to_vec),
        public_key: PublicKeyTemplate::new(algorithm, key.public())?,
        chr: chr.to_vec(),
        chat: None,
        effective_date: None,
        expiration_date: None,
        extensions: None,
    };
    body.sign(key, algorithm, rng)
}

// ---------------------------------------------------------------------------------------------
// Device identity (§1.4)

/// The virtual card's device identity: its device key (key id 0, `CC00`) and the certificate
/// chain root → device issuer CA (DICA) → device, made deterministically from a 32-byte seed.
///
/// **Deliberate difference from the real card**: a real SmartCard-HSM's chain ends at
/// CardContact's root `DESRCACC100001` (§6.9), whose private key only CardContact has. A
/// virtual card has its own virtual root instead (CHR `<prefix>RCA00001`), so it never
/// verifies against the real root and is never taken for a genuine device. Its device CHR
/// prefix should not be a Nitrokey one (`DENK`) either; the applet's default is `ZZTS`.
///
/// Choices (none stated by the sources):
/// - **GUESS**: all three keys are brainpoolP256r1 with id-TA-ECDSA-SHA-256, the curve and
///   algorithm of the real root (§6.9); the real device key's curve is not known.
/// - **GUESS**: CHRs `<prefix>RCA00001` (root), `<prefix>DICA00001` (DICA) and
///   `<prefix><7 digits><00001>` (device; the digits come from the seed); the serial is the
///   device CHR without its last five characters (§1.4), e.g. `ZZTS1234567`.
/// - **GUESS**: the root carries its domain parameters (a CVCA certificate must, TR-03110-3);
///   DICA and device certificates carry only the point. Every certificate has a CHAT with
///   the SmartCard-HSM role OID (`C0` root, `80` DICA, `00` device) and the fixed dates
///   2025-01-01 to 2099-12-31, so the bytes depend on the seed and prefix only.
#[derive(Clone, Debug)]
pub struct DeviceIdentity {
    root: Certificate,
    dica: Certificate,
    device: Certificate,
    device_key: PrivateKey,
    ef_2f02: Vec<u8>,
    chr: String,
    serial: String,
}

/// Sub-generator for one purpose: ChaCha20 seeded with SHA-256(label ‖ seed).
fn derived_rng(seed: &[u8; 32], label: &str) -> rand_chacha::ChaCha20Rng {
    use rand_core::SeedableRng;
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(label.as_bytes());
    hasher.update(seed);
    rand_chacha::ChaCha20Rng::from_seed(hasher.finalize().into())
}

impl DeviceIdentity {
    /// The curve of the virtual root, DICA and device keys (GUESS, see the type's doc).
    pub const CURVE: Curve = Curve::BrainpoolP256r1;

    /// Makes the identity of the card with this seed; `chr_prefix` (1 to 8 ASCII letters or
    /// digits, e.g. `ZZTS`) starts every CHR. The same seed and prefix give the same bytes.
    ///
    /// # Errors
    /// [`CvcError::InvalidPrefix`].
    pub fn generate(seed: [u8; 32], chr_prefix: &str) -> Result<DeviceIdentity, CvcError> {
        if chr_prefix.is_empty()
            || chr_prefix.len() > 8
            || !chr_prefix.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(CvcError::InvalidPrefix);
        }
        let spec = KeySpec::Ec(Self::CURVE);
        let algorithm = TaAlgorithm::for_key(spec);
        let root_key = PrivateKey::generate(spec, &mut derived_rng(&seed, "tessera root key"))?;
        let dica_key = PrivateKey::generate(spec, &mut derived_rng(&seed, "tessera dica key"))?;
        let device_key = PrivateKey::generate(spec, &mut derived_rng(&seed, "tessera device key"))?;
        let mut signing = derived_rng(&seed, "tessera signatures");

        let digits = {
            use rand_core::RngCore;
            derived_rng(&seed, "tessera serial").next_u64() % 10_000_000
        };
        let root_chr = format!("{chr_prefix}RCA00001");
        let dica_chr = format!("{chr_prefix}DICA00001");
        let chr = format!("{chr_prefix}{digits:07}00001");
        let serial = chr[..chr.len() - 5].to_owned();

        let dates = (CvDate::new(2025, 1, 1), CvDate::new(2099, 12, 31));
        let body = |car: &str, holder: &str, key: &PrivateKey, with_parameters, role| {
            Ok::<_, CvcError>(CertificateBody {
                profile_identifier: 0,
                car: Some(car.as_bytes().to_vec()),
                public_key: PublicKeyTemplate {
                    algorithm,
                    key: key.public(),
                    domain_parameters: with_parameters,
                },
                chr: holder.as_bytes().to_vec(),
                chat: Some(Chat {
                    role: Chat::SMARTCARD_HSM_ROLE.to_vec(),
                    authorization: vec![role],
                }),
                effective_date: dates.0,
                expiration_date: dates.1,
                extensions: None,
            })
        };
        let root = body(&root_chr, &root_chr, &root_key, true, 0xC0)?.sign(
            &root_key,
            algorithm,
            &mut signing,
        )?;
        let dica = body(&root_chr, &dica_chr, &dica_key, false, 0x80)?.sign(
            &root_key,
            algorithm,
            &mut signing,
        )?;
        let device = body(&dica_chr, &chr, &device_key, false, 0x00)?.sign(
            &dica_key,
            algorithm,
            &mut signing,
        )?;

        let mut ef_2f02 = device.as_bytes().to_vec();
        ef_2f02.extend_from_slice(dica.as_bytes());
        Ok(DeviceIdentity {
            root,
            dica,
            device,
            device_key,
            ef_2f02,
            chr,
            serial,
        })
    }

    /// The content of EF `2F02`: device certificate ‖ DICA certificate (§1.4).
    pub fn ef_2f02(&self) -> &[u8] {
        &self.ef_2f02
    }

    /// The device key (key id 0, `CC00`).
    pub fn device_key(&self) -> &PrivateKey {
        &self.device_key
    }

    /// The device CHR, e.g. `ZZTS123456700001`.
    pub fn chr(&self) -> &str {
        &self.chr
    }

    /// The serial number: the device CHR without its last five characters (§1.4).
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The device certificate.
    pub fn device_certificate(&self) -> &Certificate {
        &self.device
    }

    /// The DICA certificate.
    pub fn dica_certificate(&self) -> &Certificate {
        &self.dica
    }

    /// The virtual root's self-signed certificate (not in EF `2F02`; for verification).
    pub fn root_certificate(&self) -> &Certificate {
        &self.root
    }

    /// The virtual root's public key, which the chain verifies against.
    pub fn root_public_key(&self) -> &PublicKeyTemplate {
        self.root.public_key()
    }
}

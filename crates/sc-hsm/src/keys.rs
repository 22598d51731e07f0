//! Keys and objects: object identifiers (sc-hsm-protocol.md §3.2), key algorithms and the
//! key-generation template (§2.11, §6.7), public keys, and the PKCS#15 private-key description
//! (PRKD, EF `C4xx`) that OpenSC reads for a key's label (§3.2).
//!
//! The PRKD is read minimally: the label (UTF8String in CommonObjectAttributes), the id
//! (CommonKeyAttributes), and the size from the type attributes (RSA modulus length, EC field
//! size). It is written as OpenSC 0.23 writes it for a key generated with pkcs11-tool, byte for
//! byte (tests/keys.rs holds OpenSC's own bytes), so OpenSC shows our keys with their labels.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use tessera_apdu::{Tag, Tlv, Tlvs};
use tessera_card::crypto::Curve;
use tessera_card::cvc;

use crate::der;

/// A file or key identifier: prefix byte (its kind) and id byte (sc-hsm-protocol.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ObjectId(pub u16);

impl ObjectId {
    /// The object `prefix`, `id`.
    pub const fn new(prefix: u8, id: u8) -> ObjectId {
        ObjectId(u16::from_be_bytes([prefix, id]))
    }

    /// The prefix (high byte).
    pub const fn prefix(self) -> u8 {
        self.0.to_be_bytes()[0]
    }

    /// The id (low byte).
    pub const fn id(self) -> u8 {
        self.0.to_be_bytes()[1]
    }

    /// What the prefix says the object is.
    pub const fn kind(self) -> ObjectKind {
        match self.prefix() {
            prefix::KEY => ObjectKind::PrivateKey,
            prefix::PRKD => ObjectKind::KeyDescription,
            prefix::CERTIFICATE => ObjectKind::Certificate,
            prefix::CD => ObjectKind::CertificateDescription,
            prefix::CA_CERTIFICATE => ObjectKind::CaCertificate,
            prefix::DCOD => ObjectKind::DataDescription,
            prefix::PRIVATE_DATA => ObjectKind::PrivateData,
            prefix::PUBLIC_DATA => ObjectKind::PublicData,
            0x2F => ObjectKind::DeviceFile,
            other => ObjectKind::Other(other),
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// Object prefixes (sc-hsm-protocol.md §3.2).
pub(crate) mod prefix {
    /// Private or secret key (`CC00` is the device key).
    pub const KEY: u8 = 0xCC;
    /// PKCS#15 private-key description.
    pub const PRKD: u8 = 0xC4;
    /// End-entity certificate or the CV request of key generation.
    pub const CERTIFICATE: u8 = 0xCE;
    /// PKCS#15 certificate description.
    pub const CD: u8 = 0xC8;
    /// CA certificate.
    pub const CA_CERTIFICATE: u8 = 0xCA;
    /// PKCS#15 data-object description.
    pub const DCOD: u8 = 0xC9;
    /// PIN-protected data object.
    pub const PRIVATE_DATA: u8 = 0xCD;
    /// Freely readable data object.
    pub const PUBLIC_DATA: u8 = 0xCF;
}

/// What an object is, by its prefix (sc-hsm-protocol.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectKind {
    /// `CC`: a private or secret key (never readable).
    PrivateKey,
    /// `C4`: a PKCS#15 private-key description (PRKD).
    KeyDescription,
    /// `CE`: a certificate, or the CV request from key generation.
    Certificate,
    /// `C8`: a PKCS#15 certificate description.
    CertificateDescription,
    /// `CA`: a CA certificate.
    CaCertificate,
    /// `C9`: a PKCS#15 data-object description.
    DataDescription,
    /// `CD`: a PIN-protected data object.
    PrivateData,
    /// `CF`: a freely readable data object.
    PublicData,
    /// `2F`: a device file (`2F02` device certificates, `2F03` token info).
    DeviceFile,
    /// Another prefix.
    Other(u8),
}

/// RSA or EC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// An RSA key.
    Rsa,
    /// An elliptic-curve key.
    Ec,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Rsa => "RSA",
            KeyKind::Ec => "EC",
        })
    }
}

/// An elliptic curve the SmartCard-HSM generates keys on (of those OpenSC offers, §2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1, prime256v1).
    #[serde(rename = "P-256")]
    P256,
    /// NIST P-384 (secp384r1).
    #[serde(rename = "P-384")]
    P384,
    /// NIST P-521 (secp521r1).
    #[serde(rename = "P-521")]
    P521,
    /// brainpoolP256r1 (RFC 5639).
    #[serde(rename = "brainpoolP256r1")]
    BrainpoolP256r1,
}

impl EcCurve {
    /// The field size in bits (and the ECDSA signature half size, rounded up to bytes).
    pub const fn bits(self) -> u16 {
        self.curve().field_bits()
    }

    /// Bytes of one field element: 32, 48, 66, 32.
    pub const fn field_bytes(self) -> usize {
        self.curve().field_size()
    }

    /// The DER content of its named-curve OID (RFC 5480, RFC 5639).
    pub const fn oid(self) -> &'static [u8] {
        self.curve().named_curve_oid()
    }

    pub(crate) const fn curve(self) -> Curve {
        match self {
            EcCurve::P256 => Curve::P256,
            EcCurve::P384 => Curve::P384,
            EcCurve::P521 => Curve::P521,
            EcCurve::BrainpoolP256r1 => Curve::BrainpoolP256r1,
        }
    }

    pub(crate) const fn from_curve(curve: Curve) -> EcCurve {
        match curve {
            Curve::P256 => EcCurve::P256,
            Curve::P384 => EcCurve::P384,
            Curve::P521 => EcCurve::P521,
            Curve::BrainpoolP256r1 => EcCurve::BrainpoolP256r1,
        }
    }
}

impl fmt::Display for EcCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
            EcCurve::BrainpoolP256r1 => "brainpoolP256r1",
        })
    }
}

/// A key to generate (sc-hsm-protocol.md §2.11): EC on one of four curves, or RSA of 2048,
/// 3072 or 4096 bits with public exponent 65537.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum KeyAlgorithm {
    /// EC on NIST P-256.
    EcP256,
    /// EC on NIST P-384.
    EcP384,
    /// EC on NIST P-521.
    EcP521,
    /// EC on brainpoolP256r1.
    EcBrainpoolP256r1,
    /// RSA, 2048-bit modulus.
    Rsa2048,
    /// RSA, 3072-bit modulus.
    Rsa3072,
    /// RSA, 4096-bit modulus.
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order `tessera keygen --help` should list them.
    pub const ALL: [KeyAlgorithm; 7] = [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::EcP521,
        KeyAlgorithm::EcBrainpoolP256r1,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    /// RSA or EC.
    pub const fn kind(self) -> KeyKind {
        match self.curve() {
            Some(_) => KeyKind::Ec,
            None => KeyKind::Rsa,
        }
    }

    /// The curve of an EC key.
    pub const fn curve(self) -> Option<EcCurve> {
        match self {
            KeyAlgorithm::EcP256 => Some(EcCurve::P256),
            KeyAlgorithm::EcP384 => Some(EcCurve::P384),
            KeyAlgorithm::EcP521 => Some(EcCurve::P521),
            KeyAlgorithm::EcBrainpoolP256r1 => Some(EcCurve::BrainpoolP256r1),
            _ => None,
        }
    }

    /// The size in bits: the RSA modulus, or the EC field.
    pub const fn bits(self) -> u16 {
        match self {
            KeyAlgorithm::Rsa2048 => 2048,
            KeyAlgorithm::Rsa3072 => 3072,
            KeyAlgorithm::Rsa4096 => 4096,
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcBrainpoolP256r1 => 256,
            KeyAlgorithm::EcP384 => 384,
            KeyAlgorithm::EcP521 => 521,
        }
    }

    /// The names [`FromStr`] accepts for each algorithm, canonical first.
    pub const NAMES: &'static str =
        "ec:p256 (prime256v1, secp256r1), ec:p384, ec:p521, ec:brainpoolP256r1, rsa:2048, \
         rsa:3072, rsa:4096";
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::EcP256 => "ec:p256",
            KeyAlgorithm::EcP384 => "ec:p384",
            KeyAlgorithm::EcP521 => "ec:p521",
            KeyAlgorithm::EcBrainpoolP256r1 => "ec:brainpoolP256r1",
            KeyAlgorithm::Rsa2048 => "rsa:2048",
            KeyAlgorithm::Rsa3072 => "rsa:3072",
            KeyAlgorithm::Rsa4096 => "rsa:4096",
        })
    }
}

impl From<KeyAlgorithm> for String {
    fn from(a: KeyAlgorithm) -> String {
        a.to_string()
    }
}

/// A key algorithm name [`KeyAlgorithm::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key algorithm {0:?}; use one of {names}", names = KeyAlgorithm::NAMES)]
pub struct UnknownAlgorithm(pub String);

impl FromStr for KeyAlgorithm {
    type Err = UnknownAlgorithm;

    /// Case-insensitive: `ec:p256`, `p256`, `prime256v1`, `secp256r1`, `EC:secp384r1`,
    /// `brainpoolP256r1`, `rsa:2048`, `rsa2048`, `rsa-4096`, ...
    fn from_str(s: &str) -> Result<KeyAlgorithm, UnknownAlgorithm> {
        let lower = s.trim().to_ascii_lowercase();
        let name = lower
            .strip_prefix("ec:")
            .or_else(|| lower.strip_prefix("ec-"))
            .unwrap_or(&lower);
        Ok(match name {
            "p256" | "p-256" | "prime256v1" | "secp256r1" | "nistp256" => KeyAlgorithm::EcP256,
            "p384" | "p-384" | "secp384r1" | "nistp384" => KeyAlgorithm::EcP384,
            "p521" | "p-521" | "secp521r1" | "nistp521" => KeyAlgorithm::EcP521,
            "brainpoolp256r1" | "bp256" | "bp256r1" => KeyAlgorithm::EcBrainpoolP256r1,
            "rsa:2048" | "rsa2048" | "rsa-2048" => KeyAlgorithm::Rsa2048,
            "rsa:3072" | "rsa3072" | "rsa-3072" => KeyAlgorithm::Rsa3072,
            "rsa:4096" | "rsa4096" | "rsa-4096" => KeyAlgorithm::Rsa4096,
            _ => return Err(UnknownAlgorithm(s.to_owned())),
        })
    }
}

/// A public key, as the card exports it in the key-generation request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PublicKey {
    /// An RSA public key; big-endian integers without leading zero bytes.
    Rsa {
        /// The modulus n.
        #[serde(serialize_with = "hex_bytes")]
        modulus: Vec<u8>,
        /// The public exponent e.
        #[serde(serialize_with = "hex_bytes")]
        exponent: Vec<u8>,
    },
    /// An EC public key.
    Ec {
        /// The curve.
        curve: EcCurve,
        /// The point, uncompressed `04‖X‖Y`.
        #[serde(serialize_with = "hex_bytes")]
        point: Vec<u8>,
    },
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::hex(bytes))
}

/// rsaEncryption, 1.2.840.113549.1.1.1 (RFC 8017 Appendix C).
const RSA_ENCRYPTION_OID: [u8; 9] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1 (RFC 5480 §2.1.1).
const EC_PUBLIC_KEY_OID: [u8; 7] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

impl PublicKey {
    /// RSA or EC.
    pub fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Rsa { .. } => KeyKind::Rsa,
            PublicKey::Ec { .. } => KeyKind::Ec,
        }
    }

    /// The size in bits: the modulus length, or the field size.
    pub fn bits(&self) -> u16 {
        match self {
            PublicKey::Ec { curve, .. } => curve.bits(),
            PublicKey::Rsa { modulus, .. } => {
                let first = modulus.iter().position(|&b| b != 0);
                match first.and_then(|i| modulus.get(i).map(|&b| (i, b))) {
                    Some((i, b)) => {
                        let bytes = modulus.len() - i;
                        let bits = bytes * 8 - b.leading_zeros() as usize;
                        u16::try_from(bits).unwrap_or(u16::MAX)
                    }
                    None => 0,
                }
            }
        }
    }

    /// The X.509 SubjectPublicKeyInfo, DER (RFC 5280 §4.1.2.7): RSA per RFC 8017 Appendix
    /// A.1.1, EC per RFC 5480 §2 (named curve, uncompressed point). What `openssl` and every
    /// verifier read.
    pub fn to_spki_der(&self) -> Vec<u8> {
        match self {
            PublicKey::Rsa { modulus, exponent } => {
                let algorithm = der::seq(
                    0x30,
                    &[&der::tlv(0x06, &RSA_ENCRYPTION_OID), &der::tlv(0x05, &[])],
                );
                let key = der::seq(
                    0x30,
                    &[
                        &der::unsigned_integer(modulus),
                        &der::unsigned_integer(exponent),
                    ],
                );
                let bits = der::seq(0x03, &[&[0x00], &key]);
                der::seq(0x30, &[&algorithm, &bits])
            }
            PublicKey::Ec { curve, point } => {
                let algorithm = der::seq(
                    0x30,
                    &[
                        &der::tlv(0x06, &EC_PUBLIC_KEY_OID),
                        &der::tlv(0x06, curve.oid()),
                    ],
                );
                let bits = der::seq(0x03, &[&[0x00], point]);
                der::seq(0x30, &[&algorithm, &bits])
            }
        }
    }

    /// The SubjectPublicKeyInfo as PEM (`-----BEGIN PUBLIC KEY-----`, RFC 7468 §13).
    pub fn to_pem(&self) -> String {
        let b64 = base64(&self.to_spki_der());
        let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END PUBLIC KEY-----\n");
        out
    }

    /// The public key in a key-generation answer: a CV request `7F21 …` or an authenticated
    /// request `67 { 7F21 …, 42, 5F37 }` (sc-hsm-protocol.md §2.11).
    pub fn from_cv_request(bytes: &[u8]) -> Result<PublicKey, String> {
        let request = match bytes.first() {
            Some(0x67) => cvc::AuthenticatedRequest::parse(bytes)
                .map(|r| r.request().clone())
                .map_err(|e| format!("authenticated CV request: {e}"))?,
            Some(0x7F) => cvc::Certificate::parse(bytes).map_err(|e| format!("CV request: {e}"))?,
            Some(b) => return Err(format!("a CV request starts with 7F21 or 67, not {b:02X}")),
            None => return Err("empty CV request".to_owned()),
        };
        Ok(match &request.public_key().key {
            tessera_card::crypto::PublicKey::Rsa { modulus, exponent } => PublicKey::Rsa {
                modulus: modulus.clone(),
                exponent: exponent.clone(),
            },
            tessera_card::crypto::PublicKey::Ec { curve, point } => PublicKey::Ec {
                curve: EcCurve::from_curve(*curve),
                point: point.clone(),
            },
        })
    }
}

/// Standard base64 with padding (RFC 4648 §4), for PEM.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = ((n >> (18 - 6 * i)) & 0x3F) as usize;
                out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The CAR OpenSC puts in a key-generation template (sc-hsm-protocol.md §2.11).
pub const TEMPLATE_CAR: &[u8] = b"UTCA00001";

/// Algorithm OIDs of the `7F49` template (sc-hsm-protocol.md §2.11): id-TA-RSA-v1-5-SHA-256
/// and id-TA-ECDSA-SHA-256 (OpenSC uses the SHA-256 one for every curve).
const TA_RSA_V15_SHA256: [u8; 10] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01, 0x02];
const TA_ECDSA_SHA256: [u8; 10] = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02, 0x03];

/// The data of GENERATE ASYMMETRIC KEY PAIR (sc-hsm-protocol.md §2.11, §6.7), as OpenSC builds
/// it: `5F29 00 | 42 "UTCA00001" | 7F49 { 06 OID, EC: 81 p 82 a 83 b 84 G 85 n 87 h; RSA:
/// 82 010001, 02 bits } | 5F20 CHR`.
pub fn key_generation_template(algorithm: KeyAlgorithm, chr: &[u8]) -> Vec<u8> {
    let key = match algorithm.curve() {
        Some(curve) => {
            let d = curve.curve().domain_parameters();
            [
                der::tlv(0x06, &TA_ECDSA_SHA256),
                der::tlv(0x81, d.prime),
                der::tlv(0x82, d.a),
                der::tlv(0x83, d.b),
                der::tlv(0x84, d.generator),
                der::tlv(0x85, d.order),
                der::tlv(0x87, d.cofactor),
            ]
            .concat()
        }
        None => [
            der::tlv(0x06, &TA_RSA_V15_SHA256),
            der::tlv(0x82, &[0x01, 0x00, 0x01]),
            der::tlv(0x02, &algorithm.bits().to_be_bytes()),
        ]
        .concat(),
    };
    [
        vec![0x5F, 0x29, 0x01, 0x00],
        der::tlv(0x42, TEMPLATE_CAR),
        [&[0x7F][..], &der::tlv(0x49, &key)].concat(),
        [&[0x5F][..], &der::tlv(0x20, chr)].concat(),
    ]
    .concat()
}

/// A PKCS#15 private-key description (PRKD), as far as this crate reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyDescription {
    /// RSA (`30` PrivateRSAKey) or EC (`A0` PrivateECKey); `None` for another type.
    pub kind: Option<KeyKind>,
    /// The label (CommonObjectAttributes, UTF8String), if present.
    pub label: Option<String>,
    /// The PKCS#15 id (CommonKeyAttributes `iD`).
    #[serde(serialize_with = "hex_bytes")]
    pub id: Vec<u8>,
    /// The size: RSA modulus length or EC field size, in bits, if present.
    pub bits: Option<u16>,
}

impl KeyDescription {
    /// Reads a PRKD (PKCS#15 PrivateKeyType; the layout OpenSC writes, §3.2).
    pub fn parse(bytes: &[u8]) -> Result<KeyDescription, String> {
        let (outer, _) = Tlv::parse_prefix(bytes).map_err(|e| format!("PRKD: {e}"))?;
        let kind = match outer.tag().raw() {
            0x30 => Some(KeyKind::Rsa),
            0xA0 => Some(KeyKind::Ec),
            _ => None,
        };
        let mut children = outer
            .children()
            .ok_or_else(|| "PRKD is not a constructed object".to_owned())?;
        let common = next_with(&mut children, 0x30, "CommonObjectAttributes")?;
        let key_attributes = next_with(&mut children, 0x30, "CommonKeyAttributes")?;
        let label = match common
            .find(Tag::new(0x0C))
            .map_err(|e| format!("CommonObjectAttributes: {e}"))?
        {
            Some(l) => Some(
                String::from_utf8(l.value().to_vec())
                    .map_err(|_| "the label is not UTF-8".to_owned())?,
            ),
            None => None,
        };
        let id = key_attributes
            .find(Tag::new(0x04))
            .map_err(|e| format!("CommonKeyAttributes: {e}"))?
            .ok_or_else(|| "no key id in CommonKeyAttributes".to_owned())?
            .value()
            .to_vec();
        let mut bits = None;
        for child in children {
            let child = child.map_err(|e| format!("PRKD: {e}"))?;
            if child.tag() != Tag::new(0xA1) {
                continue;
            }
            // typeAttributes [1] { SEQUENCE { value (Path), size INTEGER, ... } }
            let attributes = child
                .find(Tag::new(0x30))
                .map_err(|e| format!("type attributes: {e}"))?;
            if let Some(attributes) = attributes {
                if let Some(size) = attributes
                    .find(Tag::new(0x02))
                    .map_err(|e| format!("type attributes: {e}"))?
                {
                    let value = der::read_unsigned(size.value())
                        .ok_or_else(|| "the key size is not a small integer".to_owned())?;
                    bits = Some(u16::try_from(value).unwrap_or(u16::MAX));
                }
            }
        }
        Ok(KeyDescription {
            kind,
            label,
            id,
            bits,
        })
    }

    /// The PRKD OpenSC 0.23 writes for a key generated with pkcs11-tool (EF `C4<id>`):
    /// `A0` (EC) or `30` (RSA) { CommonObjectAttributes { label, flags private|modifiable,
    /// authId 01 }, CommonKeyAttributes { iD, usage, keyReference }, \[1\] { { path (empty),
    /// size } } }. Usage: EC sign, signRecover, derive; RSA decrypt, sign, signRecover.
    pub fn encode(kind: KeyKind, id: u8, bits: u16, label: &str) -> Vec<u8> {
        let common = der::seq(
            0x30,
            &[
                &der::tlv(0x0C, label.as_bytes()),
                &der::tlv(0x03, &[0x06, 0xC0]),
                &der::tlv(0x04, &[0x01]),
            ],
        );
        let usage: &[u8] = match kind {
            KeyKind::Ec => &[0x07, 0x30, 0x80],
            KeyKind::Rsa => &[0x04, 0x70],
        };
        let key_attributes = der::seq(
            0x30,
            &[
                &der::tlv(0x04, &[id]),
                &der::tlv(0x03, usage),
                &der::small_integer(u32::from(id)),
            ],
        );
        let path = der::seq(0x30, &[&der::tlv(0x04, &[])]);
        let type_attributes = der::seq(
            0xA1,
            &[&der::seq(
                0x30,
                &[&path, &der::small_integer(u32::from(bits))],
            )],
        );
        let tag = match kind {
            KeyKind::Ec => 0xA0,
            KeyKind::Rsa => 0x30,
        };
        der::seq(tag, &[&common, &key_attributes, &type_attributes])
    }
}

/// The next child, which must have `tag`.
fn next_with<'a>(children: &mut Tlvs<'a>, tag: u32, what: &str) -> Result<Tlv<'a>, String> {
    match children.next() {
        Some(Ok(t)) if t.tag().raw() == tag => Ok(t),
        Some(Ok(t)) => Err(format!("{what}: expected tag {tag:02X}, found {}", t.tag())),
        Some(Err(e)) => Err(format!("{what}: {e}")),
        None => Err(format!("{what} missing")),
    }
}

/// What is known about one file that describes a key: present and read, absent, or there but
/// not usable (each key reports its own problem; a bad file never fails the whole listing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "kebab-case")]
pub enum FileState {
    /// Read and understood.
    Present,
    /// Not on the card.
    Absent,
    /// Listed, but reading it failed.
    Unreadable(String),
    /// Read, but not understood.
    Malformed(String),
}

/// What the public-key file `CE<id>` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateKind {
    /// The CV request from key generation (`7F21` or `67`).
    CvRequest,
    /// An X.509 certificate (`30`).
    X509,
}

/// One key on the device, with what its files say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key id (key object `CC<id>`).
    pub id: u8,
    /// The label from the PRKD.
    pub label: Option<String>,
    /// RSA or EC (from the PRKD, else from the public key).
    pub kind: Option<KeyKind>,
    /// Size in bits (from the PRKD, else from the public key).
    pub bits: Option<u16>,
    /// The curve of an EC key, when the public key is on the card.
    pub curve: Option<EcCurve>,
    /// The PRKD `C4<id>`.
    pub description: FileState,
    /// The public-key file `CE<id>`.
    pub public_key_file: FileState,
    /// What `CE<id>` holds, when read.
    pub certificate: Option<CertificateKind>,
    /// The public key, when `CE<id>` holds a CV request.
    #[serde(skip)]
    pub public_key: Option<PublicKey>,
}

impl KeyInfo {
    /// `EC P-256 "my key"`, `RSA 2048`, `unknown type`.
    pub fn describe(&self) -> String {
        let mut out = match (self.kind, self.curve, self.bits) {
            (Some(KeyKind::Ec), Some(curve), _) => format!("EC {curve}"),
            (Some(kind), _, Some(bits)) => format!("{kind} {bits}"),
            (Some(kind), _, None) => kind.to_string(),
            (None, _, _) => "unknown type".to_owned(),
        };
        if let Some(label) = &self.label {
            out.push_str(&format!(" {label:?}"));
        }
        out
    }
}

/// A key the card generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedKey {
    /// Its id.
    pub id: u8,
    /// What was generated.
    pub algorithm: KeyAlgorithm,
    /// The label written to its PRKD.
    pub label: String,
    /// Its public key.
    pub public_key: PublicKey,
    /// The card's answer (the CV request), as stored in `CE<id>`.
    #[serde(skip)]
    pub request: Vec<u8>,
}

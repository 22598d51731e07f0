//! The elliptic curves of the virtual card and their domain parameters.
//!
//! The values are those of SEC 2 (P-256, P-384, P-521) and RFC 5639 (brainpoolP256r1), each
//! written at the full field width, as the SmartCard-HSM's public-key template carries them
//! (sc-hsm-protocol.md §2.11, §6.7; §6.9 shows the brainpoolP256r1 values in CardContact's root
//! certificate). tests/crypto.rs checks every value against the RustCrypto curve crates.

/// An elliptic curve the virtual card can generate keys on (sc-hsm-protocol.md §2.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1, prime256v1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
    /// brainpoolP256r1 (RFC 5639), the curve of CardContact's root CA (§6.9).
    BrainpoolP256r1,
}

/// The domain parameters of a curve, big-endian at the full field width, as the CV public-key
/// template (`7F49`) carries them: tags `81` prime, `82` a, `83` b, `84` generator (uncompressed
/// `04‖X‖Y`), `85` order, `87` cofactor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainParameters {
    /// The field prime p (tag `81`).
    pub prime: &'static [u8],
    /// The coefficient a (tag `82`).
    pub a: &'static [u8],
    /// The coefficient b (tag `83`).
    pub b: &'static [u8],
    /// The base point G, uncompressed `04‖X‖Y` (tag `84`).
    pub generator: &'static [u8],
    /// The order n of G (tag `85`).
    pub order: &'static [u8],
    /// The cofactor h (tag `87`), one byte `01` for every supported curve.
    pub cofactor: &'static [u8],
}

impl Curve {
    /// Every supported curve.
    pub const ALL: [Curve; 4] = [
        Curve::P256,
        Curve::P384,
        Curve::P521,
        Curve::BrainpoolP256r1,
    ];

    /// The size of a field element (and of the order) in bytes: 32, 48, 66, 32.
    pub const fn field_size(self) -> usize {
        match self {
            Curve::P256 | Curve::BrainpoolP256r1 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// The size of the field in bits: 256, 384, 521, 256.
    pub const fn field_bits(self) -> u16 {
        match self {
            Curve::P256 | Curve::BrainpoolP256r1 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    /// The bit length of the order n (equal to the field size in bits for these curves); ECDSA
    /// truncates a longer hash to this many leftmost bits (FIPS 186-4 §6.4).
    pub const fn order_bits(self) -> u16 {
        self.field_bits()
    }

    /// The length of an uncompressed point `04‖X‖Y`.
    pub const fn point_len(self) -> usize {
        1 + 2 * self.field_size()
    }

    /// The domain parameters as the SmartCard-HSM carries them in a CV public-key template.
    pub const fn domain_parameters(self) -> DomainParameters {
        match self {
            Curve::P256 => DomainParameters {
                prime: &P256_PRIME,
                a: &P256_A,
                b: &P256_B,
                generator: &P256_G,
                order: &P256_ORDER,
                cofactor: &[0x01],
            },
            Curve::P384 => DomainParameters {
                prime: &P384_PRIME,
                a: &P384_A,
                b: &P384_B,
                generator: &P384_G,
                order: &P384_ORDER,
                cofactor: &[0x01],
            },
            Curve::P521 => DomainParameters {
                prime: &P521_PRIME,
                a: &P521_A,
                b: &P521_B,
                generator: &P521_G,
                order: &P521_ORDER,
                cofactor: &[0x01],
            },
            Curve::BrainpoolP256r1 => DomainParameters {
                prime: &BP256_PRIME,
                a: &BP256_A,
                b: &BP256_B,
                generator: &BP256_G,
                order: &BP256_ORDER,
                cofactor: &[0x01],
            },
        }
    }

    /// The curve whose field prime is `prime` (big-endian; leading zero bytes are ignored), as a
    /// key-generation template or a wrapped key names it. `None` for any other prime.
    pub fn from_prime(prime: &[u8]) -> Option<Curve> {
        let prime = strip_leading_zeros(prime);
        Curve::ALL
            .into_iter()
            .find(|c| strip_leading_zeros(c.domain_parameters().prime) == prime)
    }

    /// The DER content of the curve's named-curve OID (RFC 5480 / RFC 5639), for hosts that
    /// describe keys in PKCS#15 or X.509 terms.
    pub const fn named_curve_oid(self) -> &'static [u8] {
        match self {
            // 1.2.840.10045.3.1.7
            Curve::P256 => &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
            // 1.3.132.0.34
            Curve::P384 => &[0x2B, 0x81, 0x04, 0x00, 0x22],
            // 1.3.132.0.35
            Curve::P521 => &[0x2B, 0x81, 0x04, 0x00, 0x23],
            // 1.3.36.3.3.2.8.1.1.7
            Curve::BrainpoolP256r1 => &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07],
        }
    }
}

/// `bytes` without its leading zero bytes (a big-endian integer's minimal form; empty for zero).
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Decodes a hex string at compile time (an invalid constant fails the build, never a run).
const fn hex<const N: usize>(s: &str) -> [u8; N] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a hex digit"),
        }
    }
    let s = s.as_bytes();
    assert!(s.len() == 2 * N, "hex constant has the wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (nibble(s[2 * i]) << 4) | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

// SEC 2 v2 §2.4.2 (secp256r1).
const P256_PRIME: [u8; 32] =
    hex("FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF");
const P256_A: [u8; 32] = hex("FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC");
const P256_B: [u8; 32] = hex("5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B");
const P256_G: [u8; 65] = hex(concat!(
    "04",
    "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296",
    "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5",
));
const P256_ORDER: [u8; 32] =
    hex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");

// SEC 2 v2 §2.5.1 (secp384r1).
const P384_PRIME: [u8; 48] = hex(concat!(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE",
    "FFFFFFFF0000000000000000FFFFFFFF",
));
const P384_A: [u8; 48] = hex(concat!(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE",
    "FFFFFFFF0000000000000000FFFFFFFC",
));
const P384_B: [u8; 48] = hex(concat!(
    "B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875A",
    "C656398D8A2ED19D2A85C8EDD3EC2AEF",
));
const P384_G: [u8; 97] = hex(concat!(
    "04",
    "AA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A38",
    "5502F25DBF55296C3A545E3872760AB7",
    "3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C0",
    "0A60B1CE1D7E819D7A431D7C90EA0E5F",
));
const P384_ORDER: [u8; 48] = hex(concat!(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF",
    "581A0DB248B0A77AECEC196ACCC52973",
));

// SEC 2 v2 §2.6.1 (secp521r1), 66 bytes wide.
const P521_PRIME: [u8; 66] = hex(concat!(
    "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
    "FFFF",
));
const P521_A: [u8; 66] = hex(concat!(
    "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
    "FFFC",
));
const P521_B: [u8; 66] = hex(concat!(
    "0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF1",
    "09E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B50",
    "3F00",
));
const P521_G: [u8; 133] = hex(concat!(
    "04",
    "00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D",
    "3DBAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5",
    "BD66",
    "011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E",
    "662C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD1",
    "6650",
));
const P521_ORDER: [u8; 66] = hex(concat!(
    "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
    "FFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E9138",
    "6409",
));

// RFC 5639 §3.4 (brainpoolP256r1); the same values as in sc-hsm-protocol.md §6.9.
const BP256_PRIME: [u8; 32] =
    hex("A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377");
const BP256_A: [u8; 32] = hex("7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9");
const BP256_B: [u8; 32] = hex("26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6");
const BP256_G: [u8; 65] = hex(concat!(
    "04",
    "8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262",
    "547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997",
));
const BP256_ORDER: [u8; 32] =
    hex("A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7");

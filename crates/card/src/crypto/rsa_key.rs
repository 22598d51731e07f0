//! RSA keys: generation, raw private operation, PKCS#1 v1.5 and PSS signatures, verification,
//! and the persistent record, on the `rsa` crate.

use super::{CryptoError, HashAlgorithm, KeySpec, PublicKey};
use rand_core::CryptoRngCore;
use rsa::{
    hazmat,
    pkcs1v15::Pkcs1v15Sign,
    pss::Pss,
    traits::{PrivateKeyParts, PublicKeyParts},
    BigUint, RsaPrivateKey, RsaPublicKey,
};
use zeroize::Zeroizing;

/// The public exponent of generated keys.
const PUBLIC_EXPONENT: u32 = 65_537;

pub(super) fn generate(
    bits: u16,
    rng: &mut impl CryptoRngCore,
) -> Result<RsaPrivateKey, CryptoError> {
    RsaPrivateKey::new_with_exp(rng, usize::from(bits), &BigUint::from(PUBLIC_EXPONENT))
        .map_err(|_| CryptoError::KeyGeneration("RSA"))
}

pub(super) fn bits(key: &RsaPrivateKey) -> u16 {
    u16::try_from(key.n().bits()).unwrap_or(u16::MAX)
}

pub(super) fn public_of(key: &impl PublicKeyParts) -> PublicKey {
    PublicKey::Rsa {
        modulus: key.n().to_bytes_be(),
        exponent: key.e().to_bytes_be(),
    }
}

/// A public key from big-endian modulus and exponent, with the checks of the `rsa` crate
/// (odd modulus, 2 < e < n, e odd, e ≤ 2^33 − 1) and a supported modulus size.
pub(super) fn public_key(modulus: &[u8], exponent: &[u8]) -> Result<RsaPublicKey, CryptoError> {
    let n = BigUint::from_bytes_be(modulus);
    let e = BigUint::from_bytes_be(exponent);
    let supported = u16::try_from(n.bits())
        .map(|bits| KeySpec::Rsa { bits }.is_supported())
        .unwrap_or(false);
    if !supported {
        return Err(CryptoError::InvalidPublicKey("modulus size not supported"));
    }
    RsaPublicKey::new(n, e).map_err(|_| CryptoError::InvalidPublicKey("bad modulus or exponent"))
}

fn left_pad(value: &[u8], len: usize) -> Vec<u8> {
    let value = super::curve::strip_leading_zeros(value);
    let mut out = vec![0u8; len.saturating_sub(value.len())];
    out.extend_from_slice(value);
    out
}

/// `input^d mod n` for SIGN `20` and DECIPHER `21`: the input is exactly modulus length and
/// below n; the result is left-padded to modulus length. Blinded when `rng` is given, and
/// checked by re-encrypting (the `rsa` crate's `rsa_decrypt_and_check`).
pub(super) fn raw_private<R: CryptoRngCore>(
    key: &RsaPrivateKey,
    input: &[u8],
    rng: Option<&mut R>,
) -> Result<Vec<u8>, CryptoError> {
    let len = key.size();
    if input.len() != len {
        return Err(CryptoError::InputLength {
            len: input.len(),
            expected: "the modulus length",
        });
    }
    let c = BigUint::from_bytes_be(input);
    if &c >= key.n() {
        return Err(CryptoError::InputNotBelowModulus);
    }
    let m = hazmat::rsa_decrypt_and_check(key, rng, &c)
        .map_err(|_| CryptoError::RsaOperation("raw private operation"))?;
    Ok(left_pad(&Zeroizing::new(m.to_bytes_be()), len))
}

fn pkcs1v15_scheme(hash: Option<HashAlgorithm>) -> Pkcs1v15Sign {
    match hash {
        None => Pkcs1v15Sign::new_unprefixed(),
        Some(HashAlgorithm::Sha1) => Pkcs1v15Sign::new::<sha1::Sha1>(),
        Some(HashAlgorithm::Sha224) => Pkcs1v15Sign::new::<sha2::Sha224>(),
        Some(HashAlgorithm::Sha256) => Pkcs1v15Sign::new::<sha2::Sha256>(),
        Some(HashAlgorithm::Sha384) => Pkcs1v15Sign::new::<sha2::Sha384>(),
        Some(HashAlgorithm::Sha512) => Pkcs1v15Sign::new::<sha2::Sha512>(),
    }
}

/// PSS with MGF1 over the same hash and a salt as long as the hash (§2.12).
fn pss_scheme(hash: HashAlgorithm) -> Pss {
    let salt = hash.output_len();
    match hash {
        HashAlgorithm::Sha1 => Pss::new_with_salt::<sha1::Sha1>(salt),
        HashAlgorithm::Sha224 => Pss::new_with_salt::<sha2::Sha224>(salt),
        HashAlgorithm::Sha256 => Pss::new_with_salt::<sha2::Sha256>(salt),
        HashAlgorithm::Sha384 => Pss::new_with_salt::<sha2::Sha384>(salt),
        HashAlgorithm::Sha512 => Pss::new_with_salt::<sha2::Sha512>(salt),
    }
}

/// PKCS#1 v1.5 (RFC 8017 §8.2.1). With `hash` the `rsa` crate prefixes the DigestInfo header of
/// that hash to `digest`; without, `digest` is a complete DigestInfo (SIGN `30`).
pub(super) fn sign_pkcs1v15(
    key: &RsaPrivateKey,
    hash: Option<HashAlgorithm>,
    digest: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CryptoError> {
    // RFC 8017 §9.2 step 3: the encoded message needs 11 bytes besides T.
    if hash.is_none() && digest.len() + 11 > key.size() {
        return Err(CryptoError::InputLength {
            len: digest.len(),
            expected: "a DigestInfo of at most modulus length - 11 bytes",
        });
    }
    let signature = key
        .sign_with_rng(rng, pkcs1v15_scheme(hash), digest)
        .map_err(|_| CryptoError::RsaOperation("PKCS#1 v1.5 signature"))?;
    Ok(left_pad(&signature, key.size()))
}

/// RSASSA-PSS (RFC 8017 §8.1.1) over `digest`, which has the hash's length.
pub(super) fn sign_pss(
    key: &RsaPrivateKey,
    hash: HashAlgorithm,
    digest: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CryptoError> {
    let signature = key
        .sign_with_rng(rng, pss_scheme(hash), digest)
        .map_err(|_| CryptoError::RsaOperation("PSS encoding does not fit the modulus"))?;
    Ok(left_pad(&signature, key.size()))
}

pub(super) fn verify_raw(
    key: &RsaPublicKey,
    input: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    if signature.len() != key.size() || input.len() != key.size() {
        return Err(CryptoError::BadSignature);
    }
    let s = BigUint::from_bytes_be(signature);
    if &s >= key.n() {
        return Err(CryptoError::BadSignature);
    }
    let m = hazmat::rsa_encrypt(key, &s).map_err(|_| CryptoError::BadSignature)?;
    if left_pad(&m.to_bytes_be(), key.size()) == input {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

pub(super) fn verify_pkcs1v15(
    key: &RsaPublicKey,
    hash: Option<HashAlgorithm>,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    key.verify(pkcs1v15_scheme(hash), digest, signature)
        .map_err(|_| CryptoError::BadSignature)
}

pub(super) fn verify_pss(
    key: &RsaPublicKey,
    hash: HashAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    key.verify(pss_scheme(hash), digest, signature)
        .map_err(|_| CryptoError::BadSignature)
}

/// Appends n, e, d, p, q, each as a 2-byte length and big-endian bytes.
pub(super) fn write_record(key: &RsaPrivateKey, out: &mut Vec<u8>) {
    // Every key of this crate has exactly two primes (generated, or validated on reading).
    let empty = BigUint::default();
    let (p, q) = match key.primes() {
        [p, q] => (p, q),
        _ => (&empty, &empty),
    };
    for part in [key.n(), key.e(), key.d(), p, q] {
        let bytes = Zeroizing::new(part.to_bytes_be());
        // At most 4096 bits, so the length fits in two bytes.
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
}

/// Reads what [`write_record`] wrote, checking that the parts form a supported key.
pub(super) fn read_record(mut body: &[u8]) -> Result<RsaPrivateKey, CryptoError> {
    let mut parts: Vec<Zeroizing<BigUint>> = Vec::with_capacity(5);
    for _ in 0..5 {
        let (value, rest) = take_u16_prefixed(body)
            .ok_or(CryptoError::MalformedKeyRecord("truncated RSA component"))?;
        parts.push(Zeroizing::new(BigUint::from_bytes_be(value)));
        body = rest;
    }
    if !body.is_empty() {
        return Err(CryptoError::MalformedKeyRecord("trailing bytes"));
    }
    let [n, e, d, p, q] = [&parts[0], &parts[1], &parts[2], &parts[3], &parts[4]];
    let bad = CryptoError::MalformedKeyRecord("inconsistent RSA components");
    check_sizes(n, e, d).map_err(|_| bad.clone())?;
    let one = BigUint::from(1u8);
    if **p <= one || **q <= one {
        return Err(bad);
    }
    // `from_components` validates: p·q = n, d·e ≡ 1 mod (p−1) and mod (q−1), e in range.
    RsaPrivateKey::from_components(
        (**n).clone(),
        (**e).clone(),
        (**d).clone(),
        vec![(**p).clone(), (**q).clone()],
    )
    .map_err(|_| bad)
}

/// A key from n, e, d alone (a wrapped key, §3.5), recovering p and q (NIST SP 800-56B
/// Appendix C.2, in the `rsa` crate).
pub(super) fn from_n_e_d(n: &[u8], e: &[u8], d: &[u8]) -> Result<RsaPrivateKey, CryptoError> {
    let n = BigUint::from_bytes_be(n);
    let e = BigUint::from_bytes_be(e);
    let d = Zeroizing::new(BigUint::from_bytes_be(d));
    check_sizes(&n, &e, &d)?;
    // The recovery needs 2^16 < e < 2^256; the `rsa` crate checks that and everything else.
    RsaPrivateKey::from_components(n, e, (*d).clone(), Vec::new())
        .map_err(|_| CryptoError::InvalidKeyData("RSA components do not form a key"))
}

/// The checks that keep the `rsa` crate's arithmetic away from degenerate values: a supported,
/// odd modulus; 1 < e < n; 0 < d < n.
fn check_sizes(n: &BigUint, e: &BigUint, d: &BigUint) -> Result<(), CryptoError> {
    let bad = CryptoError::InvalidKeyData("RSA components out of range");
    let bits = u16::try_from(n.bits()).map_err(|_| bad.clone())?;
    let one = BigUint::from(1u8);
    let n_odd = n.to_bytes_be().last().is_some_and(|b| b & 1 == 1);
    let supported = KeySpec::Rsa { bits }.is_supported();
    if !supported || !n_odd || *e <= one || e >= n || *d < one || d >= n {
        return Err(bad);
    }
    Ok(())
}

/// A 2-byte big-endian length and that many bytes: (value, rest).
pub(super) fn take_u16_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_at_checked(2)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    rest.split_at_checked(len)
}

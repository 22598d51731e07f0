//! DKEK key wrapping (WRAP KEY / UNWRAP KEY, sc-hsm-protocol.md §2.14, §2.15) in the blob format
//! of pico-hsm and pypicohsm (§3.5). Whether blobs of a real SmartCard-HSM are byte-compatible
//! is not verified by any source (§9 question 4).
//!
//! Blob: KCV (8) ‖ key type (1: `05` RSA, `0C` EC) ‖ algorithm OID (2-byte length + OID) ‖
//! allowed algorithms (2-byte length + list) ‖ access conditions (`00 00`) ‖ key OID (`00 00`) ‖
//! AES-256-CBC(Kenc, IV 0, 8 random bytes ‖ key data ‖ padding) ‖ AES-CMAC(Kmac, everything
//! before). KCV = SHA-256(DKEK)[0..8], Kenc = SHA-256(DKEK ‖ 00000001), Kmac = SHA-256(DKEK ‖
//! 00000002). The padding is `80 00…` up to the next 16-byte boundary and absent when the
//! plaintext is already aligned (as pico-hsm's `dkek_encode_key` does).
//!
//! Key data: RSA `bits(2) ‖ len(2) D ‖ len(2) N ‖ len(2) E`; EC `field bits(2)` then
//! length-prefixed a, b, p, order, G, d, Q. pico-hsm writes the field bits as 8 × the byte
//! length of p (528 for P-521); so does this module. Integers a, b, p, order, D, N, E are
//! written minimal (as mbedTLS's `mpi_size` does); G and Q uncompressed at field width; d at
//! field width. Unwrapping reads what pico-hsm reads: the curve from p (also checking a, b and
//! the order), d; G and Q are skipped (pico-hsm writes their coordinates minimal, so a leading
//! zero byte would make them malformed).

use super::curve::strip_leading_zeros;
use super::ec::EcSecret;
use super::rsa_key::{self, take_u16_prefixed};
use super::{CryptoError, Curve, Inner, PrivateKey};
use aes::cipher::{generic_array::GenericArray, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use cmac::{Cmac, Mac};
use rand_core::CryptoRngCore;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const KEY_TYPE_RSA: u8 = 0x05;
const KEY_TYPE_EC: u8 = 0x0C;
/// id-TA-RSA-v1-5-SHA-256 (BSI TR-03110), the algorithm OID of wrapped RSA keys.
const OID_RSA: &[u8] = &[0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01, 0x02];
/// id-TA-ECDSA-SHA-256 (BSI TR-03110), the algorithm OID of wrapped EC keys.
const OID_EC: &[u8] = &[0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02, 0x03];
const KCV_LEN: usize = 8;
const MAC_LEN: usize = 16;
const BLOCK: usize = 16;
const RANDOM_PREFIX: usize = 8;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// The key check value of a DKEK: the first 8 bytes of SHA-256(DKEK) (§3.5, §6.4).
pub fn kcv(dkek: &[u8; 32]) -> [u8; 8] {
    let digest = Sha256::digest(dkek);
    let mut out = [0u8; KCV_LEN];
    out.copy_from_slice(&digest[..KCV_LEN]);
    out
}

/// SHA-256(DKEK ‖ counter): Kenc with counter 1, Kmac with counter 2.
fn derive(dkek: &[u8; 32], counter: u32) -> Zeroizing<[u8; 32]> {
    let mut hasher = Sha256::new();
    hasher.update(dkek);
    hasher.update(counter.to_be_bytes());
    Zeroizing::new(hasher.finalize().into())
}

fn cmac(kmac: &[u8; 32], data: &[u8]) -> Cmac<aes::Aes256> {
    let mut mac = <Cmac<aes::Aes256> as Mac>::new(GenericArray::from_slice(kmac));
    mac.update(data);
    mac
}

/// Appends a 2-byte length and `value`; every caller passes at most 65535 bytes (key parts of
/// at most 4096 bits, the algorithm list cut in [`wrap`]).
fn push_u16_prefixed(out: &mut Vec<u8>, value: &[u8]) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value.get(..usize::from(len)).unwrap_or(value));
}

/// Wraps `key` under `dkek` (WRAP KEY, §2.14) with its allowed-algorithm list (empty for none).
///
/// The list has a 2-byte length in the blob; the card's lists are at most 16 bytes (§2.11), and
/// a longer one is cut at 65535 bytes.
pub fn wrap(
    dkek: &[u8; 32],
    key: &PrivateKey,
    allowed_algorithms: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let allowed_algorithms = allowed_algorithms
        .get(..usize::from(u16::MAX))
        .unwrap_or(allowed_algorithms);
    let mut plain = Zeroizing::new(vec![0u8; RANDOM_PREFIX]);
    rng.fill_bytes(&mut plain);
    let (key_type, oid) = match &key.0 {
        Inner::Rsa(k) => {
            plain.extend_from_slice(&(8 * k.size() as u16).to_be_bytes());
            push_u16_prefixed(&mut plain, &Zeroizing::new(k.d().to_bytes_be()));
            push_u16_prefixed(&mut plain, &k.n().to_bytes_be());
            push_u16_prefixed(&mut plain, &k.e().to_bytes_be());
            (KEY_TYPE_RSA, OID_RSA)
        }
        Inner::Ec(k) => {
            let params = k.curve().domain_parameters();
            let p = strip_leading_zeros(params.prime);
            plain.extend_from_slice(&(8 * p.len() as u16).to_be_bytes());
            push_u16_prefixed(&mut plain, strip_leading_zeros(params.a));
            push_u16_prefixed(&mut plain, strip_leading_zeros(params.b));
            push_u16_prefixed(&mut plain, p);
            push_u16_prefixed(&mut plain, strip_leading_zeros(params.order));
            push_u16_prefixed(&mut plain, params.generator);
            push_u16_prefixed(&mut plain, &k.scalar_bytes());
            push_u16_prefixed(&mut plain, &k.public_point());
            (KEY_TYPE_EC, OID_EC)
        }
    };
    if plain.len() % BLOCK != 0 {
        plain.push(0x80);
        let padded = plain.len().div_ceil(BLOCK) * BLOCK;
        plain.resize(padded, 0x00);
    }

    let mut blob = Vec::with_capacity(plain.len() + 64 + allowed_algorithms.len());
    blob.extend_from_slice(&kcv(dkek));
    blob.push(key_type);
    push_u16_prefixed(&mut blob, oid);
    push_u16_prefixed(&mut blob, allowed_algorithms);
    blob.extend_from_slice(&[0x00, 0x00]); // access conditions
    blob.extend_from_slice(&[0x00, 0x00]); // key OID

    let kenc = derive(dkek, 1);
    let mut encryptor = Aes256CbcEnc::new(
        GenericArray::from_slice(kenc.as_slice()),
        &GenericArray::default(),
    );
    for block in plain.chunks_exact_mut(BLOCK) {
        encryptor.encrypt_block_mut(GenericArray::from_mut_slice(block));
    }
    blob.extend_from_slice(&plain);

    let kmac = derive(dkek, 2);
    let tag = cmac(&kmac, &blob).finalize().into_bytes();
    blob.extend_from_slice(&tag);
    blob
}

/// Unwraps a blob made under `dkek` (UNWRAP KEY, §2.15): the key and its allowed-algorithm list.
///
/// Checks in this order: length, KCV, CMAC (constant-time), header, decryption, key data,
/// padding.
///
/// # Errors
/// [`CryptoError::MalformedBlob`] (truncated or inconsistent structure),
/// [`CryptoError::WrongKcv`], [`CryptoError::BadMac`], [`CryptoError::UnsupportedKeyType`],
/// [`CryptoError::InvalidKeyData`] (the decrypted data is not a valid key).
pub fn unwrap(dkek: &[u8; 32], blob: &[u8]) -> Result<(PrivateKey, Vec<u8>), CryptoError> {
    // KCV, type, four empty length fields, one block, MAC.
    const MIN_LEN: usize = KCV_LEN + 1 + 4 * 2 + BLOCK + MAC_LEN;
    if blob.len() < MIN_LEN {
        return Err(CryptoError::MalformedBlob("shorter than the smallest blob"));
    }
    if blob[..KCV_LEN] != kcv(dkek) {
        return Err(CryptoError::WrongKcv);
    }
    let (authenticated, tag) = blob.split_at(blob.len() - MAC_LEN);
    let kmac = derive(dkek, 2);
    cmac(&kmac, authenticated)
        .verify_slice(tag)
        .map_err(|_| CryptoError::BadMac)?;

    let key_type = authenticated[KCV_LEN];
    let truncated = CryptoError::MalformedBlob("header runs past the end");
    let rest = &authenticated[KCV_LEN + 1..];
    let (oid, rest) = take_u16_prefixed(rest).ok_or(truncated.clone())?;
    let (allowed, rest) = take_u16_prefixed(rest).ok_or(truncated.clone())?;
    let (_access_conditions, rest) = take_u16_prefixed(rest).ok_or(truncated.clone())?;
    let (_key_oid, encrypted) = take_u16_prefixed(rest).ok_or(truncated)?;
    let expected_oid = match key_type {
        KEY_TYPE_RSA => OID_RSA,
        KEY_TYPE_EC => OID_EC,
        other => return Err(CryptoError::UnsupportedKeyType(other)),
    };
    if oid != expected_oid {
        return Err(CryptoError::MalformedBlob(
            "algorithm OID does not fit the key type",
        ));
    }
    if encrypted.is_empty() || encrypted.len() % BLOCK != 0 {
        return Err(CryptoError::MalformedBlob(
            "encrypted key is not whole AES blocks",
        ));
    }

    let kenc = derive(dkek, 1);
    let mut plain = Zeroizing::new(encrypted.to_vec());
    let mut decryptor = Aes256CbcDec::new(
        GenericArray::from_slice(kenc.as_slice()),
        &GenericArray::default(),
    );
    for block in plain.chunks_exact_mut(BLOCK) {
        decryptor.decrypt_block_mut(GenericArray::from_mut_slice(block));
    }

    let invalid = |what| CryptoError::InvalidKeyData(what);
    let data = plain.get(RANDOM_PREFIX..).ok_or(invalid("no key data"))?;
    let (_size_bits, data) = data.split_at_checked(2).ok_or(invalid("no key size"))?;
    let mut fields: Vec<&[u8]> = Vec::with_capacity(7);
    let mut cursor = data;
    let count = if key_type == KEY_TYPE_RSA { 3 } else { 7 };
    for _ in 0..count {
        let (value, rest) =
            take_u16_prefixed(cursor).ok_or(invalid("key data runs past the end"))?;
        fields.push(value);
        cursor = rest;
    }
    check_padding(cursor)?;

    let key = if key_type == KEY_TYPE_RSA {
        let [d, n, e] = [fields[0], fields[1], fields[2]];
        PrivateKey::from_rsa(rsa_key::from_n_e_d(n, e, d)?)
    } else {
        let [a, b, p, order, _generator, d, _q] = [
            fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6],
        ];
        let curve = Curve::from_prime(p).ok_or(invalid("unknown curve"))?;
        let params = curve.domain_parameters();
        let same = |x: &[u8], y: &[u8]| strip_leading_zeros(x) == strip_leading_zeros(y);
        if !same(a, params.a) || !same(b, params.b) || !same(order, params.order) {
            return Err(invalid("domain parameters do not match the curve"));
        }
        let d = strip_leading_zeros(d);
        if d.len() > curve.field_size() {
            return Err(invalid("EC private scalar too long"));
        }
        let mut scalar = Zeroizing::new(vec![0u8; curve.field_size()]);
        scalar[curve.field_size() - d.len()..].copy_from_slice(d);
        PrivateKey::from_ec(EcSecret::from_scalar_bytes(curve, &scalar)?)
    };
    Ok((key, allowed.to_vec()))
}

/// What follows the key data: nothing (aligned), or `80` then zeros, less than a block.
fn check_padding(tail: &[u8]) -> Result<(), CryptoError> {
    let valid = match tail.split_first() {
        None => true,
        Some((&first, zeros)) => {
            first == 0x80 && tail.len() < BLOCK && zeros.iter().all(|&b| b == 0)
        }
    };
    if valid {
        Ok(())
    } else {
        Err(CryptoError::InvalidKeyData(
            "bad padding after the key data",
        ))
    }
}

//! EC keys on the four curves: generation, ECDSA on a hash, verification and ECDH.
//!
//! P-256, P-384 and P-521 use the RustCrypto crates of the elliptic-curve 0.13 generation through
//! one generic path (`v13`); brainpoolP256r1 uses bp256 0.14 (elliptic-curve 0.14, ecdsa 0.17,
//! `bp` below), because no correct brainpool arithmetic exists for 0.13 (see Cargo.toml).
//! Both paths use the ECDSA primitives of the `ecdsa` crate (`hazmat::sign_prehashed`,
//! `hazmat::verify_prehashed`) with a nonce drawn from the caller's generator.

use super::{CryptoError, Curve};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

/// How many candidates are drawn for a scalar (key or nonce) before giving up. A candidate is
/// rejected with probability below 1/2 on every curve, so 64 failures in a row do not happen
/// with a working generator.
const MAX_DRAWS: usize = 64;

#[derive(Clone)]
pub(super) enum EcSecret {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    P521(p521::SecretKey),
    Bp256(bp256::r1::SecretKey),
}

impl EcSecret {
    pub(super) fn generate(
        curve: Curve,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, CryptoError> {
        // Draw the scalar from `rng` the same way for every curve: candidates of the order's bit
        // length, rejected unless 0 < d < n (FIPS 186-4 B.4.2, "testing candidates").
        let excess_bits = curve.field_size() * 8 - usize::from(curve.order_bits());
        for _ in 0..MAX_DRAWS {
            let mut candidate = Zeroizing::new(vec![0u8; curve.field_size()]);
            rng.fill_bytes(&mut candidate);
            if let Some(first) = candidate.first_mut() {
                *first &= 0xFF >> excess_bits;
            }
            if let Ok(key) = Self::from_scalar_bytes(curve, &candidate) {
                return Ok(key);
            }
        }
        Err(CryptoError::RandomExhausted("EC private scalar"))
    }

    /// The key with this private scalar (exactly field width; 0 < d < n).
    pub(super) fn from_scalar_bytes(curve: Curve, d: &[u8]) -> Result<Self, CryptoError> {
        let bad = CryptoError::InvalidKeyData("EC private scalar out of range");
        if d.len() != curve.field_size() {
            return Err(CryptoError::InvalidKeyData(
                "EC private scalar has the wrong length",
            ));
        }
        Ok(match curve {
            Curve::P256 => EcSecret::P256(p256::SecretKey::from_slice(d).map_err(|_| bad.clone())?),
            Curve::P384 => EcSecret::P384(p384::SecretKey::from_slice(d).map_err(|_| bad.clone())?),
            Curve::P521 => EcSecret::P521(p521::SecretKey::from_slice(d).map_err(|_| bad.clone())?),
            Curve::BrainpoolP256r1 => {
                EcSecret::Bp256(bp256::r1::SecretKey::from_slice(d).map_err(|_| bad.clone())?)
            }
        })
    }

    pub(super) fn curve(&self) -> Curve {
        match self {
            EcSecret::P256(_) => Curve::P256,
            EcSecret::P384(_) => Curve::P384,
            EcSecret::P521(_) => Curve::P521,
            EcSecret::Bp256(_) => Curve::BrainpoolP256r1,
        }
    }

    /// The private scalar, big-endian at field width.
    pub(super) fn scalar_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            EcSecret::P256(k) => k.to_bytes().to_vec(),
            EcSecret::P384(k) => k.to_bytes().to_vec(),
            EcSecret::P521(k) => k.to_bytes().to_vec(),
            EcSecret::Bp256(k) => k.to_bytes().to_vec(),
        })
    }

    /// The public point, uncompressed `04‖X‖Y`.
    pub(super) fn public_point(&self) -> Vec<u8> {
        match self {
            EcSecret::P256(k) => v13::public_point(k),
            EcSecret::P384(k) => v13::public_point(k),
            EcSecret::P521(k) => v13::public_point(k),
            EcSecret::Bp256(k) => bp::public_point(k),
        }
    }

    /// ECDSA over `hash` (any non-zero length): plain `r‖s`, each half at field width.
    pub(super) fn sign_hash(
        &self,
        hash: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CryptoError> {
        let z = bits2int(self.curve(), hash)?;
        match self {
            EcSecret::P256(k) => v13::sign(k, &z, rng),
            EcSecret::P384(k) => v13::sign(k, &z, rng),
            EcSecret::P521(k) => v13::sign(k, &z, rng),
            EcSecret::Bp256(k) => bp::sign(k, &z, rng),
        }
    }

    /// The shared point `d × peer`, uncompressed `04‖X‖Y`.
    pub(super) fn ecdh(&self, peer: &[u8]) -> Result<Vec<u8>, CryptoError> {
        check_uncompressed(self.curve(), peer)?;
        match self {
            EcSecret::P256(k) => v13::ecdh(k, peer),
            EcSecret::P384(k) => v13::ecdh(k, peer),
            EcSecret::P521(k) => v13::ecdh(k, peer),
            EcSecret::Bp256(k) => bp::ecdh(k, peer),
        }
    }
}

/// Checks that `point` is an uncompressed point on `curve` (not the identity).
pub(super) fn validate_point(curve: Curve, point: &[u8]) -> Result<(), CryptoError> {
    check_uncompressed(curve, point)?;
    let valid = match curve {
        Curve::P256 => p256::PublicKey::from_sec1_bytes(point).is_ok(),
        Curve::P384 => p384::PublicKey::from_sec1_bytes(point).is_ok(),
        Curve::P521 => p521::PublicKey::from_sec1_bytes(point).is_ok(),
        Curve::BrainpoolP256r1 => {
            bp256::elliptic_curve::PublicKey::<bp256::BrainpoolP256r1>::from_sec1_bytes(point)
                .is_ok()
        }
    };
    if valid {
        Ok(())
    } else {
        Err(CryptoError::InvalidPoint)
    }
}

/// Verifies plain `r‖s` over `hash` (any non-zero length) with the public point.
pub(super) fn verify_hash(
    curve: Curve,
    point: &[u8],
    hash: &[u8],
    rs: &[u8],
) -> Result<(), CryptoError> {
    check_uncompressed(curve, point)?;
    if rs.len() != 2 * curve.field_size() {
        return Err(CryptoError::BadSignature);
    }
    let z = bits2int(curve, hash)?;
    match curve {
        Curve::P256 => v13::verify::<p256::NistP256>(point, &z, rs),
        Curve::P384 => v13::verify::<p384::NistP384>(point, &z, rs),
        Curve::P521 => v13::verify::<p521::NistP521>(point, &z, rs),
        Curve::BrainpoolP256r1 => bp::verify(point, &z, rs),
    }
}

fn check_uncompressed(curve: Curve, point: &[u8]) -> Result<(), CryptoError> {
    if point.len() == curve.point_len() && point.first() == Some(&0x04) {
        Ok(())
    } else {
        Err(CryptoError::InvalidPoint)
    }
}

/// The hash as an integer for ECDSA, big-endian at field width: the leftmost `order_bits` bits
/// of `hash` when it is longer (FIPS 186-4 §6.4; SEC 1 §4.1.3 step 5), else `hash` itself,
/// zero-extended on the left. The signing primitive reduces it mod n.
fn bits2int(curve: Curve, hash: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if hash.is_empty() {
        return Err(CryptoError::InputLength {
            len: 0,
            expected: "a non-empty hash",
        });
    }
    let n_bits = usize::from(curve.order_bits());
    let width = curve.field_size();
    let mut z = vec![0u8; width];
    if hash.len() * 8 <= n_bits {
        z[width - hash.len()..].copy_from_slice(hash);
    } else {
        // Keep ceil(n_bits / 8) leading bytes, then drop the excess low bits.
        z.copy_from_slice(&hash[..width]);
        let shift = width * 8 - n_bits;
        if shift > 0 {
            let mut carry = 0u8;
            for byte in z.iter_mut() {
                let next = *byte << (8 - shift);
                *byte = (*byte >> shift) | carry;
                carry = next;
            }
        }
    }
    Ok(z)
}

/// P-256, P-384 and P-521 through the generic code of elliptic-curve 0.13 and ecdsa 0.16.
mod v13 {
    use super::{CryptoError, MAX_DRAWS};
    use ecdsa::{hazmat, Signature, SignatureSize};
    use elliptic_curve::{
        generic_array::{ArrayLength, GenericArray},
        group::Curve as _,
        sec1::{FromEncodedPoint, ModulusSize, ToEncodedPoint},
        AffinePoint, CurveArithmetic, FieldBytesSize, NonZeroScalar, PrimeCurve, PublicKey,
        SecretKey,
    };
    use rand_core::CryptoRngCore;
    use zeroize::Zeroizing;

    pub(super) fn public_point<C>(key: &SecretKey<C>) -> Vec<u8>
    where
        C: CurveArithmetic,
        AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
        FieldBytesSize<C>: ModulusSize,
    {
        key.public_key().to_encoded_point(false).as_bytes().to_vec()
    }

    pub(super) fn sign<C>(
        key: &SecretKey<C>,
        z: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CryptoError>
    where
        C: PrimeCurve + CurveArithmetic,
        SignatureSize<C>: ArrayLength<u8>,
    {
        let z =
            GenericArray::from_exact_iter(z.iter().copied()).ok_or(CryptoError::InputLength {
                len: z.len(),
                expected: "field width",
            })?;
        let d = Zeroizing::new(*key.to_nonzero_scalar());
        for _ in 0..MAX_DRAWS {
            let k = Zeroizing::new(*NonZeroScalar::<C>::random(&mut *rng));
            // Fails only when r or s is zero; a fresh nonce then.
            if let Ok((signature, _)) = hazmat::sign_prehashed::<C, _>(&d, *k, &z) {
                return Ok(signature.to_bytes().to_vec());
            }
        }
        Err(CryptoError::RandomExhausted("ECDSA nonce"))
    }

    pub(super) fn verify<C>(point: &[u8], z: &[u8], rs: &[u8]) -> Result<(), CryptoError>
    where
        C: PrimeCurve + CurveArithmetic,
        AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
        FieldBytesSize<C>: ModulusSize,
        SignatureSize<C>: ArrayLength<u8>,
    {
        let key = PublicKey::<C>::from_sec1_bytes(point).map_err(|_| CryptoError::InvalidPoint)?;
        let signature = Signature::<C>::from_slice(rs).map_err(|_| CryptoError::BadSignature)?;
        let z =
            GenericArray::from_exact_iter(z.iter().copied()).ok_or(CryptoError::BadSignature)?;
        hazmat::verify_prehashed::<C>(&key.to_projective(), &z, &signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    pub(super) fn ecdh<C>(key: &SecretKey<C>, peer: &[u8]) -> Result<Vec<u8>, CryptoError>
    where
        C: CurveArithmetic,
        AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
        FieldBytesSize<C>: ModulusSize,
    {
        let peer = PublicKey::<C>::from_sec1_bytes(peer).map_err(|_| CryptoError::InvalidPoint)?;
        let d = Zeroizing::new(*key.to_nonzero_scalar());
        let shared = (peer.to_projective() * *d)
            .to_affine()
            .to_encoded_point(false);
        if shared.is_identity() {
            return Err(CryptoError::InvalidPoint);
        }
        Ok(shared.as_bytes().to_vec())
    }
}

/// brainpoolP256r1 through bp256 0.14 (elliptic-curve 0.14, ecdsa 0.17).
mod bp {
    use super::{CryptoError, MAX_DRAWS};
    use bp256::elliptic_curve::{sec1::ToSec1Point, NonZeroScalar, PublicKey};
    use bp256::BrainpoolP256r1 as C;
    use ecdsa_017::{hazmat, Signature};
    use rand_core::CryptoRngCore;
    use zeroize::Zeroizing;

    type SecretKey = bp256::r1::SecretKey;

    pub(super) fn public_point(key: &SecretKey) -> Vec<u8> {
        key.public_key().to_sec1_point(false).as_bytes().to_vec()
    }

    pub(super) fn sign(
        key: &SecretKey,
        z: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CryptoError> {
        let d = key.to_nonzero_scalar();
        for _ in 0..MAX_DRAWS {
            let mut candidate = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(candidate.as_mut_slice());
            let Some(k) = NonZeroScalar::<C>::from_repr((*candidate).into()).into_option() else {
                continue;
            };
            if let Ok((signature, _)) = hazmat::sign_prehashed::<C>(&d, &k, z) {
                return Ok(signature.to_bytes().to_vec());
            }
        }
        Err(CryptoError::RandomExhausted("ECDSA nonce"))
    }

    pub(super) fn verify(point: &[u8], z: &[u8], rs: &[u8]) -> Result<(), CryptoError> {
        let key = PublicKey::<C>::from_sec1_bytes(point).map_err(|_| CryptoError::InvalidPoint)?;
        let signature = Signature::<C>::from_slice(rs).map_err(|_| CryptoError::BadSignature)?;
        hazmat::verify_prehashed::<C>(&key.to_projective(), z, &signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    pub(super) fn ecdh(key: &SecretKey, peer: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let peer = PublicKey::<C>::from_sec1_bytes(peer).map_err(|_| CryptoError::InvalidPoint)?;
        let d = key.to_nonzero_scalar();
        let shared = (peer.to_projective() * *d).to_affine().to_sec1_point(false);
        if shared.is_identity() {
            return Err(CryptoError::InvalidPoint);
        }
        Ok(shared.as_bytes().to_vec())
    }
}

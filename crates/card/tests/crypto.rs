//! The virtual card's cryptography against independent verifiers: every signature is checked by
//! the RustCrypto verifying APIs (or by plain modular arithmetic for raw RSA), every ECDH result
//! by the peer's own computation, and the DKEK format by a blob built here from §3.5's text.

use std::sync::OnceLock;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rsa::{traits::PublicKeyParts, BigUint, RsaPublicKey};
use tessera_card::crypto::{
    decipher_raw, ecdh, ecdsa_der_to_plain, ecdsa_plain_to_der, kcv, sign, unwrap, verify, wrap,
    CryptoError, Curve, EcdhResultForm, HashAlgorithm, KeySpec, PrivateKey, PublicKey,
    SignAlgorithm,
};

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The one RSA-2048 key of this file (generation is the slow part), and how long it took.
fn rsa2048() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let start = Instant::now();
        let key = PrivateKey::generate(KeySpec::Rsa { bits: 2048 }, &mut rng(20)).unwrap();
        eprintln!("RSA-2048 key generation: {:?}", start.elapsed());
        key
    })
}

fn ec_key(curve: Curve) -> PrivateKey {
    PrivateKey::generate(KeySpec::Ec(curve), &mut rng(curve as u8 + 1)).unwrap()
}

fn rsa_public(key: &PrivateKey) -> RsaPublicKey {
    match key.public() {
        PublicKey::Rsa { modulus, exponent } => RsaPublicKey::new(
            BigUint::from_bytes_be(&modulus),
            BigUint::from_bytes_be(&exponent),
        )
        .unwrap(),
        other => panic!("not RSA: {other:?}"),
    }
}

fn ec_point(key: &PrivateKey) -> Vec<u8> {
    match key.public() {
        PublicKey::Ec { point, .. } => point,
        other => panic!("not EC: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Curves

/// A big-endian integer as a BigUint (num-bigint-dig, via the rsa crate).
fn int(bytes: &[u8]) -> BigUint {
    BigUint::from_bytes_be(bytes)
}

#[test]
fn domain_parameters_are_the_curves_of_the_rustcrypto_crates() {
    use elliptic_curve::{group::Group, sec1::ToEncodedPoint};
    let generator_13 = |curve: Curve| -> Vec<u8> {
        match curve {
            Curve::P256 => p256::AffinePoint::from(p256::ProjectivePoint::generator())
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            Curve::P384 => p384::AffinePoint::from(p384::ProjectivePoint::generator())
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            Curve::P521 => p521::AffinePoint::from(p521::ProjectivePoint::generator())
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            Curve::BrainpoolP256r1 => {
                use bp256::elliptic_curve::{group::Group as _, sec1::ToSec1Point};
                bp256::r1::ProjectivePoint::generator()
                    .to_affine()
                    .to_sec1_point(false)
                    .as_bytes()
                    .to_vec()
            }
        }
    };
    let order_13 = |curve: Curve| -> Vec<u8> {
        use elliptic_curve::bigint::Encoding;
        use elliptic_curve::Curve as _;
        match curve {
            Curve::P256 => p256::NistP256::ORDER.to_be_bytes().to_vec(),
            Curve::P384 => p384::NistP384::ORDER.to_be_bytes().to_vec(),
            Curve::P521 => p521::NistP521::ORDER.to_be_bytes().to_vec(),
            Curve::BrainpoolP256r1 => {
                use bp256::elliptic_curve::Curve as _;
                bp256::BrainpoolP256r1::ORDER.to_be_bytes().to_vec()
            }
        }
    };
    for curve in Curve::ALL {
        let d = curve.domain_parameters();
        let fs = curve.field_size();
        for value in [d.prime, d.a, d.b, d.order] {
            assert_eq!(value.len(), fs, "{curve:?}");
        }
        assert_eq!(d.generator, generator_13(curve), "{curve:?} generator");
        assert_eq!(int(d.order), int(&order_13(curve)), "{curve:?} order");
        assert_eq!(d.cofactor, [0x01]);
        // G lies on y² = x³ + ax + b mod p.
        let (p, a, b) = (int(d.prime), int(d.a), int(d.b));
        let x = int(&d.generator[1..1 + fs]);
        let y = int(&d.generator[1 + fs..]);
        let lhs = (&y * &y) % &p;
        let rhs = (&x * &x * &x + &a * &x + &b) % &p;
        assert_eq!(lhs, rhs, "{curve:?} curve equation");
        assert_eq!(
            p.bits(),
            usize::from(curve.field_bits()),
            "{curve:?} field bits"
        );
        assert_eq!(Curve::from_prime(d.prime), Some(curve));
        let mut padded = vec![0, 0];
        padded.extend_from_slice(d.prime);
        assert_eq!(
            Curve::from_prime(&padded),
            Some(curve),
            "leading zeros ignored"
        );
    }
    assert_eq!(Curve::from_prime(&[0xFF; 32]), None);
    assert_eq!(Curve::from_prime(&[]), None);
}

#[test]
fn brainpool_parameters_are_those_of_the_cardcontact_root_certificate() {
    // §6.9, tags 81..87 of the root CA's public key.
    let d = Curve::BrainpoolP256r1.domain_parameters();
    assert_eq!(
        hex(d.prime),
        "A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377"
    );
    assert_eq!(
        hex(d.a),
        "7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9"
    );
    assert_eq!(
        hex(d.b),
        "26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6"
    );
    assert_eq!(
        hex(d.order),
        "A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7"
    );
}

// ---------------------------------------------------------------------------------------------
// Algorithm bytes

#[test]
fn sign_algorithm_bytes_round_trip_and_follow_the_table() {
    for b in 0..=255u8 {
        assert_eq!(SignAlgorithm::from_p2(b).p2(), b);
        assert_eq!(u8::from(SignAlgorithm::from(b)), b);
    }
    use HashAlgorithm::*;
    let table = [
        (0x20, SignAlgorithm::RsaRaw),
        (0x30, SignAlgorithm::RsaPkcs1v15DigestInfo),
        (0x31, SignAlgorithm::RsaPkcs1v15(Sha1)),
        (0x32, SignAlgorithm::RsaPkcs1v15(Sha224)),
        (0x33, SignAlgorithm::RsaPkcs1v15(Sha256)),
        (0x34, SignAlgorithm::RsaPkcs1v15(Sha384)),
        (0x35, SignAlgorithm::RsaPkcs1v15(Sha512)),
        (0x40, SignAlgorithm::RsaPssPrehashed),
        (0x41, SignAlgorithm::RsaPss(Sha1)),
        (0x45, SignAlgorithm::RsaPss(Sha512)),
        (0x70, SignAlgorithm::EcdsaPrehashed),
        (0x71, SignAlgorithm::Ecdsa(Sha1)),
        (0x72, SignAlgorithm::Ecdsa(Sha224)),
        (0x73, SignAlgorithm::Ecdsa(Sha256)),
        (0x75, SignAlgorithm::Ecdsa(Sha512)),
        (0x21, SignAlgorithm::Unknown(0x21)), // DECIPHER only
        (0x80, SignAlgorithm::Unknown(0x80)), // ECDH, DECIPHER only
        (0x36, SignAlgorithm::Unknown(0x36)),
    ];
    for (b, alg) in table {
        assert_eq!(SignAlgorithm::from_p2(b), alg, "{b:#04x}");
    }
}

// ---------------------------------------------------------------------------------------------
// ECDSA

/// Verifies a DER signature over `hash` with RustCrypto's own verifiers.
fn verify_ecdsa_independently(curve: Curve, point: &[u8], hash: &[u8], der: &[u8]) {
    use ecdsa::signature::hazmat::PrehashVerifier;
    // ecdsa 0.16's verify_prehash wants at least half the field size; shorter hashes go through
    // its hazmat primitive with the hash zero-extended on the left (FIPS 186-4 §6.4).
    let short = hash.len() < curve.field_size() / 2;
    match curve {
        Curve::P256 => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            let sig = p256::ecdsa::Signature::from_der(der).unwrap();
            vk.verify_prehash(hash, &sig).unwrap();
        }
        Curve::P384 if short => {
            let q = p384::PublicKey::from_sec1_bytes(point).unwrap();
            let sig = p384::ecdsa::Signature::from_der(der).unwrap();
            let mut z = p384::FieldBytes::default();
            z[48 - hash.len()..].copy_from_slice(hash);
            ecdsa::hazmat::verify_prehashed(&q.to_projective(), &z, &sig).unwrap();
        }
        Curve::P384 => {
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            let sig = p384::ecdsa::Signature::from_der(der).unwrap();
            vk.verify_prehash(hash, &sig).unwrap();
        }
        Curve::P521 if short => {
            let q = p521::PublicKey::from_sec1_bytes(point).unwrap();
            let sig = p521::ecdsa::Signature::from_der(der).unwrap();
            let mut z = p521::FieldBytes::default();
            z[66 - hash.len()..].copy_from_slice(hash);
            ecdsa::hazmat::verify_prehashed(&q.to_projective(), &z, &sig).unwrap();
        }
        Curve::P521 => {
            let vk = p521::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            let sig = p521::ecdsa::Signature::from_der(der).unwrap();
            vk.verify_prehash(hash, &sig).unwrap();
        }
        Curve::BrainpoolP256r1 => {
            use ecdsa_017::signature::hazmat::PrehashVerifier as _;
            let vk =
                ecdsa_017::VerifyingKey::<bp256::BrainpoolP256r1>::from_sec1_bytes(point).unwrap();
            let sig = ecdsa_017::der::Signature::<bp256::BrainpoolP256r1>::from_bytes(der).unwrap();
            vk.verify_prehash(hash, &sig).unwrap();
        }
    }
}

#[test]
fn ecdsa_on_every_curve_and_hash_verifies_independently() {
    let message = b"Tessera virtual SmartCard-HSM";
    for curve in Curve::ALL {
        let key = ec_key(curve);
        let point = ec_point(&key);
        assert_eq!(point.len(), curve.point_len());
        let mut r = rng(99);
        for h in HashAlgorithm::ALL {
            // On-card hash (71..75).
            let der = sign(&key, SignAlgorithm::Ecdsa(h), message, &mut r).unwrap();
            assert_eq!(der[0], 0x30, "DER SEQUENCE");
            verify_ecdsa_independently(curve, &point, &h.digest(message), &der);
            // The same hash computed by the host (70).
            let hash = h.digest(b"hashed by the host");
            let der = sign(&key, SignAlgorithm::EcdsaPrehashed, &hash, &mut r).unwrap();
            verify_ecdsa_independently(curve, &point, &hash, &der);
            // And our own verifier agrees.
            verify(&key.public(), SignAlgorithm::EcdsaPrehashed, &hash, &der).unwrap();
        }
    }
}

#[test]
fn ecdsa_truncates_a_hash_longer_than_the_order_to_its_leftmost_bits() {
    // P-521: 80 bytes of input; the signed integer is the leftmost 521 bits (FIPS 186-4 §6.4).
    let key = ec_key(Curve::P521);
    let input: Vec<u8> = (0..80u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(200))
        .collect();
    let der = sign(&key, SignAlgorithm::EcdsaPrehashed, &input, &mut rng(3)).unwrap();
    // z = int(input[..66]) >> 7, computed with big integers.
    let z = int(&input[..66]) >> 7usize;
    let mut field = p521::FieldBytes::default();
    let zb = z.to_bytes_be();
    field[66 - zb.len()..].copy_from_slice(&zb);
    let q = p521::PublicKey::from_sec1_bytes(&ec_point(&key)).unwrap();
    let sig = p521::ecdsa::Signature::from_der(&der).unwrap();
    ecdsa::hazmat::verify_prehashed(&q.to_projective(), &field, &sig).unwrap();

    // P-256 and brainpool with a SHA-512 hash: the leftmost 32 bytes, as RustCrypto does.
    for curve in [Curve::P256, Curve::BrainpoolP256r1] {
        let key = ec_key(curve);
        let hash = HashAlgorithm::Sha512.digest(b"long");
        let der = sign(&key, SignAlgorithm::EcdsaPrehashed, &hash, &mut rng(4)).unwrap();
        verify_ecdsa_independently(curve, &ec_point(&key), &hash, &der);
    }
}

#[test]
fn ecdsa_rejects_bad_input_with_typed_errors() {
    let key = ec_key(Curve::P256);
    let mut r = rng(5);
    assert_eq!(
        sign(&key, SignAlgorithm::EcdsaPrehashed, &[], &mut r),
        Err(CryptoError::InputLength {
            len: 0,
            expected: "a non-empty hash"
        })
    );
    for alg in [0x20u8, 0x30, 0x33, 0x40, 0x43] {
        let alg = SignAlgorithm::from_p2(alg);
        assert_eq!(
            sign(&key, alg, &[0; 32], &mut r),
            Err(CryptoError::AlgorithmKeyMismatch {
                algorithm: alg,
                key: KeySpec::Ec(Curve::P256)
            })
        );
    }
    assert_eq!(
        sign(&key, SignAlgorithm::Unknown(0x21), &[0; 32], &mut r),
        Err(CryptoError::UnknownAlgorithm(0x21))
    );
    assert!(matches!(
        decipher_raw(&key, &[0; 32]),
        Err(CryptoError::WrongKeyType { .. })
    ));
    // A tampered signature fails our verifier.
    let hash = [7u8; 32];
    let mut der = sign(&key, SignAlgorithm::EcdsaPrehashed, &hash, &mut r).unwrap();
    let last = der.len() - 1;
    der[last] ^= 1;
    assert_eq!(
        verify(&key.public(), SignAlgorithm::EcdsaPrehashed, &hash, &der),
        Err(CryptoError::BadSignature)
    );
}

#[test]
fn ecdsa_der_and_plain_forms_convert_both_ways() {
    // r with the high bit set gets a 00; s with leading zeros is made minimal.
    let mut plain = vec![0x80; 32];
    plain.extend_from_slice(&[0x00; 31]);
    plain.push(0x05);
    let der = ecdsa_plain_to_der(&plain).unwrap();
    assert_eq!(hex(&der[..6]), "302602210080");
    assert_eq!(hex(&der[der.len() - 3..]), "020105");
    assert_eq!(ecdsa_der_to_plain(&der, 32).unwrap(), plain);
    // P-521 needs the long length form.
    let plain = vec![0xFF; 132];
    let der = ecdsa_plain_to_der(&plain).unwrap();
    assert_eq!(hex(&der[..3]), "30818A");
    assert_eq!(ecdsa_der_to_plain(&der, 66).unwrap(), plain);
    // Malformed DER.
    for bad in [
        "",
        "30",
        "3000",
        "300602010102",
        "3006020101020101FF",
        "30060201810201 01",
    ] {
        assert_eq!(
            ecdsa_der_to_plain(&unhex(bad), 32),
            Err(CryptoError::BadSignature),
            "{bad}"
        );
    }
    assert!(ecdsa_plain_to_der(&[1, 2, 3]).is_err());
    assert!(ecdsa_plain_to_der(&[]).is_err());
}

// ---------------------------------------------------------------------------------------------
// ECDH

#[test]
fn ecdh_agrees_with_the_peer_on_every_curve() {
    use elliptic_curve::sec1::ToEncodedPoint;
    for curve in Curve::ALL {
        let key = ec_key(curve);
        let our_point = ec_point(&key);
        let mut r = rng(50);
        // The peer computes d_peer × our point with its own crate.
        let (peer_point, expected) = match curve {
            Curve::P256 => {
                let peer = p256::SecretKey::random(&mut r);
                let ours = p256::PublicKey::from_sec1_bytes(&our_point).unwrap();
                let shared = (ours.to_projective() * *peer.to_nonzero_scalar()).to_affine();
                (
                    peer.public_key()
                        .to_encoded_point(false)
                        .as_bytes()
                        .to_vec(),
                    shared.to_encoded_point(false).as_bytes().to_vec(),
                )
            }
            Curve::P384 => {
                let peer = p384::SecretKey::random(&mut r);
                let ours = p384::PublicKey::from_sec1_bytes(&our_point).unwrap();
                let shared = (ours.to_projective() * *peer.to_nonzero_scalar()).to_affine();
                (
                    peer.public_key()
                        .to_encoded_point(false)
                        .as_bytes()
                        .to_vec(),
                    shared.to_encoded_point(false).as_bytes().to_vec(),
                )
            }
            Curve::P521 => {
                let peer = p521::SecretKey::random(&mut r);
                let ours = p521::PublicKey::from_sec1_bytes(&our_point).unwrap();
                let shared = (ours.to_projective() * *peer.to_nonzero_scalar()).to_affine();
                (
                    peer.public_key()
                        .to_encoded_point(false)
                        .as_bytes()
                        .to_vec(),
                    shared.to_encoded_point(false).as_bytes().to_vec(),
                )
            }
            Curve::BrainpoolP256r1 => {
                use bp256::elliptic_curve::sec1::ToSec1Point;
                let mut bytes = [0u8; 32];
                r.fill_bytes(&mut bytes);
                bytes[0] &= 0x7F; // below the order
                let peer = bp256::r1::SecretKey::from_slice(&bytes).unwrap();
                let ours =
                    bp256::elliptic_curve::PublicKey::<bp256::BrainpoolP256r1>::from_sec1_bytes(
                        &our_point,
                    )
                    .unwrap();
                let shared = (ours.to_projective() * *peer.to_nonzero_scalar()).to_affine();
                (
                    peer.public_key().to_sec1_point(false).as_bytes().to_vec(),
                    shared.to_sec1_point(false).as_bytes().to_vec(),
                )
            }
        };
        let full = ecdh(&key, &peer_point, EcdhResultForm::FullPoint).unwrap();
        assert_eq!(full, expected, "{curve:?}");
        let x_only = ecdh(&key, &peer_point, EcdhResultForm::XOnly).unwrap();
        assert_eq!(x_only, expected[..1 + curve.field_size()], "{curve:?}");
        assert_eq!(x_only[0], 0x04);
    }
    // And against RustCrypto's ECDH function for P-256: the x-coordinate is the shared secret.
    let key = ec_key(Curve::P256);
    let peer = p256::SecretKey::random(&mut rng(51));
    let ours = p256::PublicKey::from_sec1_bytes(&ec_point(&key)).unwrap();
    let secret = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), ours.as_affine());
    let peer_point = peer.public_key().to_encoded_point(false);
    let x_only = ecdh(&key, peer_point.as_bytes(), EcdhResultForm::XOnly).unwrap();
    assert_eq!(&x_only[1..], secret.raw_secret_bytes().as_slice());
}

#[test]
fn ecdh_rejects_points_that_are_not_uncompressed_points_on_the_curve() {
    let key = ec_key(Curve::P256);
    let good = ec_point(&ec_key(Curve::P256));
    let mut off_curve = good.clone();
    off_curve[64] ^= 1;
    let mut compressed = vec![0x02 | (good[64] & 1)];
    compressed.extend_from_slice(&good[1..33]);
    let brainpool = ec_point(&ec_key(Curve::BrainpoolP256r1));
    let p384 = ec_point(&ec_key(Curve::P384));
    let identity = vec![0x00];
    for bad in [
        off_curve,
        compressed,
        p384,
        identity,
        vec![],
        good[..64].to_vec(),
        brainpool,
    ] {
        assert_eq!(
            ecdh(&key, &bad, EcdhResultForm::XOnly),
            Err(CryptoError::InvalidPoint),
            "{}",
            hex(&bad)
        );
    }
    assert!(matches!(
        ecdh(rsa2048(), &good, EcdhResultForm::XOnly),
        Err(CryptoError::WrongKeyType { .. })
    ));
    assert_eq!(
        PublicKey::ec(Curve::P256, &good).unwrap().spec(),
        KeySpec::Ec(Curve::P256)
    );
    assert_eq!(
        PublicKey::ec(Curve::BrainpoolP256r1, &good),
        Err(CryptoError::InvalidPoint)
    );
}

// ---------------------------------------------------------------------------------------------
// RSA

#[test]
fn rsa_key_has_the_requested_size_and_exponent() {
    let key = rsa2048();
    assert_eq!(key.spec(), KeySpec::Rsa { bits: 2048 });
    let pk = rsa_public(key);
    assert_eq!(pk.n().bits(), 2048);
    assert_eq!(pk.e(), &BigUint::from(65537u32));
    assert_eq!(key.public().spec(), KeySpec::Rsa { bits: 2048 });
}

#[test]
fn rsa_raw_signature_is_input_to_the_d_checked_by_modular_arithmetic() {
    let key = rsa2048();
    let pk = rsa_public(key);
    let mut input = vec![0u8; 256];
    rng(7).fill_bytes(&mut input[1..]);
    input[1] &= 0x7F;
    let signature = sign(key, SignAlgorithm::RsaRaw, &input, &mut rng(8)).unwrap();
    assert_eq!(signature.len(), 256);
    let back = int(&signature).modpow(pk.e(), pk.n());
    assert_eq!(back, int(&input));
    verify(&key.public(), SignAlgorithm::RsaRaw, &input, &signature).unwrap();
}

#[test]
fn rsa_pkcs1v15_signatures_verify_with_the_rsa_crate() {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let key = rsa2048();
    let pk = rsa_public(key);
    let message = b"PKCS#1 v1.5 on card";
    let mut r = rng(9);
    let check = |alg: HashAlgorithm, sig: &[u8]| {
        let sig = Signature::try_from(sig).unwrap();
        match alg {
            HashAlgorithm::Sha1 => {
                VerifyingKey::<sha1::Sha1>::new(pk.clone()).verify(message, &sig)
            }
            HashAlgorithm::Sha224 => {
                VerifyingKey::<sha2::Sha224>::new(pk.clone()).verify(message, &sig)
            }
            HashAlgorithm::Sha256 => {
                VerifyingKey::<sha2::Sha256>::new(pk.clone()).verify(message, &sig)
            }
            HashAlgorithm::Sha384 => {
                VerifyingKey::<sha2::Sha384>::new(pk.clone()).verify(message, &sig)
            }
            HashAlgorithm::Sha512 => {
                VerifyingKey::<sha2::Sha512>::new(pk.clone()).verify(message, &sig)
            }
        }
        .unwrap();
    };
    for h in HashAlgorithm::ALL {
        let sig = sign(key, SignAlgorithm::RsaPkcs1v15(h), message, &mut r).unwrap();
        assert_eq!(sig.len(), 256);
        check(h, &sig);
    }
    // 30: the host sends the DigestInfo (RFC 8017 §9.2 note 1, SHA-256 prefix).
    let mut digest_info = unhex("3031300d060960864801650304020105000420");
    digest_info.extend_from_slice(&HashAlgorithm::Sha256.digest(message));
    let sig = sign(
        key,
        SignAlgorithm::RsaPkcs1v15DigestInfo,
        &digest_info,
        &mut r,
    )
    .unwrap();
    check(HashAlgorithm::Sha256, &sig);
    verify(
        &key.public(),
        SignAlgorithm::RsaPkcs1v15DigestInfo,
        &digest_info,
        &sig,
    )
    .unwrap();
}

#[test]
fn rsa_pss_signatures_verify_with_the_rsa_crate_and_salt_of_hash_length() {
    use rsa::pss::{Signature, VerifyingKey};
    use rsa::signature::{hazmat::PrehashVerifier, Verifier};
    let key = rsa2048();
    let pk = rsa_public(key);
    let message = b"PSS on card";
    let mut r = rng(10);
    for h in HashAlgorithm::ALL {
        let salt = h.output_len();
        let on_card = sign(key, SignAlgorithm::RsaPss(h), message, &mut r).unwrap();
        let hash = h.digest(b"hashed by the host");
        let external = sign(key, SignAlgorithm::RsaPssPrehashed, &hash, &mut r).unwrap();
        assert_eq!(on_card.len(), 256);
        let on_card = Signature::try_from(on_card.as_slice()).unwrap();
        let external = Signature::try_from(external.as_slice()).unwrap();
        macro_rules! check {
            ($d:ty) => {{
                let vk = VerifyingKey::<$d>::new_with_salt_len(pk.clone(), salt);
                vk.verify(message, &on_card).unwrap();
                vk.verify_prehash(&hash, &external).unwrap();
            }};
        }
        match h {
            HashAlgorithm::Sha1 => check!(sha1::Sha1),
            HashAlgorithm::Sha224 => check!(sha2::Sha224),
            HashAlgorithm::Sha256 => check!(sha2::Sha256),
            HashAlgorithm::Sha384 => check!(sha2::Sha384),
            HashAlgorithm::Sha512 => check!(sha2::Sha512),
        }
    }
}

#[test]
fn rsa_rejects_bad_input_with_typed_errors() {
    let key = rsa2048();
    let n = rsa_public(key).n().to_bytes_be();
    let mut r = rng(11);
    // Raw: exactly modulus length and below n.
    assert_eq!(
        sign(key, SignAlgorithm::RsaRaw, &[1; 255], &mut r),
        Err(CryptoError::InputLength {
            len: 255,
            expected: "the modulus length"
        })
    );
    assert_eq!(
        sign(key, SignAlgorithm::RsaRaw, &n, &mut r),
        Err(CryptoError::InputNotBelowModulus)
    );
    assert_eq!(
        sign(key, SignAlgorithm::RsaRaw, &[0xFF; 256], &mut r),
        Err(CryptoError::InputNotBelowModulus)
    );
    assert_eq!(
        decipher_raw(key, &n),
        Err(CryptoError::InputNotBelowModulus)
    );
    assert!(matches!(
        decipher_raw(key, &[1; 257]),
        Err(CryptoError::InputLength { .. })
    ));
    // DigestInfo must leave 11 bytes of padding.
    assert!(sign(key, SignAlgorithm::RsaPkcs1v15DigestInfo, &[1; 245], &mut r).is_ok());
    assert!(matches!(
        sign(key, SignAlgorithm::RsaPkcs1v15DigestInfo, &[1; 246], &mut r),
        Err(CryptoError::InputLength { len: 246, .. })
    ));
    // PSS with an external hash: the length names the hash.
    assert!(matches!(
        sign(key, SignAlgorithm::RsaPssPrehashed, &[1; 33], &mut r),
        Err(CryptoError::InputLength { len: 33, .. })
    ));
    // ECDSA with an RSA key.
    for alg in [
        SignAlgorithm::EcdsaPrehashed,
        SignAlgorithm::Ecdsa(HashAlgorithm::Sha256),
    ] {
        assert_eq!(
            sign(key, alg, &[1; 32], &mut r),
            Err(CryptoError::AlgorithmKeyMismatch {
                algorithm: alg,
                key: KeySpec::Rsa { bits: 2048 }
            })
        );
    }
    // PSS-SHA-512 does not fit RSA-1024 (emLen 128 < 64 + 64 + 2).
    let small = PrivateKey::generate(KeySpec::Rsa { bits: 1024 }, &mut rng(12)).unwrap();
    assert!(matches!(
        sign(
            &small,
            SignAlgorithm::RsaPss(HashAlgorithm::Sha512),
            b"m",
            &mut r
        ),
        Err(CryptoError::RsaOperation(_))
    ));
    // A wrong signature.
    let mut sig = sign(
        key,
        SignAlgorithm::RsaPss(HashAlgorithm::Sha256),
        b"m",
        &mut r,
    )
    .unwrap();
    sig[100] ^= 0x40;
    assert_eq!(
        verify(
            &key.public(),
            SignAlgorithm::RsaPss(HashAlgorithm::Sha256),
            b"m",
            &sig
        ),
        Err(CryptoError::BadSignature)
    );
}

#[test]
fn decipher_raw_inverts_the_public_operation_and_left_pads() {
    let key = rsa2048();
    let pk = rsa_public(key);
    // A short plaintext: the answer still has modulus length.
    let m = int(&[0x00, 0x02, 0xAB, 0xCD]);
    let c = m.modpow(pk.e(), pk.n()).to_bytes_be();
    let mut cryptogram = vec![0u8; 256 - c.len()];
    cryptogram.extend_from_slice(&c);
    let plain = decipher_raw(key, &cryptogram).unwrap();
    assert_eq!(plain.len(), 256);
    assert_eq!(int(&plain), m);
    assert!(plain[..253].iter().all(|&b| b == 0));
}

#[test]
fn unsupported_rsa_sizes_are_refused() {
    for bits in [0u16, 512, 1000, 2047, 4352, 8192] {
        assert_eq!(
            PrivateKey::generate(KeySpec::Rsa { bits }, &mut rng(1)).unwrap_err(),
            CryptoError::UnsupportedKeySpec(KeySpec::Rsa { bits })
        );
    }
    for bits in [1024u16, 1280, 1536, 2048, 3072, 4096] {
        assert!(KeySpec::Rsa { bits }.is_supported());
    }
}

/// How long RSA-4096 generation takes at opt-level 3 (run with `--ignored --nocapture`).
#[test]
#[ignore = "RSA-4096 generation takes seconds; run by hand to measure it"]
fn rsa_4096_generation_time() {
    for seed in 0..3u8 {
        let start = Instant::now();
        let key = PrivateKey::generate(KeySpec::Rsa { bits: 4096 }, &mut rng(seed)).unwrap();
        eprintln!("RSA-4096 seed {seed}: {:?}", start.elapsed());
        assert_eq!(key.spec(), KeySpec::Rsa { bits: 4096 });
    }
    for bits in [2048u16, 3072] {
        for seed in 0..3u8 {
            let start = Instant::now();
            PrivateKey::generate(KeySpec::Rsa { bits }, &mut rng(seed)).unwrap();
            eprintln!("RSA-{bits} seed {seed}: {:?}", start.elapsed());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Determinism, persistence, redaction

#[test]
fn generation_is_deterministic_from_the_generator() {
    for curve in Curve::ALL {
        let a = PrivateKey::generate(KeySpec::Ec(curve), &mut rng(1)).unwrap();
        let b = PrivateKey::generate(KeySpec::Ec(curve), &mut rng(1)).unwrap();
        let c = PrivateKey::generate(KeySpec::Ec(curve), &mut rng(2)).unwrap();
        assert_eq!(a.public(), b.public());
        assert_ne!(a.public(), c.public());
        // Same generator state, same signature.
        let s1 = sign(&a, SignAlgorithm::EcdsaPrehashed, &[1; 32], &mut rng(3)).unwrap();
        let s2 = sign(&b, SignAlgorithm::EcdsaPrehashed, &[1; 32], &mut rng(3)).unwrap();
        assert_eq!(s1, s2);
    }
}

#[test]
fn key_records_round_trip() {
    let mut keys: Vec<PrivateKey> = Curve::ALL.into_iter().map(ec_key).collect();
    keys.push(rsa2048().clone());
    for key in keys {
        let bytes = key.to_bytes();
        assert_eq!(bytes[0], 1, "version");
        let back = PrivateKey::from_bytes(&bytes).unwrap();
        assert_eq!(back.public(), key.public());
        assert_eq!(back.spec(), key.spec());
        assert_eq!(back.to_bytes(), bytes);
    }
}

#[test]
fn garbage_key_records_give_typed_errors() {
    let p256 = ec_key(Curve::P256).to_bytes();
    let rsa = rsa2048().to_bytes();
    assert!(matches!(
        PrivateKey::from_bytes(&[]),
        Err(CryptoError::MalformedKeyRecord(_))
    ));
    assert_eq!(
        PrivateKey::from_bytes(&[2, 1]).unwrap_err(),
        CryptoError::UnsupportedRecordVersion(2)
    );
    assert!(matches!(
        PrivateKey::from_bytes(&[1]),
        Err(CryptoError::MalformedKeyRecord(_))
    ));
    assert!(matches!(
        PrivateKey::from_bytes(&[1, 0x55, 0]),
        Err(CryptoError::MalformedKeyRecord(_))
    ));
    let mut zero = vec![1, 1];
    zero.extend_from_slice(&[0; 32]);
    let mut too_big = vec![1, 1];
    too_big.extend_from_slice(&[0xFF; 32]);
    let mut trailing = p256.to_vec();
    trailing.push(0);
    for bad in [zero, too_big, trailing, p256[..33].to_vec()] {
        assert!(matches!(
            PrivateKey::from_bytes(&bad),
            Err(CryptoError::MalformedKeyRecord(_))
        ));
    }
    // Every truncation and a flipped bit in every RSA component region.
    for len in 0..rsa.len() {
        assert!(
            PrivateKey::from_bytes(&rsa[..len]).is_err(),
            "truncated at {len}"
        );
    }
    for i in (2..rsa.len()).step_by(37) {
        let mut bad = rsa.to_vec();
        bad[i] ^= 0x01;
        assert!(PrivateKey::from_bytes(&bad).is_err(), "flipped byte {i}");
    }
}

#[test]
fn debug_output_and_errors_show_no_key_material() {
    let key = ec_key(Curve::P256);
    let debug = format!("{key:?}");
    assert_eq!(debug, "PrivateKey { spec: Ec(P256), .. }");
    let scalar_hex = hex(&key.to_bytes()[2..]);
    assert!(!debug.to_uppercase().contains(&scalar_hex[..16]));
    assert_eq!(
        format!("{:?}", rsa2048()),
        "PrivateKey { spec: Rsa { bits: 2048 }, .. }"
    );
}

// ---------------------------------------------------------------------------------------------
// DKEK

#[test]
fn kcv_of_the_all_zero_dkek_is_the_vector_of_section_6_4() {
    assert_eq!(hex(&kcv(&[0; 32])), "66687AADF862BD77");
}

fn dkek() -> [u8; 32] {
    let mut k = [0u8; 32];
    rng(77).fill_bytes(&mut k);
    k
}

#[test]
fn wrap_unwrap_round_trips_for_ec_and_rsa() {
    let dkek = dkek();
    let mut keys: Vec<PrivateKey> = Curve::ALL.into_iter().map(ec_key).collect();
    keys.push(rsa2048().clone());
    for (i, key) in keys.iter().enumerate() {
        let allowed: Vec<u8> = if i % 2 == 0 { vec![0x73, 0x92] } else { vec![] };
        let blob = wrap(&dkek, key, &allowed, &mut rng(i as u8));
        // Header as §3.5 describes it.
        assert_eq!(blob[..8], kcv(&dkek));
        let (ty, oid) = if key.spec() == (KeySpec::Rsa { bits: 2048 }) {
            (0x05, "000A04007F00070202020102")
        } else {
            (0x0C, "000A04007F00070202020203")
        };
        assert_eq!(blob[8], ty);
        assert_eq!(hex(&blob[9..21]), oid);
        let n = allowed.len();
        assert_eq!(blob[21..23], (n as u16).to_be_bytes());
        assert_eq!(blob[23..23 + n], allowed[..]);
        assert_eq!(
            blob[23 + n..27 + n],
            [0, 0, 0, 0],
            "access conditions and key OID"
        );
        assert_eq!(
            (blob.len() - 27 - n - 16) % 16,
            0,
            "whole AES blocks then the MAC"
        );

        let (back, back_allowed) = unwrap(&dkek, &blob).unwrap();
        assert_eq!(back.public(), key.public());
        assert_eq!(back_allowed, allowed);
    }
}

#[test]
fn unwrap_rejects_wrong_dkek_flipped_bytes_and_truncation() {
    let dkek = dkek();
    for key in [ec_key(Curve::P256), rsa2048().clone()] {
        let blob = wrap(&dkek, &key, &[0x70], &mut rng(1));
        assert_eq!(unwrap(&[0; 32], &blob).unwrap_err(), CryptoError::WrongKcv);
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            let err = unwrap(&dkek, &bad).unwrap_err();
            let expected = if i < 8 {
                CryptoError::WrongKcv
            } else {
                CryptoError::BadMac
            };
            assert_eq!(err, expected, "flipped byte {i}");
        }
        for len in 0..blob.len() {
            assert!(unwrap(&dkek, &blob[..len]).is_err(), "truncated at {len}");
        }
    }
}

/// Builds a wrapped P-256 key from the text of §3.5 alone (not with the code under test).
fn blob_by_hand(dkek: &[u8; 32], d: &[u8; 32], random: [u8; 8], key_data_tail: &[u8]) -> Vec<u8> {
    use aes::cipher::{generic_array::GenericArray, BlockEncryptMut, KeyIvInit};
    use cmac::{Cmac, Mac};
    use sha2::{Digest, Sha256};
    let params = Curve::P256.domain_parameters();
    let point = p256::SecretKey::from_slice(d).unwrap().public_key();
    let point = elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&point, false);
    let mut plain = random.to_vec();
    plain.extend_from_slice(&256u16.to_be_bytes());
    for part in [
        params.a,
        params.b,
        params.prime,
        params.order,
        params.generator,
        d,
        point.as_bytes(),
    ] {
        plain.extend_from_slice(&(part.len() as u16).to_be_bytes());
        plain.extend_from_slice(part);
    }
    plain.extend_from_slice(key_data_tail);
    if plain.len() % 16 != 0 {
        plain.push(0x80);
        while plain.len() % 16 != 0 {
            plain.push(0);
        }
    }
    let kenc: [u8; 32] = Sha256::new()
        .chain_update(dkek)
        .chain_update([0, 0, 0, 1])
        .finalize()
        .into();
    let kmac: [u8; 32] = Sha256::new()
        .chain_update(dkek)
        .chain_update([0, 0, 0, 2])
        .finalize()
        .into();
    let mut enc = cbc::Encryptor::<aes::Aes256>::new(&kenc.into(), &[0u8; 16].into());
    for block in plain.chunks_exact_mut(16) {
        enc.encrypt_block_mut(GenericArray::from_mut_slice(block));
    }
    let mut blob = Sha256::digest(dkek)[..8].to_vec();
    blob.push(0x0C);
    blob.extend_from_slice(&unhex("000A 04007F00070202020203 0002 7073 0000 0000"));
    blob.extend_from_slice(&plain);
    let mut mac = <Cmac<aes::Aes256> as Mac>::new_from_slice(&kmac).unwrap();
    mac.update(&blob);
    blob.extend_from_slice(&mac.finalize().into_bytes());
    blob
}

#[test]
fn unwrap_reads_a_blob_built_from_the_format_description() {
    let dkek = [0u8; 32]; // pypicohsm's DKEK when none was imported (§6.4)
    let mut d = [0u8; 32];
    d[31] = 0x2A;
    d[0] = 0x11;
    let blob = blob_by_hand(&dkek, &d, [9; 8], &[]);
    let (key, allowed) = unwrap(&dkek, &blob).unwrap();
    assert_eq!(allowed, [0x70, 0x73]);
    let expected = p256::SecretKey::from_slice(&d).unwrap().public_key();
    let expected = elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&expected, false);
    assert_eq!(ec_point(&key), expected.as_bytes());
    // Garbage after the key data (authenticated, so only the layout is wrong) is refused.
    let blob = blob_by_hand(&dkek, &d, [9; 8], &[0x01, 0x02]);
    assert!(matches!(
        unwrap(&dkek, &blob),
        Err(CryptoError::InvalidKeyData(_))
    ));
}

proptest::proptest! {
    #[test]
    fn unwrap_and_from_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        let _ = unwrap(&[0; 32], &bytes);
        let mut with_kcv = kcv(&[0; 32]).to_vec();
        with_kcv.extend_from_slice(&bytes);
        let _ = unwrap(&[0; 32], &with_kcv);
        let _ = PrivateKey::from_bytes(&bytes);
        let mut rsa_record = vec![1, 0x10];
        rsa_record.extend_from_slice(&bytes);
        let _ = PrivateKey::from_bytes(&rsa_record);
        let _ = ecdsa_der_to_plain(&bytes, 32);
    }
}

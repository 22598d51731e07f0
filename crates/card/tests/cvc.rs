//! CV certificates against a real artefact (CardContact's SmartCard-HSM root certificate,
//! sc-hsm-protocol.md §6.9), build/parse round trips, key-generation requests checked by
//! independent verifiers, and the virtual device identity.

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tessera_apdu::{Tag, Tlv, Tlvs};
use tessera_card::crypto::{CryptoError, Curve, KeySpec, PrivateKey, PublicKey};
use tessera_card::cvc::{
    key_generation_request, AuthenticatedRequest, Certificate, CertificateBody, Chat, CvDate,
    CvcError, DeviceIdentity, KeyGenerationTemplate, PublicKeyTemplate, TaAlgorithm,
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

/// OpenSC `etc/DESRCACC100001` (441 bytes), as printed in sc-hsm-protocol.md §6.9.
fn root_ca() -> Vec<u8> {
    unhex(
        "7f218201b47f4e82016c5f290100420e44455352434143433130303030317f4982011d060a04007f0007020202
         02038120a9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e537782207d5a0975fc2c30
         57eef67530417affe7fb8055c126dc5c6ce94a4b44f330b5d9832026dc5c6ce94a4b44f330b5d9bbd77cbf9584
         16295cf7e1ce6bccdc18ff8c07b68441048bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd
         9ace3262547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f0469978520a9fb57dba1eea9
         bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a78641046d025a8026cdba245f10df1b72e9880fff
         746dab40a43a3d5c6bebf27707c30f6dea72430ee3287b0665c1eaa6eaa4fa26c46303001983f82bd1aa31e03d
         a0628701015f200e44455352434143433130303030317f4c10060b2b0601040181c31f0301015301c05f250601
         02010100095f24060302010100085f37409dbb382b1711d2baacb0c623d40c6267d0b52ba455c01f56333dc955
         4810b9b2878daf9ec3ada19c7b065d780d6c9c3c2ecedfd78deb18af40778adf89e861ca",
    )
}

fn rsa2048() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(KeySpec::Rsa { bits: 2048 }, &mut rng(21)).unwrap())
}

fn ec_key(curve: Curve, seed: u8) -> PrivateKey {
    PrivateKey::generate(KeySpec::Ec(curve), &mut rng(seed)).unwrap()
}

/// The tags of the objects in `value`, in order.
fn tags(value: &[u8]) -> Vec<u32> {
    Tlvs::new(value).map(|t| t.unwrap().tag().raw()).collect()
}

// ---------------------------------------------------------------------------------------------
// The real root certificate

#[test]
fn the_smartcard_hsm_root_certificate_parses_and_its_self_signature_verifies() {
    let bytes = root_ca();
    assert_eq!(bytes.len(), 441);
    let cert = Certificate::parse(&bytes).unwrap();
    assert_eq!(cert.as_bytes(), bytes);
    let body = cert.body();
    assert_eq!(body.profile_identifier, 0);
    assert_eq!(cert.chr(), b"DESRCACC100001");
    assert_eq!(cert.car(), Some(&b"DESRCACC100001"[..]));
    assert_eq!(body.chr_str(), Some("DESRCACC100001"));
    let key = cert.public_key();
    assert_eq!(key.algorithm, TaAlgorithm::EcdsaSha256);
    assert!(key.domain_parameters);
    match &key.key {
        PublicKey::Ec { curve, point } => {
            assert_eq!(*curve, Curve::BrainpoolP256r1);
            assert_eq!(point[..4], [0x04, 0x6D, 0x02, 0x5A]);
        }
        other => panic!("not EC: {other:?}"),
    }
    let chat = body.chat.as_ref().unwrap();
    assert_eq!(chat.role, Chat::SMARTCARD_HSM_ROLE);
    assert_eq!(chat.authorization, [0xC0]);
    assert_eq!(body.effective_date, CvDate::new(2012, 11, 9));
    assert_eq!(body.expiration_date, CvDate::new(2032, 11, 8));
    assert_eq!(cert.signature().len(), 64);

    // CardContact's signature verifies with our brainpoolP256r1 ECDSA.
    cert.verify_self_signed().unwrap();

    // Our writer reproduces CardContact's body byte for byte.
    assert_eq!(body.to_bytes().unwrap(), cert.body_bytes());
}

#[test]
fn a_tampered_root_certificate_does_not_verify() {
    let bytes = root_ca();
    // A CHR letter (inside the body) and a signature byte.
    for position in [0x15, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[position] ^= 0x01;
        let cert = Certificate::parse(&bad).unwrap();
        assert_eq!(
            cert.verify_self_signed(),
            Err(CvcError::Crypto(CryptoError::BadSignature)),
            "byte {position}"
        );
    }
}

#[test]
fn truncated_or_mangled_certificates_give_errors_not_panics() {
    let bytes = root_ca();
    for len in 0..bytes.len() {
        assert!(
            Certificate::parse(&bytes[..len]).is_err(),
            "truncated at {len}"
        );
    }
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            if let Ok(cert) = Certificate::parse(&bad) {
                let _ = cert.verify_self_signed();
            }
        }
    }
    let mut trailing = bytes.clone();
    trailing.push(0x00);
    assert_eq!(
        Certificate::parse(&trailing),
        Err(CvcError::Malformed("bytes after the certificate"))
    );
    assert!(matches!(
        Certificate::parse(&unhex("67 00")),
        Err(CvcError::UnexpectedTag { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn certificates_round_trip_through_bytes() {
    let issuer = ec_key(Curve::P256, 1);
    for (subject, seed) in [
        (ec_key(Curve::P384, 2), 3u8),
        (ec_key(Curve::BrainpoolP256r1, 4), 5),
        (rsa2048().clone(), 6),
    ] {
        let spec = subject.spec();
        let body = CertificateBody {
            profile_identifier: 0,
            car: Some(b"ZZCA00001".to_vec()),
            public_key: PublicKeyTemplate {
                algorithm: TaAlgorithm::for_key(spec),
                key: subject.public(),
                domain_parameters: seed % 2 == 1,
            },
            chr: b"ZZHOLDER00001".to_vec(),
            chat: Some(Chat {
                role: Chat::SMARTCARD_HSM_ROLE.to_vec(),
                authorization: vec![0x00],
            }),
            effective_date: CvDate::new(2025, 1, 1),
            expiration_date: CvDate::new(2030, 12, 31),
            extensions: Some(vec![0x73, 0x00]),
        };
        let cert = body
            .clone()
            .sign(&issuer, TaAlgorithm::EcdsaSha256, &mut rng(seed))
            .unwrap();
        let parsed = Certificate::parse(cert.as_bytes()).unwrap();
        assert_eq!(parsed, cert);
        assert_eq!(parsed.body(), &body);
        assert_eq!(parsed.body().to_bytes().unwrap(), parsed.body_bytes());
        let issuer_key = PublicKeyTemplate::new(TaAlgorithm::EcdsaSha256, issuer.public()).unwrap();
        parsed.verify(&issuer_key).unwrap();
        // Not self-signed.
        assert!(parsed.verify_self_signed().is_err());
    }
}

#[test]
fn dates_encode_one_digit_per_byte() {
    let date = CvDate::new(2032, 11, 8).unwrap();
    assert_eq!(date.to_bytes(), [3, 2, 1, 1, 0, 8]);
    assert_eq!(CvDate::parse(&[3, 2, 1, 1, 0, 8]).unwrap(), date);
    for bad in [
        &[3, 2, 1, 3, 0, 8][..],
        &[3, 2, 1, 1, 0, 0xA],
        &[3, 2, 1, 1, 0],
        &[0, 0, 0, 0, 0, 0],
    ] {
        assert!(CvDate::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn algorithm_oids_are_those_of_tr_03110() {
    assert_eq!(
        TaAlgorithm::EcdsaSha256.oid(),
        *unhex("04007F00070202020203")
    );
    assert_eq!(
        TaAlgorithm::RsaV15Sha256.oid(),
        *unhex("04007F00070202020102")
    );
    assert_eq!(
        TaAlgorithm::EcdsaSha512.oid(),
        *unhex("04007F00070202020205")
    );
    assert_eq!(
        TaAlgorithm::RsaPssSha512.oid(),
        *unhex("04007F00070202020106")
    );
    for a in TaAlgorithm::ALL {
        assert_eq!(TaAlgorithm::from_oid(&a.oid()), Some(a));
    }
    assert_eq!(
        TaAlgorithm::for_key(KeySpec::Ec(Curve::P521)),
        TaAlgorithm::EcdsaSha512
    );
}

// ---------------------------------------------------------------------------------------------
// Key generation requests (§2.11, §6.7)

/// The data of GENERATE ASYMMETRIC KEY PAIR for an EC key, as OpenSC and pypicohsm send it.
fn ec_template(curve: Curve, extra: &[u8]) -> Vec<u8> {
    let d = curve.domain_parameters();
    let mut key = unhex("06 0A 04007F00070202020203");
    for (tag, value) in [
        (0x81, d.prime),
        (0x82, d.a),
        (0x83, d.b),
        (0x84, d.generator),
        (0x85, d.order),
        (0x87, d.cofactor),
    ] {
        key.push(tag);
        key.extend_from_slice(&der_len(value.len()));
        key.extend_from_slice(value);
    }
    let mut data = unhex("5F29 01 00  42 09 555443413030303031"); // "UTCA00001"
    data.extend_from_slice(&unhex("7F49"));
    data.extend_from_slice(&der_len(key.len()));
    data.extend_from_slice(&key);
    data.extend_from_slice(&unhex("5F20 0D 5554434455 4D4D593030303031")); // "UTCDUMMY00001"
    data.extend_from_slice(extra);
    data
}

fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=0x7F => vec![len as u8],
        0x80..=0xFF => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

#[test]
fn an_ec_key_generation_request_verifies_with_the_embedded_key() {
    for curve in Curve::ALL {
        let template = KeyGenerationTemplate::parse(&ec_template(curve, &[])).unwrap();
        assert_eq!(template.spec, KeySpec::Ec(curve));
        assert_eq!(template.algorithm, TaAlgorithm::EcdsaSha256);
        assert_eq!(template.chr, b"UTCDUMMY00001");
        let key = ec_key(curve, 30);
        let request = template.build_request(&key, &mut rng(31)).unwrap();
        let cert = Certificate::parse(&request).unwrap();
        cert.verify_self_signed().unwrap();
        assert_eq!(cert.car(), Some(&b"UTCA00001"[..]));
        assert_eq!(cert.chr(), b"UTCDUMMY00001");
        assert_eq!(cert.public_key().key, key.public());
        // Body: 5F29 42 7F49 5F20; key template: 06 81 82 83 84 85 86 87.
        let body = Tlv::parse(cert.body_bytes()).unwrap();
        assert_eq!(tags(body.value()), [0x5F29, 0x42, 0x7F49, 0x5F20]);
        let key_template = body.find(Tag::new(0x7F49)).unwrap().unwrap();
        assert_eq!(
            tags(key_template.value()),
            [0x06, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87]
        );
        // r‖s of field width.
        assert_eq!(cert.signature().len(), 2 * curve.field_size());
    }
}

#[test]
fn a_p256_request_signature_verifies_with_rustcrypto_ecdsa() {
    use p256::ecdsa::signature::Verifier;
    let key = ec_key(Curve::P256, 32);
    let template = KeyGenerationTemplate::parse(&ec_template(Curve::P256, &[])).unwrap();
    let cert = Certificate::parse(&template.build_request(&key, &mut rng(33)).unwrap()).unwrap();
    let PublicKey::Ec { point, .. } = key.public() else {
        unreachable!()
    };
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(cert.signature()).unwrap();
    vk.verify(cert.body_bytes(), &sig).unwrap(); // ECDSA with SHA-256 over the body object
}

#[test]
fn an_rsa_key_generation_request_verifies_with_the_embedded_key() {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let key = rsa2048();
    // pypicohsm's template (bits only) and OpenSC's (exponent and bits), §6.7.
    for key_template in [
        "06 0A 04007F00070202020102 02 02 0800",
        "06 0A 04007F00070202020102 82 03 010001 02 02 0800",
    ] {
        let key_template = unhex(key_template);
        let mut data = unhex("5F29 01 00 42 09 555443413030303031 7F49");
        data.extend_from_slice(&der_len(key_template.len()));
        data.extend_from_slice(&key_template);
        data.extend_from_slice(&unhex(
            "5F20 0D 55544344554D4D593030303031 91 02 3031 90 04 00000010 92 01 00",
        ));
        let template = KeyGenerationTemplate::parse(&data).unwrap();
        assert_eq!(template.spec, KeySpec::Rsa { bits: 2048 });
        assert_eq!(template.algorithm, TaAlgorithm::RsaV15Sha256);
        assert_eq!(template.algorithms.as_deref(), Some(&[0x30, 0x31][..]));
        assert_eq!(template.use_counter, Some(16));
        assert_eq!(template.key_domain, Some(0));
        let cert = Certificate::parse(&template.build_request(key, &mut rng(40)).unwrap()).unwrap();
        cert.verify_self_signed().unwrap();
        let key_object = Tlv::parse(cert.body_bytes())
            .unwrap()
            .find(Tag::new(0x7F49))
            .unwrap()
            .unwrap();
        assert_eq!(tags(key_object.value()), [0x06, 0x81, 0x82]);
        // Independently: PKCS#1 v1.5 with SHA-256 over the body object.
        let PublicKey::Rsa { modulus, exponent } = key.public() else {
            unreachable!()
        };
        let pk = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&modulus),
            rsa::BigUint::from_bytes_be(&exponent),
        )
        .unwrap();
        let sig = Signature::try_from(cert.signature()).unwrap();
        VerifyingKey::<sha2::Sha256>::new(pk)
            .verify(cert.body_bytes(), &sig)
            .unwrap();
    }
}

#[test]
fn an_outer_car_gives_an_authenticated_request_signed_by_the_device_key() {
    let identity = DeviceIdentity::generate([5; 32], "ZZTS").unwrap();
    let mut extra = unhex("45 0D");
    extra.extend_from_slice(identity.chr().as_bytes()[..13].as_ref());
    let template = KeyGenerationTemplate::parse(&ec_template(Curve::P256, &extra)).unwrap();
    assert!(template.outer_car.is_some());
    let key = ec_key(Curve::P256, 41);
    let response = template
        .build_response(&key, identity.device_key(), &mut rng(42))
        .unwrap();
    assert_eq!(response[0], 0x67);
    let outer = AuthenticatedRequest::parse(&response).unwrap();
    assert_eq!(outer.as_bytes(), response);
    assert_eq!(outer.outer_car(), &identity.chr().as_bytes()[..13]);
    outer.request().verify_self_signed().unwrap();
    outer
        .verify(identity.device_certificate().public_key())
        .unwrap();
    // The outer signature is not the new key's.
    let own = outer.request().public_key().clone();
    assert!(outer.verify(&own).is_err());
    // Without 45 the response is the plain request.
    let plain = KeyGenerationTemplate::parse(&ec_template(Curve::P256, &[])).unwrap();
    let response = plain
        .build_response(&key, identity.device_key(), &mut rng(42))
        .unwrap();
    assert_eq!(&response[..2], [0x7F, 0x21]);
}

#[test]
fn bad_key_generation_templates_give_typed_errors() {
    let good = ec_template(Curve::P256, &[]);
    // Unknown curve: a prime of no supported curve.
    let mut unknown = good.clone();
    let p = unknown
        .windows(3)
        .position(|w| w == [0x81, 0x20, 0xFF])
        .unwrap();
    unknown[p + 3] ^= 0x01;
    assert_eq!(
        KeyGenerationTemplate::parse(&unknown),
        Err(CvcError::UnknownCurve)
    );
    // Unknown tag, missing key, truncated.
    let mut with_unknown = good.clone();
    with_unknown.extend_from_slice(&unhex("99 01 00"));
    assert!(matches!(
        KeyGenerationTemplate::parse(&with_unknown),
        Err(CvcError::Malformed(_))
    ));
    assert_eq!(
        KeyGenerationTemplate::parse(&unhex("5F29 01 00 5F20 01 41")),
        Err(CvcError::Missing("public key template (7F49)"))
    );
    for len in 0..good.len() {
        assert!(
            KeyGenerationTemplate::parse(&good[..len]).is_err(),
            "truncated at {len}"
        );
    }
    // Options out of range.
    for extra in [
        "91 11 000102030405060708090A0B0C0D0E0F10",
        "90 04 00000000",
        "90 02 0001",
        "92 02 0000",
    ] {
        let data = ec_template(Curve::P256, &unhex(extra));
        assert!(
            matches!(
                KeyGenerationTemplate::parse(&data),
                Err(CvcError::Malformed(_))
            ),
            "{extra}"
        );
    }
    // RSA sizes the card does not generate, and another exponent.
    for key_template in [
        "06 0A 04007F00070202020102 02 02 03E8",
        "06 0A 04007F00070202020102 82 01 03 02 02 0800",
    ] {
        let key_template = unhex(key_template);
        let mut data = unhex("7F49");
        data.extend_from_slice(&der_len(key_template.len()));
        data.extend_from_slice(&key_template);
        data.extend_from_slice(&unhex("5F20 01 41"));
        assert!(matches!(
            KeyGenerationTemplate::parse(&data),
            Err(CvcError::Crypto(CryptoError::UnsupportedKeySpec(_)))
        ));
    }
    // An unknown OID.
    assert!(matches!(
        KeyGenerationTemplate::parse(&unhex("7F49 05 06 03 2A0304 5F20 01 41")),
        Err(CvcError::UnknownAlgorithm(_))
    ));
    // The OID must fit the key.
    assert_eq!(
        key_generation_request(
            rsa2048(),
            0,
            None,
            b"X",
            TaAlgorithm::EcdsaSha256,
            &mut rng(1)
        )
        .unwrap_err(),
        CvcError::AlgorithmKeyMismatch {
            algorithm: TaAlgorithm::EcdsaSha256,
            key: KeySpec::Rsa { bits: 2048 }
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Device identity (§1.4)

/// The serial as the stock firmware finds it (hardware.md §B): a BER-TLV parser looks for 5F20
/// in EF 2F02; the serial is the CHR without its last five characters (OpenSC, §1.4).
fn serial_from_ef_2f02(ef: &[u8]) -> String {
    let (device, _dica) = Tlv::parse_prefix(ef).unwrap();
    let body = device.find(Tag::new(0x7F4E)).unwrap().unwrap();
    let chr = body.find(Tag::new(0x5F20)).unwrap().unwrap().value();
    assert!(chr.len() >= 8, "OpenSC rejects shorter CHRs");
    String::from_utf8(chr[..chr.len() - 5].to_vec()).unwrap()
}

#[test]
fn the_device_identity_is_deterministic_from_its_seed() {
    let a = DeviceIdentity::generate([1; 32], "ZZTS").unwrap();
    let b = DeviceIdentity::generate([1; 32], "ZZTS").unwrap();
    assert_eq!(a.ef_2f02(), b.ef_2f02());
    assert_eq!(a.serial(), b.serial());
    assert_eq!(a.device_key().to_bytes(), b.device_key().to_bytes());
    let mut serials = std::collections::BTreeSet::new();
    for seed in 0..8u8 {
        let id = DeviceIdentity::generate([seed; 32], "ZZTS").unwrap();
        assert!(
            serials.insert(id.serial().to_owned()),
            "serial repeated for seed {seed}"
        );
    }
}

#[test]
fn the_device_chain_verifies_from_the_virtual_root() {
    let id = DeviceIdentity::generate([7; 32], "ZZTS").unwrap();
    // EF 2F02 = device CVC ‖ DICA CVC.
    let (device, rest) = Certificate::parse_prefix(id.ef_2f02()).unwrap();
    let dica = Certificate::parse(rest).unwrap();
    assert_eq!(&device, id.device_certificate());
    assert_eq!(&dica, id.dica_certificate());
    // root → DICA → device.
    let root = id.root_certificate();
    root.verify_self_signed().unwrap();
    assert_eq!(root.public_key(), id.root_public_key());
    dica.verify(id.root_public_key()).unwrap();
    device.verify(dica.public_key()).unwrap();
    assert!(device.verify(id.root_public_key()).is_err());
    assert_eq!(dica.car(), Some(root.chr()));
    assert_eq!(device.car(), Some(dica.chr()));
    // The device key is the certified one; the chain does not reach CardContact's root.
    assert_eq!(device.public_key().key, id.device_key().public());
    let real_root = Certificate::parse(&root_ca()).unwrap();
    assert!(dica.verify(real_root.public_key()).is_err());
    // Only the root carries domain parameters; all keys are brainpoolP256r1 (GUESS).
    assert!(root.public_key().domain_parameters);
    assert!(!dica.public_key().domain_parameters && !device.public_key().domain_parameters);
    assert_eq!(
        device.public_key().key.spec(),
        KeySpec::Ec(Curve::BrainpoolP256r1)
    );
}

#[test]
fn the_serial_is_the_device_chr_without_its_sequence_number() {
    let id = DeviceIdentity::generate([9; 32], "ZZTS").unwrap();
    let chr = id.chr();
    assert_eq!(chr.len(), 16);
    assert!(chr.starts_with("ZZTS") && chr.ends_with("00001"));
    assert!(chr[4..11].bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(id.serial(), &chr[..11]);
    assert_eq!(serial_from_ef_2f02(id.ef_2f02()), id.serial());
    assert_eq!(id.device_certificate().chr(), chr.as_bytes());
    // Another prefix.
    let other = DeviceIdentity::generate([9; 32], "XY").unwrap();
    assert!(other.serial().starts_with("XY") && other.serial().len() == 9);
    for bad in ["", "ZZTS-1", "ABCDEFGHI", "ZZ TS", "ÄB"] {
        assert_eq!(
            DeviceIdentity::generate([9; 32], bad).unwrap_err(),
            CvcError::InvalidPrefix,
            "{bad:?}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
        let _ = Certificate::parse(&bytes);
        let _ = AuthenticatedRequest::parse(&bytes);
        let _ = KeyGenerationTemplate::parse(&bytes);
        let _ = PublicKeyTemplate::parse(&bytes);
        let _ = CertificateBody::parse(&bytes);
    }
}

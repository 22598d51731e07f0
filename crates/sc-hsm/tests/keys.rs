//! Keys against the virtual card: the key-generation template, the PRKD OpenSC writes, key
//! listing with labels, and signatures checked with RustCrypto verifiers (not the card's code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384};
use support::*;
use tessera_sc_hsm::keys::key_generation_template;
use tessera_sc_hsm::sign::{ecdsa_der_to_raw, ecdsa_raw_to_der};
use tessera_sc_hsm::{
    EcCurve, EcdsaFormat, Error, FileState, HashAlg, InputError, KeyAlgorithm, KeyDescription,
    KeyKind, ObjectId, ObjectKind, PublicKey, SignMechanism,
};

/// The PRKDs OpenSC 0.23's pkcs11-tool wrote to C401..C404 of a virtual card for
/// `--keypairgen --key-type EC:prime256v1 --id 01 --label "my ec key"`, `rsa:2048 --id 02
/// --label "rsa key"`, `EC:secp521r1 --id 03 --label p521`, `EC:brainpoolP256r1 --id 04`.
const OPENSC_PRKDS: [(&str, KeyKind, u8, u16, &str); 4] = [
    (
        "a02d30120c096d79206563206b6579030206c0040101300b0401010303073080020101a10a30083002040002020100",
        KeyKind::Ec, 1, 256, "my ec key",
    ),
    (
        "302a30100c07727361206b6579030206c0040101300a04010203020470020102a10a30083002040002020800",
        KeyKind::Rsa, 2, 2048, "rsa key",
    ),
    (
        "a028300d0c0470353231030206c0040101300b0401030303073080020103a10a30083002040002020209",
        KeyKind::Ec, 3, 521, "p521",
    ),
    (
        "a02f30140c0b50726976617465204b6579030206c0040101300b0401040303073080020104a10a30083002040002020100",
        KeyKind::Ec, 4, 256, "Private Key",
    ),
];

#[test]
fn prkd_is_written_byte_for_byte_as_opensc_writes_it() {
    for (bytes, kind, id, bits, label) in OPENSC_PRKDS {
        assert_eq!(
            to_hex(&KeyDescription::encode(kind, id, bits, label)),
            to_hex(&hex(bytes)),
            "{label}"
        );
    }
}

#[test]
fn prkd_written_by_opensc_is_read() {
    for (bytes, kind, id, bits, label) in OPENSC_PRKDS {
        let d = KeyDescription::parse(&hex(bytes)).unwrap();
        assert_eq!(d.kind, Some(kind));
        assert_eq!(d.id, vec![id]);
        assert_eq!(d.bits, Some(bits));
        assert_eq!(d.label.as_deref(), Some(label));
    }
}

#[test]
fn malformed_prkds_are_errors_not_panics() {
    let good = hex(OPENSC_PRKDS[0].0);
    for cut in 0..good.len() {
        let _ = KeyDescription::parse(&good[..cut]);
    }
    assert!(KeyDescription::parse(&[]).is_err());
    assert!(KeyDescription::parse(&hex("A0 00")).is_err());
    assert!(KeyDescription::parse(&hex("A0 03 04 01 01")).is_err());
    // A label that is not UTF-8.
    assert!(KeyDescription::parse(&hex("A0 0C 30 04 0C 02 FF FE 30 04 04 02 01 02")).is_err());
}

/// §6.7: the P-256 template, as OpenSC and pypicohsm build it.
#[test]
fn ec_p256_template_has_the_documented_layout() {
    let t = key_generation_template(KeyAlgorithm::EcP256, b"UTCDUMMY00001");
    let expected = [
        "5F29 01 00",
        "42 09 555443413030303031",
        "7F49 81 DA 06 0A 04007F00070202020203",
        "81 20 FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF",
        "82 20 FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC",
        "83 20 5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B",
        "84 41 046B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C2964FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5",
        "85 20 FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551",
        "87 01 01",
        // "UTCDUMMY00001"
        "5F20 0D 5554434455 4D4D59 3030303031",
    ]
    .concat();
    let expected = hex(&expected);
    assert_eq!(to_hex(&t), to_hex(&expected));
}

#[test]
fn rsa_template_names_exponent_and_size() {
    let t = key_generation_template(KeyAlgorithm::Rsa2048, b"ZZTS123456700001");
    assert_eq!(
        to_hex(&t),
        to_hex(&hex(
            "5F29 01 00 | 42 09 555443413030303031 | 7F49 15 06 0A 04007F00070202020102 \
             82 03 010001 02 02 0800 | 5F20 10 5A5A5453313233343536373030303031"
        ))
    );
}

#[test]
fn key_algorithm_names() {
    for (text, want) in [
        ("ec:p256", KeyAlgorithm::EcP256),
        ("prime256v1", KeyAlgorithm::EcP256),
        ("EC:secp384r1", KeyAlgorithm::EcP384),
        ("p521", KeyAlgorithm::EcP521),
        ("brainpoolP256r1", KeyAlgorithm::EcBrainpoolP256r1),
        ("rsa:2048", KeyAlgorithm::Rsa2048),
        ("RSA3072", KeyAlgorithm::Rsa3072),
        ("rsa-4096", KeyAlgorithm::Rsa4096),
    ] {
        assert_eq!(text.parse::<KeyAlgorithm>().unwrap(), want, "{text}");
    }
    for a in KeyAlgorithm::ALL {
        assert_eq!(a.to_string().parse::<KeyAlgorithm>().unwrap(), a);
    }
    let err = "ed25519".parse::<KeyAlgorithm>().unwrap_err();
    assert!(err
        .to_string()
        .starts_with("unknown key algorithm \"ed25519\"; use one of ec:p256"));
}

/// Generates `algorithm` with a label, checks what the card's files say about it.
fn generate(
    bench: &mut Bench,
    algorithm: KeyAlgorithm,
    label: &str,
) -> tessera_sc_hsm::GeneratedKey {
    let key = bench
        .hsm
        .generate_key(algorithm, None, Some(label))
        .unwrap();
    assert_eq!(key.algorithm, algorithm);
    assert_eq!(key.label, label);
    assert_eq!(key.public_key.kind(), algorithm.kind());
    assert_eq!(key.public_key.bits(), algorithm.bits());
    let info = bench.hsm.key_info(key.id).unwrap().unwrap();
    assert_eq!(info.label.as_deref(), Some(label));
    assert_eq!(info.kind, Some(algorithm.kind()));
    assert_eq!(info.bits, Some(algorithm.bits()));
    assert_eq!(info.curve, algorithm.curve());
    assert_eq!(info.description, FileState::Present);
    assert_eq!(info.public_key_file, FileState::Present);
    assert_eq!(info.public_key.as_ref(), Some(&key.public_key));
    key
}

#[test]
fn ec_p256_keygen_and_signatures_verify_with_p256() {
    let mut bench = Bench::initialised(10);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    let key = generate(&mut bench, KeyAlgorithm::EcP256, "p256 key");
    assert_eq!(key.id, 1, "the lowest free id");
    // The SPKI is what any verifier reads.
    let verifier =
        p256::ecdsa::VerifyingKey::from_public_key_der(&key.public_key.to_spki_der()).unwrap();
    let PublicKey::Ec {
        curve: EcCurve::P256,
        point,
    } = &key.public_key
    else {
        panic!()
    };
    assert_eq!(
        verifier,
        p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap()
    );
    let message = b"what are my PIN and SO-PIN counters?";
    let hash = Sha256::digest(message);
    // On a hash, DER (as the card answers).
    let der = bench
        .hsm
        .sign(key.id, SignMechanism::EcdsaHash, &hash, EcdsaFormat::Der)
        .unwrap();
    verifier
        .verify_prehash(&hash, &p256::ecdsa::Signature::from_der(&der).unwrap())
        .unwrap();
    // On a hash, r||s.
    let raw = bench
        .hsm
        .sign(key.id, SignMechanism::EcdsaHash, &hash, EcdsaFormat::Raw)
        .unwrap();
    assert_eq!(raw.len(), 64);
    verifier
        .verify_prehash(&hash, &p256::ecdsa::Signature::from_slice(&raw).unwrap())
        .unwrap();
    // The card hashes the message.
    let der = bench
        .hsm
        .sign(
            key.id,
            SignMechanism::EcdsaMessage(HashAlg::Sha256),
            message,
            EcdsaFormat::Der,
        )
        .unwrap();
    verifier
        .verify(message, &p256::ecdsa::Signature::from_der(&der).unwrap())
        .unwrap();
}

#[test]
fn ec_p384_keygen_and_signature_verify_with_p384() {
    let mut bench = Bench::initialised(11);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    let key = generate(&mut bench, KeyAlgorithm::EcP384, "p384");
    let verifier =
        p384::ecdsa::VerifyingKey::from_public_key_der(&key.public_key.to_spki_der()).unwrap();
    let hash = Sha384::digest(b"tessera");
    let raw = bench
        .hsm
        .sign(key.id, SignMechanism::EcdsaHash, &hash, EcdsaFormat::Raw)
        .unwrap();
    assert_eq!(raw.len(), 96);
    verifier
        .verify_prehash(&hash, &p384::ecdsa::Signature::from_slice(&raw).unwrap())
        .unwrap();
}

#[test]
fn ec_p521_and_brainpool_keygen_list_with_their_curves() {
    let mut bench = Bench::initialised(12);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    let p521 = generate(&mut bench, KeyAlgorithm::EcP521, "p521");
    let bp = generate(&mut bench, KeyAlgorithm::EcBrainpoolP256r1, "brainpool");
    let raw = bench
        .hsm
        .sign(
            p521.id,
            SignMechanism::EcdsaHash,
            &[1; 64],
            EcdsaFormat::Raw,
        )
        .unwrap();
    assert_eq!(raw.len(), 132);
    let raw = bench
        .hsm
        .sign(bp.id, SignMechanism::EcdsaHash, &[1; 32], EcdsaFormat::Raw)
        .unwrap();
    assert_eq!(raw.len(), 64);
}

#[test]
fn rsa_2048_pkcs1_and_pss_signatures_verify_with_rsa() {
    let mut bench = Bench::initialised(13);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    let key = generate(&mut bench, KeyAlgorithm::Rsa2048, "rsa");
    let public = RsaPublicKey::from_public_key_der(&key.public_key.to_spki_der()).unwrap();
    let message = b"sign me";
    let hash = Sha256::digest(message);
    // PKCS#1 v1.5 on a hash: the DigestInfo is built on the host.
    let sig = bench
        .hsm
        .sign(
            key.id,
            SignMechanism::RsaPkcs1Hash(HashAlg::Sha256),
            &hash,
            EcdsaFormat::Der,
        )
        .unwrap();
    assert_eq!(sig.len(), 256);
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &sig)
        .unwrap();
    // PKCS#1 v1.5, the card hashes.
    let sig = bench
        .hsm
        .sign(
            key.id,
            SignMechanism::RsaPkcs1Message(HashAlg::Sha256),
            message,
            EcdsaFormat::Der,
        )
        .unwrap();
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &sig)
        .unwrap();
    // PSS on a hash, and with the card hashing.
    let sig = bench
        .hsm
        .sign(key.id, SignMechanism::RsaPssHash, &hash, EcdsaFormat::Der)
        .unwrap();
    public.verify(Pss::new::<Sha256>(), &hash, &sig).unwrap();
    let sig = bench
        .hsm
        .sign(
            key.id,
            SignMechanism::RsaPssMessage(HashAlg::Sha256),
            message,
            EcdsaFormat::Der,
        )
        .unwrap();
    public.verify(Pss::new::<Sha256>(), &hash, &sig).unwrap();
}

#[test]
fn rsa_4096_keygen_and_signature() {
    let mut bench = Bench::initialised(14);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    let key = generate(&mut bench, KeyAlgorithm::Rsa4096, "big");
    let public = RsaPublicKey::from_public_key_der(&key.public_key.to_spki_der()).unwrap();
    let hash = Sha256::digest(b"4096");
    let sig = bench
        .hsm
        .sign(
            key.id,
            SignMechanism::RsaPkcs1Hash(HashAlg::Sha256),
            &hash,
            EcdsaFormat::Der,
        )
        .unwrap();
    assert_eq!(sig.len(), 512);
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &sig)
        .unwrap();
}

#[test]
fn keys_list_with_labels_and_objects_by_kind() {
    let mut bench = Bench::initialised(15);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    generate(&mut bench, KeyAlgorithm::EcP256, "signing key");
    let second = bench
        .hsm
        .generate_key(KeyAlgorithm::EcP384, Some(0x10), Some("ünïcødé label"))
        .unwrap();
    assert_eq!(second.id, 0x10);
    let third = bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, None, None)
        .unwrap();
    assert_eq!(third.id, 2);
    assert_eq!(third.label, "key 02");
    let keys = bench.hsm.list_keys().unwrap();
    let summary: Vec<(u8, String)> = keys.iter().map(|k| (k.id, k.describe())).collect();
    assert_eq!(
        summary,
        [
            (1, "EC P-256 \"signing key\"".to_owned()),
            (2, "EC P-256 \"key 02\"".to_owned()),
            (0x10, "EC P-384 \"ünïcødé label\"".to_owned()),
        ]
    );
    let objects = bench.hsm.list_objects().unwrap();
    assert!(
        objects.contains(&ObjectId(0xCC00)),
        "the device key is listed"
    );
    assert_eq!(ObjectId(0xCC00).kind(), ObjectKind::PrivateKey);
    assert_eq!(ObjectId(0xC401).kind(), ObjectKind::KeyDescription);
    assert_eq!(ObjectId(0xCE10).kind(), ObjectKind::Certificate);
    for id in [1u8, 2, 0x10] {
        for prefix in [0xCC, 0xC4, 0xCE] {
            assert!(
                objects.contains(&ObjectId::new(prefix, id)),
                "{prefix:02X}{id:02X}"
            );
        }
    }
    // Deleting a key removes its three objects.
    bench.hsm.delete_key(2).unwrap();
    let ids: Vec<u8> = bench
        .hsm
        .list_keys()
        .unwrap()
        .iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, [1, 0x10]);
    assert!(!bench
        .hsm
        .list_objects()
        .unwrap()
        .contains(&ObjectId(0xC402)));
}

#[test]
fn a_missing_or_malformed_prkd_is_reported_per_key() {
    let mut bench = Bench::initialised(16);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    let good = generate(&mut bench, KeyAlgorithm::EcP256, "good");
    let broken = generate(&mut bench, KeyAlgorithm::EcP256, "broken");
    let bare = generate(&mut bench, KeyAlgorithm::Rsa2048, "bare");
    bench
        .hsm
        .write_file(0xC400 | u16::from(broken.id), &hex("A0 05 30 03 0C"))
        .unwrap();
    bench.hsm.delete_file(0xC400 | u16::from(bare.id)).unwrap();
    bench
        .hsm
        .write_file(0xCE00 | u16::from(bare.id), &hex("30 03 02 01 00"))
        .unwrap();
    let keys = bench.hsm.list_keys().unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0].id, good.id);
    assert_eq!(keys[0].description, FileState::Present);
    assert_eq!(keys[0].label.as_deref(), Some("good"));
    assert!(
        matches!(keys[1].description, FileState::Malformed(_)),
        "{:?}",
        keys[1]
    );
    assert_eq!(keys[1].label, None);
    // Type and size still come from the public key in CE<id>.
    assert_eq!(keys[1].describe(), "EC P-256");
    assert_eq!(keys[2].description, FileState::Absent);
    assert_eq!(
        keys[2].certificate,
        Some(tessera_sc_hsm::keys::CertificateKind::X509)
    );
    assert_eq!(keys[2].describe(), "unknown type");
}

#[test]
fn keygen_refuses_bad_ids_before_the_card() {
    let mut bench = Bench::initialised(17);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    let err = bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, Some(0), None)
        .unwrap_err();
    assert!(matches!(err, Error::Input(InputError::DeviceKeyId)));
    let key = bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, Some(5), None)
        .unwrap();
    let err = bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, Some(key.id), None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "key 05 already exists: delete it first or choose another id"
    );
    let long = "x".repeat(256);
    let err = bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, None, Some(&long))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Input(InputError::LabelTooLong { len: 256 })
    ));
}

#[test]
fn keygen_and_sign_need_the_user_pin() {
    let mut bench = Bench::initialised(18);
    let err = bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, None, None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "GENERATE ASYMMETRIC KEY PAIR (key 01): 6982 — security status not satisfied; verify \
         the user PIN first (and do not let another program reset the card in between)"
    );
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    let key = bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, None, None)
        .unwrap();
    bench.hsm.select().unwrap();
    let err = bench
        .hsm
        .sign(key.id, SignMechanism::EcdsaHash, &[1; 32], EcdsaFormat::Der)
        .unwrap_err();
    assert!(matches!(err, Error::NotAuthenticated { .. }), "{err:?}");
}

#[test]
fn sign_errors_name_the_problem() {
    let mut bench = Bench::initialised(19);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    let key = bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, None, None)
        .unwrap();
    // An RSA mechanism on an EC key: the card refuses the data.
    let err = bench
        .hsm
        .sign(
            key.id,
            SignMechanism::RsaPkcs1Hash(HashAlg::Sha256),
            &[0; 32],
            EcdsaFormat::Der,
        )
        .unwrap_err();
    assert!(
        err.to_string().starts_with("SIGN (key 01): 6A80 — "),
        "{err}"
    );
    // No such key.
    let err = bench
        .hsm
        .sign(9, SignMechanism::EcdsaHash, &[0; 32], EcdsaFormat::Der)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "SIGN (key 09): 6A88 — there is no such key"
    );
    // Wrong input lengths never reach the card.
    let err = bench
        .hsm
        .sign(
            key.id,
            SignMechanism::RsaPkcs1Hash(HashAlg::Sha256),
            &[0; 20],
            EcdsaFormat::Der,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Input(InputError::SignInputLength { .. })),
        "{err:?}"
    );
    let err = bench
        .hsm
        .sign(
            key.id,
            SignMechanism::RsaPssMessage(HashAlg::Sha224),
            b"x",
            EcdsaFormat::Der,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("no RSA with on-card SHA-224"),
        "{err}"
    );
    assert!(bench
        .hsm
        .sign(key.id, SignMechanism::EcdsaHash, &[], EcdsaFormat::Der)
        .is_err());
    assert!(matches!(
        bench
            .hsm
            .sign(0, SignMechanism::EcdsaHash, &[1], EcdsaFormat::Der)
            .unwrap_err(),
        Error::Input(InputError::DeviceKeyId)
    ));
}

#[test]
fn digest_infos_are_rfc_8017s() {
    for h in HashAlg::ALL {
        let info = h.digest_info(&h.digest(b"abc"));
        // SEQUENCE of the right total length, ending in an OCTET STRING of the hash.
        assert_eq!(usize::from(info[1]) + 2, info.len(), "{h}");
        assert_eq!(info[info.len() - h.output_len() - 2], 0x04);
        assert_eq!(
            usize::from(info[info.len() - h.output_len() - 1]),
            h.output_len()
        );
    }
    assert_eq!(
        to_hex(HashAlg::Sha256.digest_info_prefix()),
        "30 31 30 0D 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20"
    );
}

#[test]
fn ecdsa_format_conversions() {
    let der = hex("30 07 02 02 00 80 02 01 01");
    assert_eq!(
        ecdsa_der_to_raw(&der, 4).unwrap(),
        hex("00 00 00 80 00 00 00 01")
    );
    assert_eq!(
        ecdsa_raw_to_der(&hex("00 00 00 80 00 00 00 01")).unwrap(),
        der
    );
    assert!(ecdsa_der_to_raw(&der, 0).is_err());
    assert!(ecdsa_der_to_raw(&hex("30 03 02 01 01"), 4).is_err());
    assert!(ecdsa_der_to_raw(&hex("31 06 02 01 01 02 01 01"), 4).is_err());
    assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_err());
}

#[test]
fn spki_and_pem() {
    let key = PublicKey::Rsa {
        modulus: vec![0xC5; 256],
        exponent: vec![1, 0, 1],
    };
    let public = RsaPublicKey::from_public_key_der(&key.to_spki_der()).unwrap();
    assert_eq!(rsa::traits::PublicKeyParts::size(&public), 256);
    let pem = key.to_pem();
    assert!(
        pem.starts_with(
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxcXF"
        ),
        "{pem}"
    );
    assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
    assert!(pem.lines().all(|l| l.len() <= 64));
}

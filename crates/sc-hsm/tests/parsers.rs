//! The parsers of card answers never panic, whatever the bytes (property tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tessera_sc_hsm::sign::ecdsa_der_to_raw;
use tessera_sc_hsm::{AppletInfo, DeviceCertificates, DkekStatus, KeyDescription, PublicKey};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn card_answers_never_panic_a_parser(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = AppletInfo::from_fcp(&bytes);
        let _ = KeyDescription::parse(&bytes);
        let _ = DeviceCertificates::parse(&bytes);
        let _ = DkekStatus::parse(&bytes);
        let _ = PublicKey::from_cv_request(&bytes);
        let _ = ecdsa_der_to_raw(&bytes, 32);
    }

    /// Structured enough to get past the first tag: a constructed outer object.
    #[test]
    fn tlv_shaped_answers_never_panic_a_parser(
        tag in prop_oneof![Just(0x62u8), Just(0x30), Just(0xA0), Just(0x67)],
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut bytes = vec![tag, body.len() as u8];
        bytes.extend_from_slice(&body);
        let _ = AppletInfo::from_fcp(&bytes);
        let _ = KeyDescription::parse(&bytes);
        let _ = PublicKey::from_cv_request(&bytes);
        let _ = ecdsa_der_to_raw(&bytes, 66);
        let mut certificate = vec![0x7F, 0x21, bytes.len() as u8];
        certificate.extend_from_slice(&bytes);
        let _ = DeviceCertificates::parse(&certificate);
    }

    #[test]
    fn prkds_round_trip(id in 1u8.., bits in 1u16.., label in "\\PC{0,40}", ec in any::<bool>()) {
        let kind = if ec { tessera_sc_hsm::KeyKind::Ec } else { tessera_sc_hsm::KeyKind::Rsa };
        let d = KeyDescription::parse(&KeyDescription::encode(kind, id, bits, &label)).unwrap();
        prop_assert_eq!(d.kind, Some(kind));
        prop_assert_eq!(d.id, vec![id]);
        prop_assert_eq!(d.bits, Some(bits));
        prop_assert_eq!(d.label, Some(label));
    }
}

//! The class descriptor (CCID Rev 1.1 §5.1) against the stock Nitrokey HSM 2 values
//! (hardware.md §C): the four smoltcp-style tests, both stock profiles, `dwFeatures`.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use tessera_ccid::*;

/// The stock Nitrokey HSM 2 class descriptor (tag `hsm-3`), written out by hand.
static NITROKEY_HSM2: [u8; 54] = [
    0x36, // bLength: 54
    0x21, // bDescriptorType: CCID
    0x10, 0x01, // bcdCCID: 1.10
    0x00, // bMaxSlotIndex: one slot
    0x02, // bVoltageSupport: 3.0 V
    0x02, 0x00, 0x00, 0x00, // dwProtocols: T=1
    0x10, 0x0E, 0x00, 0x00, // dwDefaultClock: 3600 kHz
    0x10, 0x0E, 0x00, 0x00, // dwMaximumClock: 3600 kHz
    0x00, // bNumClockSupported
    0xCD, 0x25, 0x00, 0x00, // dwDataRate: 9677 bps
    0xA1, 0xC5, 0x01, 0x00, // dwMaxDataRate: 116129 bps
    0x00, // bNumDataRatesSupported
    0xFE, 0x00, 0x00, 0x00, // dwMaxIFSD: 254
    0x00, 0x00, 0x00, 0x00, // dwSynchProtocols
    0x00, 0x00, 0x00, 0x00, // dwMechanical
    0xBA, 0x04, 0x01, 0x00, // dwFeatures: 0x000104BA
    0x0F, 0x01, 0x00, 0x00, // dwMaxCCIDMessageLength: 271
    0x00, // bClassGetResponse
    0x00, // bClassEnvelope
    0x00, 0x00, // wLcdLayout: no LCD
    0x00, // bPINSupport: none
    0x01, // bMaxCCIDBusySlots
];

#[test]
fn descriptor_deconstruct() {
    let d = ClassDescriptor::new_checked(&NITROKEY_HSM2[..]).unwrap();
    assert_eq!(d.length(), 0x36);
    assert_eq!(d.descriptor_type(), 0x21);
    assert_eq!(d.bcd_ccid(), 0x0110);
    assert_eq!(d.max_slot_index(), 0);
    assert!(d.voltage_support().volts3());
    assert!(!d.voltage_support().volts5());
    assert!(d.protocols().t1());
    assert!(!d.protocols().t0());
    assert_eq!(d.default_clock(), 3600);
    assert_eq!(d.maximum_clock(), 3600);
    assert_eq!(d.num_clock_supported(), 0);
    assert_eq!(d.data_rate(), 9677);
    assert_eq!(d.max_data_rate(), 116_129);
    assert_eq!(d.num_data_rates_supported(), 0);
    assert_eq!(d.max_ifsd(), 254);
    assert_eq!(d.synch_protocols(), 0);
    assert_eq!(d.mechanical(), 0);
    assert_eq!(d.features().bits(), 0x0001_04BA);
    assert_eq!(d.max_ccid_message_length(), 271);
    assert_eq!(d.class_get_response(), 0);
    assert_eq!(d.class_envelope(), 0);
    assert_eq!(d.lcd_layout(), 0);
    assert_eq!(d.pin_support(), 0);
    assert_eq!(d.max_ccid_busy_slots(), 1);
}

#[test]
fn descriptor_construct() {
    let mut buf = [0xFFu8; 54];
    let mut d = ClassDescriptor::new_unchecked(&mut buf[..]);
    d.set_length(0x36);
    d.set_descriptor_type(0x21);
    d.set_bcd_ccid(0x0110);
    d.set_max_slot_index(0);
    d.set_voltage_support(VoltageSupport::V3);
    d.set_protocols(Protocols::T1);
    d.set_default_clock(3600);
    d.set_maximum_clock(3600);
    d.set_num_clock_supported(0);
    d.set_data_rate(9677);
    d.set_max_data_rate(116_129);
    d.set_num_data_rates_supported(0);
    d.set_max_ifsd(254);
    d.set_synch_protocols(0);
    d.set_mechanical(0);
    d.set_features(0x0001_04BA);
    d.set_max_ccid_message_length(271);
    d.set_class_get_response(0);
    d.set_class_envelope(0);
    d.set_lcd_layout(0);
    d.set_pin_support(0);
    d.set_max_ccid_busy_slots(1);
    assert_eq!(buf, NITROKEY_HSM2);
}

#[test]
fn descriptor_parse() {
    let d = ClassDescriptor::new_checked(&NITROKEY_HSM2[..]).unwrap();
    assert_eq!(
        ClassDescriptorRepr::parse(&d),
        Ok(ClassDescriptorRepr::NITROKEY_HSM2)
    );
}

#[test]
fn descriptor_emit() {
    let repr = ClassDescriptorRepr::NITROKEY_HSM2;
    let mut buf = [0u8; 54];
    assert_eq!(repr.emit(&mut buf), Ok(54));
    for (i, (got, want)) in buf.iter().zip(NITROKEY_HSM2.iter()).enumerate() {
        assert_eq!(got, want, "byte {i}");
    }
    assert_eq!(repr.to_bytes(), NITROKEY_HSM2);
    assert_eq!(repr.emit(&mut [0u8; 53]), Err(Error::BufferTooSmall));
}

#[test]
fn nitrokey_profiles_differ_only_in_max_data_rate() {
    let hsm3 = ClassDescriptorRepr::NITROKEY_HSM2.to_bytes();
    let v4 = ClassDescriptorRepr::NITROKEY_HSM2_V4_CARD.to_bytes();
    let differing: Vec<usize> = (0..54).filter(|&i| hsm3[i] != v4[i]).collect();
    assert_eq!(differing, vec![23, 24]); // 0x01C5A1 vs 0x014997
    assert_eq!(&v4[23..27], &[0x97, 0x49, 0x01, 0x00]); // 84375
    assert_eq!(
        ClassDescriptorRepr::nitrokey_hsm2(100_000).max_data_rate,
        100_000
    );
}

#[test]
fn nitrokey_features_are_named() {
    let f = ClassDescriptorRepr::NITROKEY_HSM2.features;
    for flag in [
        Features::AUTO_CONFIG_FROM_ATR,
        Features::AUTO_VOLTAGE,
        Features::AUTO_CLOCK,
        Features::AUTO_BAUD,
        Features::AUTO_PPS,
        Features::AUTO_IFSD,
        Features::TPDU_LEVEL,
    ] {
        assert!(f.contains(flag), "{flag:?}");
    }
    for flag in [
        Features::AUTO_ACTIVATION,
        Features::AUTO_PARAMETER_NEGOTIATION,
        Features::CLOCK_STOP,
        Features::NAD_OTHER_THAN_ZERO,
        Features::USB_WAKE_UP,
    ] {
        assert!(!f.contains(flag), "{flag:?}");
    }
    assert_eq!(f.exchange_level(), ExchangeLevel::Tpdu);
    assert_eq!(f.unknown_bits(), 0);
    assert_eq!(
        format!("{f:?}"),
        "Features(0x000104ba: AUTO_CONFIG_FROM_ATR | AUTO_VOLTAGE | AUTO_CLOCK | AUTO_BAUD | \
         AUTO_PPS | AUTO_IFSD | TPDU_LEVEL)"
    );
}

#[test]
fn features_keep_unknown_bits_and_read_exchange_levels() {
    let f = Features::from_bits_retain(0x8000_0001 | 0x0004_0000);
    assert_eq!(f.unknown_bits(), 0x8000_0001);
    assert_eq!(f.exchange_level(), ExchangeLevel::ExtendedApdu);
    assert_eq!(f.bits(), 0x8004_0001);
    assert_eq!(Features::NONE.exchange_level(), ExchangeLevel::Character);
    assert_eq!(
        Features::SHORT_APDU_LEVEL.exchange_level(),
        ExchangeLevel::ShortApdu
    );
    assert_eq!(
        (Features::TPDU_LEVEL | Features::SHORT_APDU_LEVEL).exchange_level(),
        ExchangeLevel::Invalid(0x0003_0000)
    );
    let g = f.with_exchange_level(ExchangeLevel::Tpdu);
    assert_eq!(g.bits(), 0x8001_0001);
    // usbd-ccid's value (hardware.md §D): APDU level, short and extended.
    let usbd = Features::from_bits_retain(0x0004_0840);
    assert_eq!(usbd.exchange_level(), ExchangeLevel::ExtendedApdu);
    assert!(usbd.contains(Features::AUTO_PARAMETER_NEGOTIATION));
    assert_eq!(usbd.unknown_bits(), 0x800);
}

#[test]
fn descriptor_errors() {
    assert_eq!(
        ClassDescriptor::new_checked(&NITROKEY_HSM2[..53]).err(),
        Some(Error::Truncated)
    );
    let mut bad = NITROKEY_HSM2;
    bad[0] = 0x37;
    let d = ClassDescriptor::new_checked(&bad[..]).unwrap();
    assert_eq!(
        ClassDescriptorRepr::parse(&d),
        Err(Error::BadDescriptorLength)
    );
    let mut bad = NITROKEY_HSM2;
    bad[1] = 0xFF;
    let d = ClassDescriptor::new_checked(&bad[..]).unwrap();
    assert_eq!(
        ClassDescriptorRepr::parse(&d),
        Err(Error::BadDescriptorType)
    );
    // Trailing bytes (the endpoint descriptors that follow) are ignored.
    let mut longer = NITROKEY_HSM2.to_vec();
    longer.extend_from_slice(&[0x07, 0x05, 0x81, 0x03, 0x40, 0x00, 0x18]);
    let d = ClassDescriptor::new_checked(&longer[..]).unwrap();
    assert_eq!(
        ClassDescriptorRepr::parse(&d),
        Ok(ClassDescriptorRepr::NITROKEY_HSM2)
    );
}

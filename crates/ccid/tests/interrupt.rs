//! Interrupt-IN messages (CCID Rev 1.1 §6.3) against transcripts: the four smoltcp-style tests
//! for NotifySlotChange and for HardwareError, then lengths and unknown types.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use tessera_ccid::*;

/// What the stock Nitrokey firmware sends once after start (hardware.md §C).
static NOTIFY_PRESENT_CHANGED: [u8; 2] = [
    0x50, // bMessageType: RDR_to_PC_NotifySlotChange
    0x03, // bmSlotICCState: slot 0 present (bit 0) and changed (bit 1)
];

/// An 8-slot reader (bMaxSlotIndex 7): two bytes of bitmap.
static NOTIFY_EIGHT_SLOTS: [u8; 3] = [
    0x50, // bMessageType
    0x0B, // slots 0..=3: slot 0 present+changed, slot 1 changed (removed)
    0x40, // slots 4..=7: slot 7 present, unchanged
];

/// Parse a whole interrupt transfer, compare, emit back.
fn check(bytes: &[u8], repr: InterruptRepr<'_>) {
    assert_eq!(InterruptRepr::parse(bytes), Ok(repr), "parse");
    assert_eq!(repr.buffer_len(), bytes.len(), "buffer_len");
    let mut out = [0xEEu8; 80];
    let n = repr.emit(&mut out).expect("emit");
    assert_eq!(&out[..n], bytes, "emit");
}

fn present_changed() -> SlotChange {
    SlotChange {
        present: true,
        changed: true,
    }
}

#[test]
fn notify_slot_change_deconstruct() {
    let v = NotifySlotChange::new_checked(&NOTIFY_PRESENT_CHANGED[..]).unwrap();
    assert_eq!(v.message_type(), MessageType::NotifySlotChange);
    assert_eq!(v.slot_icc_state(), &[0x03]);
    assert_eq!(v.slot_capacity(), 4);
    assert_eq!(v.slot(0), Some(present_changed()));
    assert_eq!(v.slot(1), Some(SlotChange::default()));
    assert_eq!(v.slot(4), None);

    let v = NotifySlotChange::new_checked(&NOTIFY_EIGHT_SLOTS[..]).unwrap();
    assert_eq!(
        v.slot(1),
        Some(SlotChange {
            present: false,
            changed: true
        })
    );
    assert_eq!(
        v.slot(7),
        Some(SlotChange {
            present: true,
            changed: false
        })
    );
}

#[test]
fn notify_slot_change_construct() {
    let mut buf = [0u8; 3];
    let mut v = NotifySlotChange::new_unchecked(&mut buf[..]);
    v.set_message_type(MessageType::NotifySlotChange);
    v.set_slot(0, present_changed()).unwrap();
    v.set_slot(
        1,
        SlotChange {
            present: false,
            changed: true,
        },
    )
    .unwrap();
    v.set_slot(
        7,
        SlotChange {
            present: true,
            changed: false,
        },
    )
    .unwrap();
    assert_eq!(v.set_slot(8, present_changed()), Err(Error::OutOfRange));
    assert_eq!(buf, NOTIFY_EIGHT_SLOTS);
}

#[test]
fn notify_slot_change_parse() {
    let v = NotifySlotChange::new_checked(&NOTIFY_PRESENT_CHANGED[..]).unwrap();
    let repr = NotifySlotChangeRepr::parse(&v).unwrap();
    assert_eq!(repr.bitmap(), &[0x03]);
    assert_eq!(repr.slot(0), Some(present_changed()));
    let mut expected = NotifySlotChangeRepr::new(1).unwrap();
    expected.set_slot(0, present_changed()).unwrap();
    assert_eq!(repr, expected);
}

#[test]
fn notify_slot_change_emit() {
    let mut repr = NotifySlotChangeRepr::new(8).unwrap();
    assert_eq!(repr.bitmap(), &[0, 0]);
    repr.set_slot(0, present_changed()).unwrap();
    repr.set_slot(
        1,
        SlotChange {
            present: false,
            changed: true,
        },
    )
    .unwrap();
    repr.set_slot(
        7,
        SlotChange {
            present: true,
            changed: false,
        },
    )
    .unwrap();
    let mut buf = [0u8; 3];
    assert_eq!(repr.emit(&mut buf), Ok(3));
    assert_eq!(buf, NOTIFY_EIGHT_SLOTS);
    assert_eq!(repr.emit(&mut [0u8; 2]), Err(Error::BufferTooSmall));
    check(&NOTIFY_EIGHT_SLOTS, InterruptRepr::NotifySlotChange(repr));
}

/// An overcurrent on slot 0 during the command with bSeq 7.
static HARDWARE_ERROR: [u8; 4] = [
    0x51, // bMessageType: RDR_to_PC_HardwareError
    0x00, // bSlot
    0x07, // bSeq
    0x01, // bHardwareErrorCode: overcurrent
];

fn hardware_error_repr() -> HardwareErrorRepr {
    HardwareErrorRepr {
        slot: 0,
        seq: 7,
        code: HardwareErrorCode::Overcurrent,
    }
}

#[test]
fn hardware_error_deconstruct() {
    let v = HardwareError::new_checked(&HARDWARE_ERROR[..]).unwrap();
    assert_eq!(v.message_type(), MessageType::HardwareError);
    assert_eq!(v.slot(), 0);
    assert_eq!(v.seq(), 7);
    assert_eq!(v.code(), HardwareErrorCode::Overcurrent);
}

#[test]
fn hardware_error_construct() {
    let mut buf = [0u8; 4];
    let mut v = HardwareError::new_unchecked(&mut buf[..]);
    v.set_message_type(MessageType::HardwareError);
    v.set_slot(0);
    v.set_seq(7);
    v.set_code(HardwareErrorCode::Overcurrent);
    assert_eq!(buf, HARDWARE_ERROR);
}

#[test]
fn hardware_error_parse() {
    let v = HardwareError::new_checked(&HARDWARE_ERROR[..]).unwrap();
    assert_eq!(HardwareErrorRepr::parse(&v), Ok(hardware_error_repr()));
    let wrong = HardwareError::new_checked(&[0x50, 0, 7, 1][..]).unwrap();
    assert_eq!(
        HardwareErrorRepr::parse(&wrong),
        Err(Error::WrongMessageType)
    );
}

#[test]
fn hardware_error_emit() {
    let mut buf = [0u8; 4];
    assert_eq!(hardware_error_repr().emit(&mut buf), Ok(4));
    assert_eq!(buf, HARDWARE_ERROR);
    check(
        &HARDWARE_ERROR,
        InterruptRepr::HardwareError(hardware_error_repr()),
    );
}

#[test]
fn interrupt_lengths() {
    assert_eq!(InterruptRepr::parse(&[]), Err(Error::Truncated));
    // NotifySlotChange without a bitmap byte.
    assert_eq!(InterruptRepr::parse(&[0x50]), Err(Error::Truncated));
    // 64 bitmap bytes (256 slots) is the most; 65 is too many.
    let mut max = vec![0x50];
    max.resize(65, 0x55);
    assert!(InterruptRepr::parse(&max).is_ok());
    max.push(0x55);
    assert_eq!(InterruptRepr::parse(&max), Err(Error::BadLength));
    // HardwareError is exactly 4 bytes.
    assert_eq!(InterruptRepr::parse(&[0x51, 0, 7]), Err(Error::Truncated));
    assert_eq!(
        InterruptRepr::parse(&[0x51, 0, 7, 1, 0]),
        Err(Error::BadLength)
    );
    assert_eq!(NotifySlotChangeRepr::new(0), Err(Error::OutOfRange));
    assert_eq!(NotifySlotChangeRepr::new(257), Err(Error::OutOfRange));
    assert_eq!(NotifySlotChangeRepr::new(256).unwrap().bitmap().len(), 64);
    assert_eq!(NotifySlotChangeRepr::new(5).unwrap().bitmap().len(), 2);
    assert_eq!(
        NotifySlotChangeRepr::new(4)
            .unwrap()
            .set_slot(4, present_changed()),
        Err(Error::OutOfRange)
    );
}

#[test]
fn unknown_interrupt_message_round_trips() {
    check(
        &[0x5F, 1, 2, 3],
        InterruptRepr::Unknown {
            message_type: 0x5F,
            data: &[1, 2, 3],
        },
    );
    check(
        &[0x51, 0x02, 0x10, 0x80],
        InterruptRepr::HardwareError(HardwareErrorRepr {
            slot: 2,
            seq: 0x10,
            code: HardwareErrorCode::Unknown(0x80),
        }),
    );
}

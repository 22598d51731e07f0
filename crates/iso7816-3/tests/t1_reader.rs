//! The T=1 reader engine against hand-written card transcripts, after the scenarios of
//! ISO/IEC 7816-3:2006 Annex A. IFD = the reader under test, ICC = the scripted card.
//! Default configuration unless stated: IFSC 32, IFSD 32, LRC, NAD 00, retry limit 2,
//! resynch limit 3.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod t1_support;

use t1_support::*;
use tessera_iso7816_3::t1::{CallError, Config, Event, Reader, ReaderEvent, TransactionError};
use Step::*;

fn reader(config: Config) -> Reader<[u8; 300]> {
    Reader::new(config, [0; 300])
}

#[test]
#[rustfmt::skip]
fn plain_exchange_and_sequence_numbers() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT 00 A4 04 00 00
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00: the response, nothing more to send
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
        // IFD -> ICC  I(1,0) READ BINARY: N(S) alternates
        (Transmit("00 B0 00 00 00"), send("00 40 05 00 B0 00 00 00 F5").arm(bwt(1))),
        // ICC -> IFD  I(1,0) 90 00
        (Block("00 40 02 90 00 D2"), done(ReaderEvent::Response { len: 2 })),
    ]);
    assert_eq!(&ifd.buffer()[..2], &[0x90, 0x00]);
    assert!(ifd.is_idle());
}

#[test]
#[rustfmt::skip]
fn command_chaining_longer_than_ifsc() {
    // Annex A, chaining from the interface device: IFSC 4, a 10-byte command.
    let mut ifd = reader(Config { ifsc: 4, ..Config::DEFAULT });
    check(&mut ifd, &[
        // IFD -> ICC  I(0,1) 00 D6 00 00
        (Transmit("00 D6 00 00 05 01 02 03 04 05"), send("00 20 04 00 D6 00 00 F2").arm(bwt(1))),
        // ICC -> IFD  R(1): received, send I(1)
        (Block("00 90 00 90"), send("00 60 04 05 01 02 03 61").arm(bwt(1))),
        // ICC -> IFD  R(0): received, send I(0)
        (Block("00 80 00 80"), send("00 00 02 04 05 03").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00 acknowledges the last block and answers
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn response_chaining_acknowledged_with_r_blocks() {
    // Annex A, chaining from the card: IFSD 4, a 6-byte response.
    let mut ifd = reader(Config { ifsd: 4, ..Config::DEFAULT });
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  I(0,1) 01 02 03 04; IFD -> ICC  R(1)
        (Block("00 20 04 01 02 03 04 20"), send("00 90 00 90").arm(bwt(1))),
        // ICC -> IFD  I(1,0) 90 00: end of chain
        (Block("00 40 02 90 00 D2"), done(ReaderEvent::Response { len: 6 })),
    ]);
    assert_eq!(&ifd.buffer()[..6], &[1, 2, 3, 4, 0x90, 0x00]);
}

#[test]
#[rustfmt::skip]
fn response_block_longer_than_ifsd_is_invalid() {
    let mut ifd = reader(Config { ifsd: 4, ..Config::DEFAULT });
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  I(0,0) with 6 bytes > IFSD 4: R(0) other error
        (Block("00 00 06 01 02 03 04 90 00 92"), send("00 82 00 82").arm(bwt(1))),
    ]);
}

#[test]
#[rustfmt::skip]
fn ifs_request_from_the_reader() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  S(IFS request 254), as the bridge does after PPS
        (RequestIfsd(254), send("00 C1 01 FE 3E").arm(bwt(1))),
        // ICC -> IFD  S(IFS response 254)
        (Block("00 E1 01 FE 1E"), done(ReaderEvent::IfsdSet(254))),
    ]);
    assert_eq!(ifd.ifsd(), 254);
    assert_eq!(ifd.request_ifsd(0).err(), Some(CallError::InvalidIfs));
}

#[test]
#[rustfmt::skip]
fn ifs_request_from_the_card() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  S(IFS request 128); IFD -> ICC  S(IFS response 128)
        (Block("00 C1 01 80 40"), send("00 E1 01 80 60") .arm(bwt(1)) .done(ReaderEvent::IfscChanged(128))),
        // ICC -> IFD  I(0,0) 90 00
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
    ]);
    assert_eq!(ifd.ifsc(), 128);
}

#[test]
#[rustfmt::skip]
fn wtx_request_extends_the_next_wait() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  S(WTX request 5); IFD -> ICC  S(WTX response 5), BWT x 5 armed
        (Block("00 C3 01 05 C7"), send("00 E3 01 05 E7") .arm(bwt(5)) .done(ReaderEvent::WaitingTimeExtension(5))),
        // ICC -> IFD  I(0,0) 90 00
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
        // The extension applied to one wait only.
        (Transmit("00 A4 04 00 00"), send("00 40 05 00 A4 04 00 00 E5").arm(bwt(1))),
    ]);
}

#[test]
#[rustfmt::skip]
fn corrupted_edc_on_an_i_block_is_answered_with_r_block() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00 with a wrong LRC: Rule 7.1, R(0) EDC error
        (Block("00 00 02 90 00 93"), send("00 81 00 81").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00 retransmitted
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn lost_block_bwt_timeout_is_answered_with_r_block() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // BWT passes without a character: Rule 7.1, R(0) other error
        (Timeout, send("00 82 00 82").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00 (the card had answered, or answers now)
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn card_asks_for_retransmission_of_the_command() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  R(0) EDC error: the card wants I(0) again
        (Block("00 81 00 81"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00: the response
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn corrupted_r_block_during_command_chaining() {
    let mut ifd = reader(Config { ifsc: 4, ..Config::DEFAULT });
    check(&mut ifd, &[
        // IFD -> ICC  I(0,1)
        (Transmit("00 D6 00 00 05 01 02 03 04 05"), send("00 20 04 00 D6 00 00 F2").arm(bwt(1))),
        // ICC -> IFD  R(1) with a wrong LRC: Rule 7.1, R(0) EDC error
        (Block("00 90 00 91"), send("00 81 00 81").arm(bwt(1))),
        // ICC -> IFD  R(1) again (the card resends its R-block, Rule 7.2)
        (Block("00 90 00 90"), send("00 60 04 05 01 02 03 61").arm(bwt(1))),
        // ICC -> IFD  R(0); IFD -> ICC  I(0,0) 04 05
        (Block("00 80 00 80"), send("00 00 02 04 05 03").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00: the response
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn lost_r_block_during_response_chaining_is_resent() {
    let mut ifd = reader(Config { ifsd: 4, ..Config::DEFAULT });
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  I(0,1); IFD -> ICC  R(1)
        (Block("00 20 04 01 02 03 04 20"), send("00 90 00 90").arm(bwt(1))),
        // BWT passes: Rule 7.2, the R-block again
        (Timeout, send("00 90 00 90").arm(bwt(1))),
        // ICC -> IFD  I(0,1) retransmitted (it did not get R(1)): a duplicate, R(1) again
        (Block("00 20 04 01 02 03 04 20"), send("00 90 00 90").arm(bwt(1))),
        // ICC -> IFD  I(1,0) 90 00
        (Block("00 40 02 90 00 D2"), done(ReaderEvent::Response { len: 6 })),
    ]);
    assert_eq!(&ifd.buffer()[..6], &[1, 2, 3, 4, 0x90, 0x00]);
}

#[test]
#[rustfmt::skip]
fn parity_error_on_len_waits_for_silence_then_r_block() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // NAD, PCB arrive: CWT between characters
        (Bytes("00 00"), arm(CWT)),
        // LEN arrives with a parity error: the end of the block is unknown
        (Parity, arm(CWT)),
        // the rest of the block: CWT again
        (Bytes("90 00 92"), arm(CWT)),
        // CWT passes: Rule 7.1, R(0) EDC/parity error
        (Timeout, send("00 81 00 81").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00: the response
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn block_longer_than_len_is_a_loss_of_synchronisation() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // A complete I(0,0) 90 00 ... then one more character within BGT
        (Bytes("00 00 02 90 00 92 92"), arm(CWT)),
        // CWT of silence: invalid, R(0) other error
        (Timeout, send("00 82 00 82").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00: the response
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn truncated_block_detected_by_cwt() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // I(0,0) 90 00 without its last character
        (Bytes("00 00 02 90 00"), arm(CWT)),
        // BWT passes: R(0) other error (Rule 7.1 or 7.2)
        (Timeout, send("00 82 00 82").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00: the response
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn resynch_after_the_retry_limit() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // Rule 7.1: R(0)
        (Timeout, send("00 82 00 82").arm(bwt(1))),
        // Rule 7.2: R(0) again (second and last retry with retry_limit 2)
        (Timeout, send("00 82 00 82").arm(bwt(1))),
        // Rule 7.4 then Rule 6: S(RESYNCH request)
        (Timeout, send("00 C0 00 C0").arm(bwt(1))),
        // ICC -> IFD  S(RESYNCH response): the transaction failed cleanly
        (Block("00 E0 00 E0"), done(ReaderEvent::Failed(TransactionError::Resynchronised))),
        // The next transaction starts again with N(S) = 0.
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00: the response
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn resynch_resets_ifsd_and_sequence_numbers() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  S(IFS request 254)
        (RequestIfsd(254), send("00 C1 01 FE 3E").arm(bwt(1))),
        // ICC -> IFD  S(IFS response 254)
        (Block("00 E1 01 FE 1E"), done(ReaderEvent::IfsdSet(254))),
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00: the response
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
        // IFD -> ICC  S(RESYNCH request), asked for by the application
        (Resynch, send("00 C0 00 C0").arm(bwt(1))),
        // ICC -> IFD  S(RESYNCH response)
        (Block("00 E0 00 E0"), done(ReaderEvent::Resynchronised)),
    ]);
    assert_eq!(ifd.ifsd(), 32);
    check(
        &mut ifd,
        &[(
            Transmit("00 A4 04 00 00"),
            send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1)),
        )],
    );
}

#[test]
#[rustfmt::skip]
fn clean_error_after_the_resynch_limit() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // BWT passes: R(0) other error (Rule 7.1 or 7.2)
        (Timeout, send("00 82 00 82").arm(bwt(1))),
        // BWT passes: R(0) other error (Rule 7.1 or 7.2)
        (Timeout, send("00 82 00 82").arm(bwt(1))),
        // S(RESYNCH request), three times (Rule 6.4)
        (Timeout, send("00 C0 00 C0").arm(bwt(1))),
        // BWT passes: S(RESYNCH request) again
        (Timeout, send("00 C0 00 C0").arm(bwt(1))),
        // an answer that is not S(RESYNCH response) counts as a failure too
        (Block("00 00 02 90 00 92"), send("00 C0 00 C0").arm(bwt(1))),
        // BWT passes after the third request: the card is unresponsive
        (Timeout, done(ReaderEvent::Failed(TransactionError::CardUnresponsive))),
    ]);
    assert_eq!(ifd.transmit(5).err(), Some(CallError::NeedsReset));
    // Characters and deadlines are ignored until the reset.
    let action = ifd.handle(Event::Received(&[0x00, 0x00]));
    assert_eq!(
        (action.transmit, action.deadline, action.completion),
        (None, None, None)
    );
    ifd.reset();
    check(
        &mut ifd,
        &[(
            Transmit("00 A4 04 00 00"),
            send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1)),
        )],
    );
}

#[test]
#[rustfmt::skip]
fn unexpected_blocks_are_protocol_errors() {
    let mut ifd = reader(Config { ifsc: 4, ..Config::DEFAULT });
    check(&mut ifd, &[
        // IFD -> ICC  I(0,1) 00 D6 00 00 (IFSC 4)
        (Transmit("00 D6 00 00 05 01 02 03 04 05"), send("00 20 04 00 D6 00 00 F2").arm(bwt(1))),
        // ICC -> IFD  I(0,0) while the IFD is still chaining: R(0) other error
        (Block("00 00 02 90 00 92"), send("00 82 00 82").arm(bwt(1))),
        // ICC -> IFD  S(RESYNCH request): only the IFD may send it; R(0) again (Rule 7.2)
        (Block("00 C0 00 C0"), send("00 82 00 82").arm(bwt(1))),
        // ICC -> IFD  a block with an undefined PCB: retry limit reached, S(RESYNCH request)
        (Block("00 A0 00 A0"), send("00 C0 00 C0").arm(bwt(1))),
    ]);
}

#[test]
#[rustfmt::skip]
fn characters_when_idle_and_spurious_deadlines_are_ignored() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // characters while idle: line noise, ignored
        (Bytes("00 00 02 90 00 92"), nothing()),
        // a parity error while idle: ignored
        (Parity, nothing()),
        // a deadline nobody armed: ignored
        (Timeout, nothing()),
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // an empty chunk changes nothing: BWT stays armed
        (Bytes(""), arm(bwt(1))),
        // ICC -> IFD  I(0,0) 90 00: the response
        (Block("00 00 02 90 00 92"), done(ReaderEvent::Response { len: 2 })),
        // a deadline nobody armed: ignored
        (Timeout, nothing()),
    ]);
}

#[test]
#[rustfmt::skip]
fn calls_that_do_not_fit_the_state() {
    let mut ifd = Reader::new(Config::DEFAULT, [0u8; 8]);
    assert_eq!(ifd.transmit(9).err(), Some(CallError::TooLong));
    let _ = ifd.transmit(4).unwrap();
    assert_eq!(ifd.transmit(4).err(), Some(CallError::Busy));
    assert_eq!(ifd.request_ifsd(254).err(), Some(CallError::Busy));
    assert_eq!(ifd.resynch().err(), Some(CallError::Busy));
    assert_eq!(
        ifd.pending_transmit(),
        Some(&[0x00, 0x00, 0x04, 0, 0, 0, 0, 0x04][..])
    );
}

#[test]
#[rustfmt::skip]
fn response_longer_than_the_buffer_is_a_clean_error() {
    let mut ifd = Reader::new(Config { ifsd: 4, ..Config::DEFAULT }, [0u8; 5]);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) SELECT
        (Transmit("00 A4 04 00 00"), send("00 00 05 00 A4 04 00 00 A5").arm(bwt(1))),
        // ICC -> IFD  I(0,1) 01 02 03 04; IFD -> ICC  R(1)
        (Block("00 20 04 01 02 03 04 20"), send("00 90 00 90").arm(bwt(1))),
        // 6 bytes do not fit 5: the chain is still acknowledged to its end
        (Block("00 40 02 90 00 D2"), done(ReaderEvent::Failed(TransactionError::ResponseTooLong { len: 6, }))),
    ]);
    assert!(ifd.is_idle());
}

#[test]
#[rustfmt::skip]
fn empty_command_is_one_empty_i_block() {
    let mut ifd = reader(Config::DEFAULT);
    check(&mut ifd, &[
        // IFD -> ICC  I(0,0) with an empty INF
        (Transmit(""), send("00 00 00 00").arm(bwt(1))),
        // ICC -> IFD  I(0,0) empty: an empty response
        (Block("00 00 00 00"), done(ReaderEvent::Response { len: 0 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn crc_epilogue() {
    let mut ifd = reader(Config { edc: tessera_iso7816_3::t1::Edc::Crc, ..Config::DEFAULT });
    check(&mut ifd, &[
        // IFD -> ICC  S(IFS request 254) with CRC (low-order byte first)
        (RequestIfsd(254), send("00 C1 01 FE B1 AB").arm(bwt(1))),
        // ICC -> IFD  S(IFS response 254) with a CRC error: Rule 7.3, the request again
        (Block("00 E1 01 FE 00 00"), send("00 C1 01 FE B1 AB").arm(bwt(1))),
    ]);
}

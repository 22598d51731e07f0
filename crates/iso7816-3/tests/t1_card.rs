//! The T=1 card engine against hand-written reader transcripts, after the scenarios of
//! ISO/IEC 7816-3:2006 Annex A. ICC = the card under test, IFD = the scripted reader.
//! Default configuration unless stated: IFSC 32, IFSD 32, LRC, NAD 00, retry limit 2.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod t1_support;

use t1_support::*;
use tessera_iso7816_3::t1::{CallError, Card, CardEvent, Config};
use Step::*;

fn card(config: Config) -> Card<[u8; 300]> {
    Card::new(config, [0; 300])
}

#[test]
#[rustfmt::skip]
fn plain_exchange() {
    let mut icc = card(Config::DEFAULT);
    check(&mut icc, &[
        // IFD -> ICC  I(0,0) SELECT: the command is complete, the card has the turn
        (Block("00 00 05 00 A4 04 00 00 A5"), done(CardEvent::Command { len: 5 })),
        // ICC -> IFD  I(0,0) 90 00
        (Respond("90 00"), send("00 00 02 90 00 92")),
        // IFD -> ICC  I(1,0) READ BINARY
        (Block("00 40 05 00 B0 00 00 00 F5"), done(CardEvent::Command { len: 5 })),
        // ICC -> IFD  I(1,0) 90 00
        (Respond("90 00"), send("00 40 02 90 00 D2")),
    ]);
    assert!(!icc.is_processing());
}

#[test]
#[rustfmt::skip]
fn command_chaining_received_into_the_buffer() {
    let mut icc = card(Config { ifsc: 4, ..Config::DEFAULT });
    check(&mut icc, &[
        // IFD -> ICC  I(0,1); ICC -> IFD  R(1)
        (Block("00 20 04 00 D6 00 00 F2"), send("00 90 00 90")),
        // IFD -> ICC  I(1,1); ICC -> IFD  R(0)
        (Block("00 60 04 05 01 02 03 61"), send("00 80 00 80")),
        // IFD -> ICC  I(0,0): end of chain
        (Block("00 00 02 04 05 03"), done(CardEvent::Command { len: 10 })),
        // ICC -> IFD  I(0,0) 90 00
        (Respond("90 00"), send("00 00 02 90 00 92")),
    ]);
    assert_eq!(&icc.buffer()[..2], &[0x90, 0x00]);
}

#[test]
#[rustfmt::skip]
fn response_chaining_up_to_ifsd() {
    let mut icc = card(Config { ifsd: 4, ..Config::DEFAULT });
    check(&mut icc, &[
        // IFD -> ICC  I(0,0) SELECT: command complete
        (Block("00 00 05 00 A4 04 00 00 A5"), done(CardEvent::Command { len: 5 })),
        // ICC -> IFD  I(0,1) 01 02 03 04
        (Respond("01 02 03 04 90 00"), send("00 20 04 01 02 03 04 20")),
        // IFD -> ICC  R(1); ICC -> IFD  I(1,0) 90 00
        (Block("00 90 00 90"), send("00 40 02 90 00 D2")),
        // IFD -> ICC  R(1) again: it did not get I(1,0); resend it
        (Block("00 92 00 92"), send("00 40 02 90 00 D2")),
    ]);
}

#[test]
#[rustfmt::skip]
fn ifs_request_from_the_reader() {
    let mut icc = card(Config::DEFAULT);
    check(&mut icc, &[
        // IFD -> ICC  S(IFS request 254); ICC -> IFD  S(IFS response 254)
        (Block("00 C1 01 FE 3E"), send("00 E1 01 FE 1E").done(CardEvent::IfsdChanged(254))),
    ]);
    assert_eq!(icc.ifsd(), 254);
}

#[test]
#[rustfmt::skip]
fn ifs_request_from_the_card() {
    let mut icc = card(Config::DEFAULT);
    check(&mut icc, &[
        // IFD -> ICC  I(0,0) SELECT: command complete
        (Block("00 00 05 00 A4 04 00 00 A5"), done(CardEvent::Command { len: 5 })),
        // ICC -> IFD  S(IFS request 254)
        (RequestIfsc(254), send("00 C1 01 FE 3E")),
        // IFD -> ICC  S(IFS response 254)
        (Block("00 E1 01 FE 1E"), done(CardEvent::IfscSet(254))),
        // ICC -> IFD  I(0,0) 90 00
        (Respond("90 00"), send("00 00 02 90 00 92")),
    ]);
    assert_eq!(icc.ifsc(), 254);
}

#[test]
#[rustfmt::skip]
fn wtx_request_while_processing() {
    let mut icc = card(Config::DEFAULT);
    check(&mut icc, &[
        // IFD -> ICC  I(0,0) SELECT: command complete
        (Block("00 00 05 00 A4 04 00 00 A5"), done(CardEvent::Command { len: 5 })),
        // ICC -> IFD  S(WTX request 2): a long operation
        (Wtx(2), send("00 C3 01 02 C0")),
        // The response is ready before the reader answered: it waits
        (Respond("90 00"), nothing()),
        // IFD -> ICC  S(WTX response 2) with a wrong LRC: Rule 7.3, the request again
        (Block("00 E3 01 02 E1"), send("00 C3 01 02 C0")),
        // IFD -> ICC  S(WTX response 2); ICC -> IFD  I(0,0) 90 00
        (Block("00 E3 01 02 E0"), send("00 00 02 90 00 92").done(CardEvent::WtxAcknowledged(2))),
    ]);
}

#[test]
#[rustfmt::skip]
fn corrupted_i_block_is_answered_with_r_block() {
    let mut icc = card(Config::DEFAULT);
    check(&mut icc, &[
        // IFD -> ICC  I(0,0) with a wrong LRC: Rule 7.5 (first block), R(0) EDC error
        (Block("00 00 05 00 A4 04 00 00 A4"), send("00 81 00 81")),
        // IFD -> ICC  I(0,0) retransmitted
        (Block("00 00 05 00 A4 04 00 00 A5"), done(CardEvent::Command { len: 5 })),
        // ICC -> IFD  I(0,0) 90 00
        (Respond("90 00"), send("00 00 02 90 00 92")),
        // IFD -> ICC  next command truncated (CWT): Rule 7.1 after an I-block, R(1)
        (Bytes("00 40 05 00 B0"), arm(CWT)),
        // CWT passes: Rule 7.1 after an I-block, R(1) other error
        (Timeout, send("00 92 00 92")),
        // IFD -> ICC  R(0): the reader missed the response; resend I(0,0)
        (Block("00 82 00 82"), send("00 00 02 90 00 92")),
    ]);
}

#[test]
#[rustfmt::skip]
fn corrupted_r_block_during_response_chaining() {
    let mut icc = card(Config { ifsd: 4, ..Config::DEFAULT });
    check(&mut icc, &[
        // IFD -> ICC  I(0,0) SELECT: command complete
        (Block("00 00 05 00 A4 04 00 00 A5"), done(CardEvent::Command { len: 5 })),
        // ICC -> IFD  I(0,1) 01 02 03 04 (IFSD 4)
        (Respond("01 02 03 04 90 00"), send("00 20 04 01 02 03 04 20")),
        // IFD -> ICC  R(1) with a wrong LRC: Rule 7.1, R(1) (the N(S) the card expects next)
        (Block("00 90 00 91"), send("00 91 00 91")),
        // IFD -> ICC  R(1) again (Rule 7.2 on the reader side): next block
        (Block("00 90 00 90"), send("00 40 02 90 00 D2")),
    ]);
}

#[test]
#[rustfmt::skip]
fn retry_limit_then_silence_then_resynch() {
    let mut icc = card(Config::DEFAULT);
    check(&mut icc, &[
        // IFD -> ICC  I(0,0) with a wrong LRC, the first block: R(0) EDC error (Rule 7.5)
        (Block("00 00 05 00 A4 04 00 00 00"), send("00 81 00 81")),
        // IFD -> ICC  I(0,0) with a wrong LRC: R(0) again (Rule 7.2)
        (Block("00 00 05 00 A4 04 00 00 00"), send("00 81 00 81")),
        // IFD -> ICC  the same: the retry limit is reached, silence (Rule 7.4)
        (Block("00 00 05 00 A4 04 00 00 00"), nothing()),
        // IFD -> ICC  S(RESYNCH request); ICC -> IFD  S(RESYNCH response)
        (Block("00 C0 00 C0"), send("00 E0 00 E0").done(CardEvent::Resynchronised)),
        // IFD -> ICC  I(0,0) SELECT: command complete
        (Block("00 00 05 00 A4 04 00 00 A5"), done(CardEvent::Command { len: 5 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn resynch_while_processing_abandons_the_command() {
    let mut icc = card(Config::DEFAULT);
    check(&mut icc, &[
        // IFD -> ICC  I(0,0) SELECT: command complete
        (Block("00 00 05 00 A4 04 00 00 A5"), done(CardEvent::Command { len: 5 })),
        // IFD -> ICC  R(0) (its BWT ran out): the card is processing and does not answer
        (Block("00 82 00 82"), nothing()),
        // IFD -> ICC  S(RESYNCH request); ICC -> IFD  S(RESYNCH response)
        (Block("00 C0 00 C0"), send("00 E0 00 E0").done(CardEvent::Resynchronised)),
    ]);
    assert_eq!(icc.respond(2).err(), Some(CallError::Busy));
}

#[test]
#[rustfmt::skip]
fn abort_request_discards_the_chain() {
    let mut icc = card(Config { ifsc: 4, ..Config::DEFAULT });
    check(&mut icc, &[
        // IFD -> ICC  I(0,1) 00 D6 00 00; ICC -> IFD  R(1)
        (Block("00 20 04 00 D6 00 00 F2"), send("00 90 00 90")),
        // IFD -> ICC  S(ABORT request); ICC -> IFD  S(ABORT response)
        (Block("00 C2 00 C2"), send("00 E2 00 E2").done(CardEvent::Aborted)),
        // The reader's next command continues the sequence numbers: I(1,0)
        (Block("00 40 02 90 00 D2"), done(CardEvent::Command { len: 2 })),
    ]);
}

#[test]
#[rustfmt::skip]
fn command_longer_than_the_buffer() {
    let mut icc = Card::new(Config { ifsc: 4, ..Config::DEFAULT }, [0u8; 6]);
    check(&mut icc, &[
        // IFD -> ICC  I(0,1) 00 D6 00 00; ICC -> IFD  R(1)
        (Block("00 20 04 00 D6 00 00 F2"), send("00 90 00 90")),
        // IFD -> ICC  I(1,1) 05 01 02 03; ICC -> IFD  R(0)
        (Block("00 60 04 05 01 02 03 61"), send("00 80 00 80")),
        // IFD -> ICC  I(0,0) 04 05: 10 bytes do not fit 6
        (Block("00 00 02 04 05 03"), done(CardEvent::CommandTooLong { len: 10 })),
        // The application answers 67 00 (wrong length)
        (Respond("67 00"), send("00 00 02 67 00 65")),
    ]);
}

#[test]
#[rustfmt::skip]
fn calls_that_do_not_fit_the_state() {
    let mut icc = Card::new(Config::DEFAULT, [0u8; 8]);
    assert_eq!(icc.respond(2).err(), Some(CallError::Busy));
    assert_eq!(icc.request_wtx(1).err(), Some(CallError::Busy));
    assert_eq!(icc.request_ifsc(0).err(), Some(CallError::InvalidIfs));
    check(
        &mut icc,
        &[(
            Block("00 00 02 90 00 92"),
            done(CardEvent::Command { len: 2 }),
        )],
    );
    assert_eq!(icc.respond(9).err(), Some(CallError::TooLong));
    let _ = icc.request_wtx(1).unwrap();
    assert_eq!(icc.request_ifsc(32).err(), Some(CallError::Busy));
}

//! ccid_t1: the link under the APDUs. Extended APDUs both ways, CCID time extensions during a
//! long card operation, the IFSD and PPS rate reached, power off and on, and a card pulled in
//! the middle of a command. The link is observed from the host's side only (CCID spoken by
//! the host: GetParameters, time extensions counted, the T=1 sizes at TPDU level).
//!
//! Where the firmwares differ by design: the stock firmware sends no time extension while the
//! card works (hardware.md §G #78), and its GetParameters answers defaults whatever the PPS
//! reached (hardware.md §D), so the PPS rate cannot be observed on it.

use std::time::Duration;

use tessera_apdu::{Cla, CommandRepr};
use tessera_conformance::{ensure, Case, Dut, Failed, Outcome, Session};
use tessera_rig::config::{Board, FirmwareProfile};
use tessera_rig::{Need, Rig, TransportOptions, Via};
use tessera_sc_hsm::keys::key_generation_template;
use tessera_sc_hsm::{KeyAlgorithm, PinRole, PinStatus, ScHsm};

pub const CASES: &[Case] = &[
    Case {
        suite: "ccid_t1",
        name: "extended_apdus_both_ways",
        needs: &[Need::PowerSwitch, Need::SimSwitch, Need::Cards(1)],
        skip: tessera_conformance::user_pin_known,
        run: extended_apdus,
    },
    Case {
        suite: "ccid_t1",
        name: "time_extension_during_a_long_operation",
        needs: &[
            Need::PowerSwitch,
            Need::SimSwitch,
            Need::Cards(1),
            Need::Transport(Via::Usb),
        ],
        skip: tessera_conformance::user_pin_known,
        run: time_extension,
    },
    Case {
        suite: "ccid_t1",
        name: "ifsd_and_pps_reached",
        needs: &[
            Need::PowerSwitch,
            Need::SimSwitch,
            Need::Cards(1),
            Need::Transport(Via::Usb),
        ],
        skip: not_on_stock,
        run: ifsd_and_pps,
    },
    Case {
        suite: "ccid_t1",
        name: "power_off_and_on",
        needs: &[Need::PowerSwitch, Need::SimSwitch, Need::Cards(1)],
        skip: tessera_conformance::user_pin_known,
        run: power_off_and_on,
    },
    Case {
        suite: "ccid_t1",
        name: "card_pulled_mid_command",
        needs: &[
            Need::PowerSwitch,
            Need::SimSwitch,
            Need::Cards(1),
            Need::HotSwap,
        ],
        skip: tessera_conformance::user_pin_known,
        run: card_pulled,
    },
];

fn not_on_stock(_: &Rig, board: &Board) -> Option<String> {
    (board.firmware == FirmwareProfile::Stock).then(|| {
        "the stock firmware's GetParameters answers defaults whatever the PPS reached \
         (hardware.md §D): the rate cannot be observed from the host"
            .to_owned()
    })
}

/// A data object of 3000 bytes written and read back: command and response each far beyond
/// 255 bytes, in one extended APDU each where the transport carries them (T=1 chaining
/// underneath at TPDU level).
fn extended_apdus(d: &mut Dut) -> Outcome {
    const FID: u16 = 0xCFE1;
    let slot = d.first_card()?;
    let pin = d.user_pin(&slot)?;
    d.boot_with(&slot)?;
    let transport = d.transport(TransportOptions::default())?;
    ensure(transport.supports_extended_length(), || {
        "the transport does not carry extended-length APDUs".into()
    })?;
    let mut session = ScHsm::open(transport)?;
    session.verify(&pin)?;
    let content: Vec<u8> = (0..3000u32).map(|i| (i * 7 + 3) as u8).collect();
    session.write_file(FID, &content)?;
    let back = session.read_file(FID)?;
    session.delete_file(FID)?;
    ensure(back == content, || {
        format!("wrote 3000 bytes, read back {} that differ", back.len())
    })
}

/// RSA-2048 key generation keeps the card busy for about a second or more. The host must be
/// told to keep waiting: at TPDU level (ours and the stock firmware's descriptor) the card's
/// S(WTX request)s travel to the host's T=1 engine as blocks, and on top our firmware sends a
/// CCID time extension every second that a single exchange lasts (libccid waits 3 s per
/// response and restarts on each); the stock firmware sends none (hardware.md §G #78).
fn time_extension(d: &mut Dut) -> Outcome {
    let slot = d.first_card()?;
    let pin = d.user_pin(&slot)?;
    d.boot_with(&slot)?;
    let transport = d.rig.open_transport(&d.board, Via::Usb)?;
    let mut session = ScHsm::open(transport)?;
    session.verify(&pin)?;
    let before = session.transport().link_report()?;
    let key = session.generate_key(KeyAlgorithm::Rsa2048, None, Some("wtx"))?;
    let after = session.transport().link_report()?;
    session.delete_key(key.id)?;
    let ccid = after.time_extensions - before.time_extensions;
    let wtx = after.wtx_requests - before.wtx_requests;
    println!(
        "RSA-2048 generation at the {} level: {wtx} S(WTX) to the host, {ccid} CCID time extension(s)",
        after.exchange.unwrap_or("?")
    );
    ensure(ccid + wtx >= 1, || {
        "the card worked on an RSA-2048 key and the host was never told to wait".into()
    })?;
    if d.profile == FirmwareProfile::Stock {
        ensure(ccid == 0, || {
            format!("the stock firmware sent {ccid} CCID time extension(s); it is documented to send none")
        })?;
    }
    Ok(())
}

/// IFSD 254 on the T=1 link and a PPS above the default rate, as the host sees them.
fn ifsd_and_pps(d: &mut Dut) -> Outcome {
    let slot = d.first_card()?;
    d.boot_with(&slot)?;
    let mut transport = d.rig.open_transport(&d.board, Via::Usb)?;
    let atr = transport.atr()?;
    let report = transport.link_report()?;
    println!("ATR {atr:02X?}; link {report:?}");
    let fi_di = report
        .findex_dindex
        .ok_or_else(|| Failed("the reader reported no T=1 parameters".into()))?;
    ensure(fi_di != 0x11 && fi_di != 0x01, || {
        format!("bmFindexDindex {fi_di:02X}: the PPS did not raise the rate above the default")
    })?;
    // TA1 of the ATR (present when bit 4 of T0 is set) is the most the card allows.
    let ta1 = (atr.get(1).is_some_and(|t0| t0 & 0x10 != 0))
        .then(|| atr.get(2).copied())
        .flatten();
    if let Some(ta1) = ta1 {
        ensure(fi_di & 0x0F <= ta1 & 0x0F, || {
            format!("bmFindexDindex {fi_di:02X} asks for a higher D than the card's TA1 {ta1:02X}")
        })?;
    }
    if report.exchange == Some("TPDU") {
        let (_, ifsd) = report
            .ifsc_ifsd
            .ok_or_else(|| Failed("TPDU level without T=1 sizes".into()))?;
        ensure(ifsd == 254, || format!("IFSD {ifsd}, expected 254"))?;
    }
    // A response longer than IFSD still arrives whole (chained blocks).
    let mut session = ScHsm::open(transport)?;
    let certs = session.device_certificates()?;
    ensure(certs.raw.len() > 254, || {
        format!("the device certificates are only {} bytes", certs.raw.len())
    })?;
    Ok(())
}

/// The card powered off and on through CCID (a reset), then the board power-cycled: each time
/// the verified state is gone, the card answers again, and the old transport is dead after
/// the board's power cycle.
fn power_off_and_on(d: &mut Dut) -> Outcome {
    let slot = d.first_card()?;
    let pin = d.user_pin(&slot)?;
    d.boot_with(&slot)?;
    let mut session = d.session()?;
    session.verify(&pin)?;
    let atr = session.transport().atr()?;
    session.transport().reset()?;
    let mut session = Session::open(session.into_transport())?;
    let after_reset = session.pin_status(PinRole::User)?;
    ensure(after_reset != PinStatus::Verified, || {
        "the PIN stayed verified across a card reset".into()
    })?;
    ensure(session.transport().atr()? == atr, || {
        "the ATR changed across a reset".into()
    })?;
    d.power_cycle()?;
    let gone = session.pin_status(PinRole::User);
    ensure(gone.is_err(), || {
        "a transport opened before the board's power cycle still works".into()
    })?;
    let mut session = d.session()?;
    let status = session.pin_status(PinRole::User)?;
    ensure(matches!(status, PinStatus::TriesLeft { .. }), || {
        format!("after the power cycle the user PIN is {status:?}")
    })?;
    session.verify(&pin)?;
    Ok(())
}

/// The card pulled in the middle of a long command: GENERATE ASYMMETRIC KEY PAIR for
/// RSA-2048 (a second or more on the card) is sent, and the card leaves 200 ms later, far
/// beyond the command's transfer and far before its answer. The command fails (never a
/// success, never a hang); after the card is put back and the board power-cycled, the card
/// works with its PIN counter intact.
fn card_pulled(d: &mut Dut) -> Outcome {
    let slot = d.first_card()?;
    let pin = d.user_pin(&slot)?;
    d.boot_with(&slot)?;
    let mut session = d.session()?;
    session.verify(&pin)?;
    // Everything but the long command itself first: a free key id and the request's CHR.
    let used: Vec<u8> = session.list_keys()?.iter().map(|k| k.id).collect();
    let id = (1..=255u8)
        .rev()
        .find(|id| !used.contains(id))
        .ok_or_else(|| Failed("the card has no free key id".into()))?;
    let chr = format!("{}00001", session.serial()?);
    let template = key_generation_template(KeyAlgorithm::Rsa2048, chr.as_bytes());
    // Extended length (the whole response in one answer), as tessera-sc-hsm sends it.
    let repr = CommandRepr::new(Cla(0x00), 0x46, id, 0x00)
        .with_data(&template)
        .with_ne(65_536)
        .with_extended();
    let mut command = vec![0u8; repr.buffer_len()];
    let len = repr
        .emit(&mut command)
        .map_err(|e| Failed(format!("encoding GENERATE: {e:?}")))?;
    command.truncate(len);
    d.rig.pull_sim(&d.board, Duration::from_millis(200))?;
    let answer = session.transport().transmit(&command);
    drop(session);
    match &answer {
        Ok(response) if response.ends_with(&[0x90, 0x00]) => {
            return Err(Failed(format!(
                "key generation succeeded ({} bytes) although the card was pulled",
                response.len()
            )))
        }
        Ok(response) => println!(
            "the command failed as it must: status {:02X?}",
            response.get(response.len().saturating_sub(2)..)
        ),
        Err(e) => println!("the command failed as it must: {e}"),
    }
    d.rig.power_off(&d.board)?;
    d.boot_with(&slot)?;
    let mut session = d.session()?;
    let status = session.pin_status(PinRole::User)?;
    ensure(matches!(status, PinStatus::TriesLeft { .. }), || {
        format!("after the pull the user PIN is {status:?}")
    })?;
    session.verify(&pin)?;
    // A key the card may have finished and kept (a real card could) is removed.
    if session.list_keys()?.iter().any(|k| k.id == id) {
        session.delete_key(id)?;
    }
    Ok(())
}

//! USART1 in smart-card mode, register by register. Everything that touches a USART1, AFIO or
//! GPIOB register for the card line is here; section numbers are RM0008 (STM32F101xx to
//! STM32F107xx reference manual, Rev 21).
//!
//! The register blocks come from `embassy_stm32::pac` (stm32-metapac), whose accessors are safe:
//! this module needs no `unsafe`.

use embassy_stm32::pac;
use embassy_stm32::pac::afio::vals::SwjCfg;
use embassy_stm32::pac::usart::vals::{Cpha, Cpol, Ps, Stop, M0};

use crate::line_state::{CharOutcome, LineState};

const USART: pac::usart::Usart = pac::USART1;

/// §9.3.8 USART alternate function remapping, §9.4.2 AFIO_MAPR: USART1_REMAP = 1 puts TX on PB6
/// (and RX on PB7, which smart-card mode does not use). SWJ_CFG is write-only and reads back
/// undefined, so every write of MAPR sets it again: 010, JTAG-DP disabled and SW-DP enabled
/// (§9.3.5), which frees PA15, PB3 and PB4 for the board.
pub(super) fn remap_usart1_to_pb6() {
    pac::AFIO.mapr().modify(|w| {
        w.set_swj_cfg(SwjCfg::JTAG_DISABLE);
        w.set_usart1_remap(true);
    });
}

/// §9.2.5 GPIOx_BSRR: switch card VCC, PB4 and PB5 in parallel, with **one** write, so the two
/// outputs never drive the shared net against each other.
pub(super) fn set_vcc(on: bool) {
    pac::GPIOB.bsrr().write(|w| {
        if on {
            w.set_bs(4, true);
            w.set_bs(5, true);
        } else {
            w.set_br(4, true);
            w.set_br(5, true);
        }
    });
}

/// Configure USART1 for smart-card mode without enabling it (§27.3.11, "Smartcard"):
///
/// - CR1 (§27.6.4): M = 1 (9 bits: 8 data + parity), PCE = 1, PS = 0 (even parity, ISO/IEC
///   7816-3:2006 §7.2), UE, TE and RE off for now;
/// - CR2 (§27.6.5): STOP = 11, 1.5 stop bits for both directions (§27.3.3: the receiver samples
///   the NACK in the 1.5 stop bits when transmitting; ST's smart-card application note AN2598
///   uses 1.5 too), CLKEN = 1 (CK outputs the card clock), CPOL = 0, CPHA = 0, LBCL = 0 (the
///   clock runs continuously in smart-card mode; they only matter for synchronous mode);
///   LINEN = 0 (required in smart-card mode);
/// - CR3 (§27.6.6): SCEN = 1, NACK as given, HDSEL = 0 and IREN = 0 (required in smart-card
///   mode);
/// - GTPR (§27.6.7): PSC = `psc` (card clock = PCLK2 / (2 × PSC)), GT = `guard_time`;
/// - BRR (§27.6.3): `brr`.
pub(super) fn configure(psc: u8, brr: u16, guard_time: u8, nack: bool) {
    USART.cr1().write(|w| {
        w.set_m0(M0::BIT9);
        w.set_pce(true);
        w.set_ps(Ps::EVEN);
    });
    USART.cr2().write(|w| {
        w.set_stop(Stop::STOP1P5);
        w.set_clken(true);
        w.set_cpol(Cpol::LOW);
        w.set_cpha(Cpha::FIRST);
        w.set_lbcl(false);
        w.set_linen(false);
    });
    USART.cr3().write(|w| {
        w.set_scen(true);
        w.set_nack(nack);
        w.set_hdsel(false);
        w.set_iren(false);
    });
    USART.gtpr().write(|w| {
        w.set_psc(psc);
        w.set_gt(guard_time);
    });
    USART.brr().write(|w| w.set_brr(brr));
}

/// CR1 (§27.6.4): UE, TE, RE and RXNEIE on: the card clock starts on CK, the line is in
/// reception, and every received character (and overrun) interrupts. TCIE stays off until a
/// transmission needs it.
pub(super) fn enable() {
    // Drop anything latched while disabled: SR then DR clears RXNE, PE, FE, NE, ORE (§27.6.1).
    let _ = USART.sr().read();
    let _ = USART.dr().read();
    USART.cr1().modify(|w| {
        w.set_ue(true);
        w.set_te(true);
        w.set_re(true);
        w.set_rxneie(true);
        w.set_tcie(false);
    });
}

/// CR1 (§27.6.4): UE, TE, RE and the interrupts off; the card clock stops.
pub(super) fn disable() {
    USART.cr1().modify(|w| {
        w.set_rxneie(false);
        w.set_tcie(false);
        w.set_te(false);
        w.set_re(false);
        w.set_ue(false);
    });
}

/// BRR (§27.6.3). RM0008: the baud counters take a new value at once, so change it only between
/// exchanges (the driver's callers do: PPS is followed by a pause).
pub(super) fn set_brr(brr: u16) {
    USART.brr().write(|w| w.set_brr(brr));
}

/// GTPR.GT (§27.6.7), keeping PSC.
pub(super) fn set_guard_time(guard_time: u8) {
    USART.gtpr().modify(|w| w.set_gt(guard_time));
}

/// CR3.NACK (§27.6.6): send the error signal on a parity error (character repetition, T=0).
pub(super) fn set_nack(on: bool) {
    USART.cr3().modify(|w| w.set_nack(on));
}

/// CR1.TCIE (§27.6.4): ask for an interrupt at TC (the guard time after a character has
/// elapsed), or not.
pub(super) fn kick_transmitter() {
    USART.cr1().modify(|w| w.set_tcie(true));
}

/// The USART1 interrupt (§27.4, "USART interrupts"): runs the line state machine on what the
/// status register shows. Returns what the driver's wakers should know.
///
/// - RXNE (with PE and FE of the same frame) and ORE: SR was read first, so reading DR clears
///   them all (§27.6.1). With M = 1 and PCE = 1, DR bit 8 is the received parity bit and bits
///   7:0 are the character (§27.6.2).
/// - TC: write the next character if the state machine has one (writing DR after reading SR
///   clears TC, §27.6.1); TCIE stays on only while the transmitter waits for TC, so a TC that
///   comes before the previous echo does not interrupt again and again.
pub(super) fn on_interrupt(state: &mut LineState) -> Wake {
    let mut wake = Wake::default();
    let sr = USART.sr().read();
    if sr.rxne() || sr.ore() {
        let dr = USART.dr().read().dr();
        if sr.ore() {
            state.on_overrun();
            wake.rx = true;
        }
        if sr.rxne() {
            match state.on_char(dr as u8, sr.pe(), sr.fe()) {
                CharOutcome::Queued => wake.rx = true,
                CharOutcome::TxFinished => wake.tx = true,
                CharOutcome::Echo | CharOutcome::Dropped => {}
            }
            wake.activity = true;
        }
    }
    if state.wants_tc() && USART.sr().read().tc() {
        if let Some(byte) = state.next_to_send() {
            USART.dr().write(|w| w.set_dr(u16::from(byte)));
        }
    }
    let tcie = state.wants_tc();
    USART.cr1().modify(|w| w.set_tcie(tcie));
    wake
}

/// What an interrupt changed, for the driver's wakers.
#[derive(Default, Clone, Copy)]
pub(super) struct Wake {
    /// Something was queued for the reader.
    pub rx: bool,
    /// A transmission finished.
    pub tx: bool,
    /// A character crossed the line (received or echoed): time-stamp it.
    pub activity: bool,
}

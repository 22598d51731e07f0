//! The SmartCard-HSM applet: command APDU in, response APDU out, state in [`CardState`].
//!
//! Behaviour follows `../shared/docs/sc-hsm-protocol.md` (the section is cited at each command).
//! Where the facts say UNKNOWN or GUESS, the choice is a field of [`AppletConfig`] and is listed,
//! with every deliberate difference from the real card, in `crates/card/FIDELITY.md`.
//!
//! Persistence: every change of [`CardState`] is one atomic commit of the whole card image
//! ([`Storage::commit`]). A PIN's retry counter is decremented and committed *before* the PIN is
//! compared (§4.2), so cutting the power at any point never gains a guess. When a commit fails
//! (the power was cut), [`Applet::process`] returns [`MemoryError`] and the card answers nothing.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use subtle::ConstantTimeEq;
use tessera_apdu::Command;
use zeroize::Zeroizing;

use crate::crypto::{self, EcdhResultForm, KeySpec, PrivateKey, SignAlgorithm};
use crate::cvc;
use crate::memory::{MemoryError, Storage};
use crate::state::{CardState, DkekState, KeyObject, PinState};

/// The SmartCard-HSM application identifier (§1.1).
pub const AID: [u8; 11] = [
    0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01,
];

/// The SO-PIN's retry counter: fixed at 15 (§4.1).
pub const SO_PIN_TRIES: u8 = 15;

/// EF.C_DevAut: device CVC || DICA CVC (§1.4).
pub const EF_DEVICE_CERTIFICATES: u16 = 0x2F02;
/// Staging EF for UNWRAP KEY "new style" (§2.15).
pub const EF_UNWRAP_STAGING: u16 = 0x2F10;

/// Status words the applet answers with (ISO 7816-4 §5.6 and §2, §4 of the protocol notes).
mod sw {
    pub const OK: u16 = 0x9000;
    pub const END_OF_FILE: u16 = 0x6282;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const SECURITY_STATUS: u16 = 0x6982;
    pub const BLOCKED: u16 = 0x6983;
    pub const REFERENCE_DATA_NOT_USABLE: u16 = 0x6984;
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    pub const COMMAND_NOT_ALLOWED: u16 = 0x6986;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const FUNCTION_NOT_SUPPORTED: u16 = 0x6A81;
    pub const FILE_NOT_FOUND: u16 = 0x6A82;
    pub const INCORRECT_P1P2: u16 = 0x6A86;
    pub const REFERENCED_DATA_NOT_FOUND: u16 = 0x6A88;
    pub const WRONG_P1P2: u16 = 0x6B00;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    pub const MEMORY_FAILURE: u16 = 0x6581;

    /// 63Cx: x tries left.
    pub fn tries_left(n: u8) -> u16 {
        0x63C0 | u16::from(n.min(15))
    }
}

/// How the applet answers where the facts are UNKNOWN or the real card differs by version.
/// Every field is listed in FIDELITY.md.
#[derive(Debug, Clone)]
pub struct AppletConfig {
    /// Applet version reported in the FCP (tag 85). GUESS 3.5: "SmartCard-HSM Version 3.5 on
    /// JCOP 3" is what a Nitrokey HSM 2 reports (§1.2, NK-4374).
    pub version: (u8, u8),
    /// Answer to the last wrong PIN try: `true` gives 6983 (pico; tests show 63C2, 63C1, 6983),
    /// `false` gives 63C0. UNKNOWN for the real card (§4.2); OpenSC treats both as blocked.
    pub last_try_answers_blocked: bool,
    /// ECDH result form (§2.13): UNKNOWN for the real card; pico returns `04 || X`.
    pub ecdh_result: EcdhResultForm,
    /// Prefix of the device CHR (§1.4). Not a Nitrokey prefix, so a virtual card is never
    /// mistaken for a real one.
    pub chr_prefix: String,
}

impl Default for AppletConfig {
    fn default() -> Self {
        Self {
            version: (3, 5),
            last_try_answers_blocked: true,
            ecdh_result: EcdhResultForm::XOnly,
            chr_prefix: "ZZTS".to_owned(),
        }
    }
}

/// Which PIN a command refers to (P2 of VERIFY, CHANGE REFERENCE DATA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PinRef {
    User,
    So,
}

/// The result of presenting a PIN.
enum PinCheck {
    Correct,
    /// Wrong: the status word to answer (63Cx or 6983).
    Wrong(u16),
    /// The PIN is blocked (counter 0): 6983, nothing compared.
    Blocked,
    /// The card is not initialised: 6A88.
    NotInitialised,
}

/// What a command handler answers: data and a status word.
struct Reply {
    data: Vec<u8>,
    sw: u16,
}

impl Reply {
    fn sw(sw: u16) -> Self {
        Self {
            data: Vec::new(),
            sw,
        }
    }
    fn ok(data: Vec<u8>) -> Self {
        Self { data, sw: sw::OK }
    }
}

/// A handler's outcome: a reply, or the power was lost during a write.
type Outcome = Result<Reply, MemoryError>;

/// The applet with its card memory.
pub struct Applet<S: Storage> {
    storage: S,
    state: CardState,
    config: AppletConfig,
    rng: ChaCha20Rng,
    // Transient state, cleared by a reset (and partly by SELECT).
    selected: bool,
    user_authenticated: bool,
    current_ef: Option<u16>,
    /// Command chaining (ISO 7816-4 §5.3.3): header and data gathered so far.
    chain: Option<(u8, u8, u8, Vec<u8>)>,
    /// Response data not yet fetched with GET RESPONSE.
    pending: Vec<u8>,
}

impl<S: Storage> std::fmt::Debug for Applet<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applet")
            .field("state", &self.state)
            .field("selected", &self.selected)
            .field("user_authenticated", &self.user_authenticated)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Applet<S> {
    /// Power the card up: load its memory, or give it a factory identity derived from `seed`
    /// and write it (a new card). `rng_seed` seeds the card's random number generator for this
    /// power cycle (a real card's TRNG; tests pass fixed seeds, `serve` passes OS randomness).
    pub fn power_up(
        mut storage: S,
        config: AppletConfig,
        seed: [u8; 32],
        rng_seed: [u8; 32],
    ) -> Result<Self, MemoryError> {
        let state = match storage.load()? {
            Some(image) => CardState::from_image(&image)?,
            None => {
                let identity = cvc::DeviceIdentity::generate(seed, &config.chr_prefix)
                    .map_err(|e| MemoryError::Payload(e.to_string()))?;
                let state = CardState::factory(
                    identity.device_key().to_bytes(),
                    identity.ef_2f02().to_vec(),
                );
                storage.commit(&state.to_image())?;
                state
            }
        };
        Ok(Self {
            storage,
            state,
            config,
            rng: ChaCha20Rng::from_seed(rng_seed),
            selected: false,
            user_authenticated: false,
            current_ef: None,
            chain: None,
            pending: Vec::new(),
        })
    }

    /// The committed card state (for tests and status tools; secrets stay redacted in `Debug`).
    pub fn state(&self) -> &CardState {
        &self.state
    }

    /// The serial number: the device certificate's CHR without its 5-character sequence
    /// number (sc-hsm-protocol.md §1.4).
    pub fn serial(&self) -> Option<String> {
        let (device, _) = cvc::Certificate::parse_prefix(&self.state.device_certificates).ok()?;
        let chr = std::str::from_utf8(device.chr()).ok()?;
        chr.get(..chr.len().checked_sub(5)?).map(str::to_owned)
    }

    /// The storage (e.g. to power the card up again on the same memory).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// A warm or cold reset: the applet is deselected and every authentication is lost.
    pub fn reset(&mut self) {
        self.selected = false;
        self.user_authenticated = false;
        self.current_ef = None;
        self.chain = None;
        self.pending.clear();
    }

    /// Process one command APDU and return the response APDU (data and SW1 SW2).
    ///
    /// `Err` means the power was lost during a write: the card says nothing.
    pub fn process(&mut self, apdu: &[u8]) -> Result<Vec<u8>, MemoryError> {
        let reply = self.dispatch(apdu)?;
        let mut out = reply.data;
        out.extend_from_slice(&reply.sw.to_be_bytes());
        Ok(out)
    }

    fn dispatch(&mut self, apdu: &[u8]) -> Outcome {
        let command = match Command::new_checked(apdu) {
            Ok(c) => c,
            Err(_) => return Ok(Reply::sw(sw::WRONG_LENGTH)),
        };
        let cla = command.cla().0;
        let ins = command.ins();
        let (p1, p2) = (command.p1(), command.p2());
        if cla & 0x0C != 0 {
            // Secure messaging (§2.19) is not implemented: see FIDELITY.md.
            return Ok(Reply::sw(sw::CLA_NOT_SUPPORTED));
        }
        if !matches!(cla & !0x13, 0x00 | 0x80) {
            return Ok(Reply::sw(sw::CLA_NOT_SUPPORTED));
        }
        let ne = command.ne();
        // Command chaining, ISO 7816-4 §5.3.3: gather the parts, answer 9000 to all but the last.
        let chained = cla & 0x10 != 0;
        let data: Vec<u8>;
        match (&mut self.chain, chained) {
            (None, true) => {
                self.chain = Some((ins, p1, p2, command.data().to_vec()));
                return Ok(Reply::sw(sw::OK));
            }
            (Some((cins, cp1, cp2, buf)), more) => {
                if (*cins, *cp1, *cp2) != (ins, p1, p2) {
                    self.chain = None;
                    return Ok(Reply::sw(sw::CONDITIONS_NOT_SATISFIED));
                }
                if buf.len() + command.data().len() > 0x1_0000 {
                    self.chain = None;
                    return Ok(Reply::sw(sw::WRONG_LENGTH));
                }
                buf.extend_from_slice(command.data());
                if more {
                    return Ok(Reply::sw(sw::OK));
                }
                data = self.chain.take().map(|c| c.3).unwrap_or_default();
            }
            (None, false) => data = command.data().to_vec(),
        }
        if ins != 0xC0 {
            self.pending.clear();
        }
        let request = Request {
            cla: cla & !0x10,
            ins,
            p1,
            p2,
            data: &data,
            ne,
        };
        let reply = self.execute(&request)?;
        Ok(self.limit_to_ne(reply, &request))
    }

    /// Response data longer than the command's Ne is held back and announced with 61xx
    /// (ISO 7816-4 §5.3.4), to be fetched with GET RESPONSE.
    fn limit_to_ne(&mut self, mut reply: Reply, request: &Request<'_>) -> Reply {
        // Ne = 0 (no Le field): the host set no limit; answer what there is.
        if request.ne != 0
            && reply.data.len() > request.ne
            && (reply.sw == sw::OK || reply.sw == sw::END_OF_FILE)
        {
            let rest = reply.data.split_off(request.ne);
            let announce = u16::try_from(rest.len().min(256)).unwrap_or(0) & 0xFF;
            self.pending = rest;
            reply.sw = 0x6100 | announce;
        }
        reply
    }

    fn execute(&mut self, r: &Request<'_>) -> Outcome {
        if r.ins == 0xA4 {
            return Ok(self.select(r));
        }
        if !self.selected {
            // The applet is not default-selected (§1.1); NK-2169: 6D00 means "not selected".
            return Ok(Reply::sw(sw::INS_NOT_SUPPORTED));
        }
        match (r.cla, r.ins) {
            (0x00, 0x20) => self.verify(r),
            (0x00, 0x24) => self.change_reference_data(r),
            (0x00, 0x2C) => self.reset_retry_counter(r),
            (0x80, 0x50) => self.initialize(r),
            (0x80, 0x52) => self.dkek_share(r),
            (0x80, 0x58) => Ok(self.enumerate_objects(r)),
            (0x00, 0xB0) | (0x00, 0xB1) => Ok(self.read_binary(r)),
            (0x00, 0xD7) => self.update_binary(r),
            (0x00, 0xE4) => self.delete_file(r),
            (0x00, 0x46) => self.generate_key_pair(r),
            (0x80, 0x68) => self.sign(r),
            (0x80, 0x62) => self.decipher(r),
            (0x00 | 0x80, 0x84) => Ok(self.get_challenge(r)),
            (0x80, 0x72) => self.wrap_key(r),
            (0x80, 0x74) => self.unwrap_key(r),
            (0x00, 0xC0) => Ok(self.get_response(r)),
            (0x00 | 0x80, _) => Ok(Reply::sw(sw::INS_NOT_SUPPORTED)),
            _ => Ok(Reply::sw(sw::CLA_NOT_SUPPORTED)),
        }
    }

    // ---- persistence -------------------------------------------------------------------

    /// Commit `next` as the new card state. On success it becomes the state; on a power cut
    /// the old state stays in memory too (the card is dead until powered up again anyway).
    fn commit(&mut self, next: CardState) -> Result<(), MemoryError> {
        self.storage.commit(&next.to_image())?;
        self.state = next;
        Ok(())
    }

    // ---- SELECT (§1.3, §2.1) -----------------------------------------------------------

    fn select(&mut self, r: &Request<'_>) -> Reply {
        match r.p1 {
            0x04 => {
                if r.data != AID {
                    // Another applet (or none): the SmartCard-HSM is deselected (§6.1: 6A82).
                    self.selected = false;
                    self.user_authenticated = false;
                    return Reply::sw(sw::FILE_NOT_FOUND);
                }
                // SELECT resets the authentication state (§1.3, NK-2169).
                self.selected = true;
                self.user_authenticated = false;
                self.current_ef = None;
                if r.p2 == 0x0C {
                    return Reply::sw(sw::OK);
                }
                Reply::ok(self.applet_fcp())
            }
            0x00 | 0x02 if self.selected => {
                let Some(fid) = fid_of(r.data) else {
                    return Reply::sw(sw::WRONG_DATA);
                };
                let Some(size) = self.file_size(fid) else {
                    return Reply::sw(sw::FILE_NOT_FOUND);
                };
                self.current_ef = Some(fid);
                if r.p2 == 0x0C {
                    return Reply::sw(sw::OK);
                }
                // FCP: 80 size, 82 FDB (transparent EF), 83 FID (ISO 7816-4 §7.4.3).
                let size = u16::try_from(size).unwrap_or(u16::MAX).to_be_bytes();
                let fid = fid.to_be_bytes();
                Reply::ok(vec![
                    0x62, 0x0B, 0x80, 0x02, size[0], size[1], 0x82, 0x01, 0x01, 0x83, 0x02, fid[0],
                    fid[1],
                ])
            }
            0x00 | 0x02 => Reply::sw(sw::INS_NOT_SUPPORTED),
            _ => Reply::sw(sw::INCORRECT_P1P2),
        }
    }

    /// The applet's FCP: `62 L | 82 01 38 | 84 0B AID | 85 05 opts_hi opts_lo type major minor`.
    /// The exact bytes of the real card are UNKNOWN (§9 q1); tag 85 follows §1.3's layout that
    /// OpenSC reads (V[n-4] options low byte, V[n-3] type 00 "applet for JCOP", V[n-2..] version).
    fn applet_fcp(&self) -> Vec<u8> {
        let options = self.state.options.to_be_bytes();
        let (major, minor) = self.config.version;
        let mut body = vec![0x82, 0x01, 0x38, 0x84, AID.len() as u8];
        body.extend_from_slice(&AID);
        body.extend_from_slice(&[0x85, 0x05, options[0], options[1], 0x00, major, minor]);
        let mut fcp = vec![0x62, body.len() as u8];
        fcp.extend_from_slice(&body);
        fcp
    }

    fn file_size(&self, fid: u16) -> Option<usize> {
        if fid == EF_DEVICE_CERTIFICATES {
            return Some(self.state.device_certificates.len());
        }
        self.state.files.get(&fid).map(Vec::len)
    }

    // ---- PINs (§4) ---------------------------------------------------------------------

    fn pin(&self, which: PinRef) -> Option<&PinState> {
        match which {
            PinRef::User => self.state.user_pin.as_ref(),
            PinRef::So => self.state.so_pin.as_ref(),
        }
    }

    /// Present a PIN: decrement and commit the counter, then compare; a correct PIN restores
    /// the counter (a second commit). §4.2 counter rules.
    fn check_pin(&mut self, which: PinRef, presented: &[u8]) -> Result<PinCheck, MemoryError> {
        let Some(pin) = self.pin(which) else {
            return Ok(PinCheck::NotInitialised);
        };
        if pin.tries_left == 0 {
            return Ok(PinCheck::Blocked);
        }
        let correct: bool =
            pin.value.len() == presented.len() && bool::from(pin.value.as_slice().ct_eq(presented));
        // Decrement first, persist, and only then act on the comparison.
        let mut next = self.state.clone();
        let left = {
            let p = pin_mut(&mut next, which);
            p.tries_left -= 1;
            p.tries_left
        };
        self.commit(next)?;
        if correct {
            let mut next = self.state.clone();
            let p = pin_mut(&mut next, which);
            p.tries_left = p.max_tries;
            self.commit(next)?;
            return Ok(PinCheck::Correct);
        }
        Ok(PinCheck::Wrong(self.wrong_pin_sw(left)))
    }

    fn wrong_pin_sw(&self, left: u8) -> u16 {
        if left == 0 && self.config.last_try_answers_blocked {
            sw::BLOCKED
        } else {
            sw::tries_left(left)
        }
    }

    fn pin_status(&self, which: PinRef) -> u16 {
        match self.pin(which) {
            None => sw::REFERENCED_DATA_NOT_FOUND,
            Some(_) if which == PinRef::User && self.state.transport_pin => {
                sw::REFERENCE_DATA_NOT_USABLE
            }
            Some(p) if p.tries_left == 0 => sw::BLOCKED,
            Some(_) if which == PinRef::User && self.user_authenticated => sw::OK,
            Some(p) => sw::tries_left(p.tries_left),
        }
    }

    /// VERIFY (§2.2, §4.2).
    fn verify(&mut self, r: &Request<'_>) -> Outcome {
        if r.p1 != 0x00 {
            return Ok(Reply::sw(sw::INCORRECT_P1P2));
        }
        let which = match r.p2 {
            0x81 => PinRef::User,
            0x88 => PinRef::So,
            // Biometric templates: none on this card, so OpenSC sees no PIN pad (§2.2).
            0x85 | 0x86 => return Ok(Reply::sw(sw::REFERENCED_DATA_NOT_FOUND)),
            _ => return Ok(Reply::sw(sw::INCORRECT_P1P2)),
        };
        if r.data.is_empty() {
            return Ok(Reply::sw(self.pin_status(which)));
        }
        if self.pin(which).is_none() {
            return Ok(Reply::sw(sw::REFERENCED_DATA_NOT_FOUND));
        }
        if which == PinRef::User {
            // A presentation first drops the current authentication (pico; see FIDELITY.md).
            self.user_authenticated = false;
            if self.state.transport_pin {
                return Ok(Reply::sw(sw::REFERENCE_DATA_NOT_USABLE));
            }
            if !(6..=16).contains(&r.data.len()) {
                // Cannot be the PIN: no try is spent (GUESS, see FIDELITY.md).
                return Ok(Reply::sw(sw::WRONG_LENGTH));
            }
        } else if r.data.len() != 8 {
            return Ok(Reply::sw(sw::WRONG_LENGTH));
        }
        Ok(Reply::sw(match self.check_pin(which, r.data)? {
            PinCheck::Correct => {
                // The SO-PIN is not a login role (GH-1318): a correct one grants nothing.
                self.user_authenticated = which == PinRef::User;
                sw::OK
            }
            PinCheck::Wrong(sw) => sw,
            PinCheck::Blocked => sw::BLOCKED,
            PinCheck::NotInitialised => sw::REFERENCED_DATA_NOT_FOUND,
        }))
    }

    /// CHANGE REFERENCE DATA (§2.3, §4.4).
    fn change_reference_data(&mut self, r: &Request<'_>) -> Outcome {
        if r.p1 != 0x00 {
            return Ok(Reply::sw(sw::INCORRECT_P1P2));
        }
        let which = match r.p2 {
            0x81 => PinRef::User,
            0x88 => PinRef::So,
            _ => return Ok(Reply::sw(sw::INCORRECT_P1P2)),
        };
        let Some(current) = self.pin(which) else {
            return Ok(Reply::sw(sw::REFERENCED_DATA_NOT_FOUND));
        };
        // The card splits old || new by the stored length of the current PIN (§2.3).
        let Some((old, new)) = r.data.split_at_checked(current.value.len()) else {
            return Ok(Reply::sw(sw::WRONG_LENGTH));
        };
        let new_ok = match which {
            PinRef::User => (6..=16).contains(&new.len()),
            PinRef::So => new.len() == 8,
        };
        if !new_ok {
            return Ok(Reply::sw(sw::WRONG_LENGTH));
        }
        let new = Zeroizing::new(new.to_vec());
        match self.check_pin(which, old)? {
            PinCheck::Correct => {
                let mut next = self.state.clone();
                let p = pin_mut(&mut next, which);
                p.value = new;
                p.tries_left = p.max_tries;
                if which == PinRef::User {
                    // Leaving transport-PIN state (§4.4).
                    next.transport_pin = false;
                }
                self.commit(next)?;
                if which == PinRef::User {
                    self.user_authenticated = true;
                }
                Ok(Reply::sw(sw::OK))
            }
            PinCheck::Wrong(sw) => Ok(Reply::sw(sw)),
            PinCheck::Blocked => Ok(Reply::sw(sw::BLOCKED)),
            PinCheck::NotInitialised => Ok(Reply::sw(sw::REFERENCED_DATA_NOT_FOUND)),
        }
    }

    /// RESET RETRY COUNTER (§2.4): P1 00 = SO-PIN || new PIN, P1 01 = SO-PIN only.
    fn reset_retry_counter(&mut self, r: &Request<'_>) -> Outcome {
        if r.p2 != 0x81 {
            return Ok(Reply::sw(sw::INCORRECT_P1P2));
        }
        if !self.state.is_initialised() {
            return Ok(Reply::sw(sw::REFERENCED_DATA_NOT_FOUND));
        }
        if self.state.options & 0x0001 == 0 {
            // RESET RETRY COUNTER not enabled at INITIALIZE (pico 6986; GUESS for the real card).
            return Ok(Reply::sw(sw::COMMAND_NOT_ALLOWED));
        }
        let (so, new_pin) = match r.p1 {
            0x00 => match r.data.split_at_checked(8) {
                Some((so, pin)) if (6..=16).contains(&pin.len()) => (so, Some(pin)),
                _ => return Ok(Reply::sw(sw::WRONG_LENGTH)),
            },
            0x01 if r.data.len() == 8 => (r.data, None),
            0x01 => return Ok(Reply::sw(sw::WRONG_LENGTH)),
            _ => return Ok(Reply::sw(sw::INCORRECT_P1P2)),
        };
        let new_pin = new_pin.map(|p| Zeroizing::new(p.to_vec()));
        match self.check_pin(PinRef::So, so)? {
            PinCheck::Correct => {
                let mut next = self.state.clone();
                if let Some(user) = next.user_pin.as_mut() {
                    user.tries_left = user.max_tries;
                    if let Some(pin) = new_pin {
                        user.value = pin;
                        next.transport_pin = false;
                    }
                }
                self.commit(next)?;
                Ok(Reply::sw(sw::OK))
            }
            PinCheck::Wrong(sw) => Ok(Reply::sw(sw)),
            PinCheck::Blocked => Ok(Reply::sw(sw::BLOCKED)),
            PinCheck::NotInitialised => Ok(Reply::sw(sw::REFERENCED_DATA_NOT_FOUND)),
        }
    }

    // ---- INITIALIZE DEVICE (§2.5, §5.1) ------------------------------------------------

    fn initialize(&mut self, r: &Request<'_>) -> Outcome {
        if (r.p1, r.p2) != (0, 0) {
            return Ok(Reply::sw(sw::INCORRECT_P1P2));
        }
        let Ok(fields) = parse_flat_tlv(r.data) else {
            return Ok(Reply::sw(sw::WRONG_DATA));
        };
        let get = |tag: u16| fields.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
        let options = match get(0x80) {
            Some([hi, lo]) => u16::from_be_bytes([*hi, *lo]),
            Some(_) => return Ok(Reply::sw(sw::WRONG_DATA)),
            None => 0x0001,
        };
        let (Some(user_pin), Some(so_pin)) = (get(0x81), get(0x82)) else {
            return Ok(Reply::sw(sw::WRONG_DATA));
        };
        if !(6..=16).contains(&user_pin.len()) || so_pin.len() != 8 {
            return Ok(Reply::sw(sw::WRONG_DATA));
        }
        let retries = match get(0x91) {
            Some([n]) if (1..=10).contains(n) => *n,
            Some(_) => return Ok(Reply::sw(sw::WRONG_DATA)),
            None => 3,
        };
        let dkek_shares = match get(0x92) {
            Some([n]) => Some(*n),
            Some(_) => return Ok(Reply::sw(sw::WRONG_DATA)),
            None => None,
        };
        if get(0x93).is_some() {
            // Public-key authentication is not implemented (FIDELITY.md).
            return Ok(Reply::sw(sw::FUNCTION_NOT_SUPPORTED));
        }
        if self.state.is_initialised() {
            // On an initialised card tag 82 must equal the current SO-PIN; a wrong one costs
            // an SO-PIN try; a blocked SO-PIN refuses (6983, GUESS) (§2.5, §4.6, §5.1).
            match self.check_pin(PinRef::So, so_pin)? {
                PinCheck::Correct => {}
                PinCheck::Wrong(sw) => return Ok(Reply::sw(sw)),
                PinCheck::Blocked => return Ok(Reply::sw(sw::BLOCKED)),
                PinCheck::NotInitialised => return Ok(Reply::sw(sw::REFERENCED_DATA_NOT_FOUND)),
            }
        }
        // Wipe keys, certificates and files; keep the device key and certificate (§5.1).
        let mut next = CardState::factory(
            self.state.device_key.to_vec(),
            self.state.device_certificates.clone(),
        );
        next.so_pin = Some(PinState {
            value: Zeroizing::new(so_pin.to_vec()),
            tries_left: SO_PIN_TRIES,
            max_tries: SO_PIN_TRIES,
        });
        next.user_pin = Some(PinState {
            value: Zeroizing::new(user_pin.to_vec()),
            tries_left: retries,
            max_tries: retries,
        });
        next.options = options;
        next.transport_pin = options & 0x0002 != 0;
        next.dkek = dkek_shares.map(|n| {
            let mut value = Zeroizing::new([0u8; 32]);
            if n == 0 {
                // 00: the card makes a random DKEK of its own (§2.5, tag 92).
                rand_chacha::rand_core::RngCore::fill_bytes(&mut self.rng, value.as_mut());
            }
            DkekState {
                shares_total: n,
                shares_outstanding: n,
                value,
            }
        });
        self.commit(next)?;
        // The session is left authenticated (§4.4, GH-2432).
        self.user_authenticated = true;
        self.current_ef = None;
        Ok(Reply::sw(sw::OK))
    }

    // ---- DKEK (§2.6) -------------------------------------------------------------------

    fn dkek_share(&mut self, r: &Request<'_>) -> Outcome {
        if r.p1 != 0x00 {
            // Key-domain management (P1 01..04) is pico's; not implemented (FIDELITY.md).
            return Ok(Reply::sw(sw::INCORRECT_P1P2));
        }
        if r.p2 != 0x00 {
            return Ok(Reply::sw(sw::INCORRECT_P1P2));
        }
        let Some(dkek) = self.state.dkek.clone() else {
            // Initialised without DKEK: 6A88 (real card v4.0, GH-2647).
            return Ok(Reply::sw(sw::REFERENCED_DATA_NOT_FOUND));
        };
        match r.data.len() {
            0 => {}
            32 => {
                if dkek.shares_outstanding == 0 {
                    return Ok(Reply::sw(sw::CONDITIONS_NOT_SATISFIED));
                }
                let mut next = self.state.clone();
                if let Some(d) = next.dkek.as_mut() {
                    for (v, s) in d.value.iter_mut().zip(r.data) {
                        *v ^= s;
                    }
                    d.shares_outstanding -= 1;
                }
                self.commit(next)?;
            }
            _ => return Ok(Reply::sw(sw::WRONG_LENGTH)),
        }
        let dkek = self.state.dkek.as_ref().unwrap_or(&dkek);
        let mut out = vec![dkek.shares_total, dkek.shares_outstanding];
        out.extend_from_slice(&crypto::kcv(&dkek.value));
        Ok(Reply::ok(out))
    }

    fn dkek_complete(&self) -> Option<&[u8; 32]> {
        match &self.state.dkek {
            Some(d) if d.shares_outstanding == 0 => Some(&d.value),
            _ => None,
        }
    }

    // ---- objects (§2.7 - §2.10) --------------------------------------------------------

    fn enumerate_objects(&self, r: &Request<'_>) -> Reply {
        if (r.p1, r.p2) != (0, 0) {
            return Reply::sw(sw::INCORRECT_P1P2);
        }
        // CC00 (device key) first, then every key and every file (§2.7: the real card lists at
        // least CC, CA and C8; SHE skips CC00, so it is listed).
        let mut out = vec![0xCC, 0x00];
        for id in self.state.keys.keys() {
            out.extend_from_slice(&[0xCC, *id]);
        }
        for fid in self.state.files.keys() {
            out.extend_from_slice(&fid.to_be_bytes());
        }
        Reply::ok(out)
    }

    fn read_binary(&mut self, r: &Request<'_>) -> Reply {
        let (fid, offset) = if r.ins == 0xB0 {
            // Even INS: the current EF, offset in P1 P2 (ISO 7816-4 §11.3.3).
            let Some(fid) = self.current_ef else {
                return Reply::sw(sw::CONDITIONS_NOT_SATISFIED);
            };
            if r.p1 & 0x80 != 0 {
                return Reply::sw(sw::INCORRECT_P1P2);
            }
            (fid, usize::from(u16::from_be_bytes([r.p1, r.p2])))
        } else {
            let fid = u16::from_be_bytes([r.p1, r.p2]);
            let fid = if fid == 0 { self.current_ef } else { Some(fid) };
            let Some(fid) = fid else {
                return Reply::sw(sw::FILE_NOT_FOUND);
            };
            match offset_tlv(r.data) {
                Some(off) => (fid, off),
                None => return Reply::sw(sw::WRONG_LENGTH),
            }
        };
        if fid >> 8 == 0xCC {
            // Key objects are never readable (§3.2).
            return Reply::sw(sw::SECURITY_STATUS);
        }
        if self.file_size(fid).is_some() {
            // A file named in P1 P2 becomes the current EF (ISO 7816-4 §7.2.2).
            self.current_ef = Some(fid);
        }
        if fid >> 8 == 0xCD && !self.user_authenticated {
            return Reply::sw(sw::SECURITY_STATUS);
        }
        let content = if fid == EF_DEVICE_CERTIFICATES {
            &self.state.device_certificates
        } else {
            match self.state.files.get(&fid) {
                Some(c) => c,
                None => return Reply::sw(sw::FILE_NOT_FOUND),
            }
        };
        if offset > content.len() {
            return Reply::sw(sw::WRONG_P1P2);
        }
        let want = if r.ne == 0 { 0x1_0000 } else { r.ne };
        let rest = content.get(offset..).unwrap_or_default();
        let take = rest.len().min(want);
        let data = rest.get(..take).unwrap_or_default().to_vec();
        // End of file before Le bytes: 6282 with what there is (§2.8).
        let sw = if take < want && r.ne != 0 {
            sw::END_OF_FILE
        } else {
            sw::OK
        };
        Reply { data, sw }
    }

    fn update_binary(&mut self, r: &Request<'_>) -> Outcome {
        if !self.user_authenticated {
            return Ok(Reply::sw(sw::SECURITY_STATUS));
        }
        let fid = u16::from_be_bytes([r.p1, r.p2]);
        let fid = if fid == 0 {
            self.current_ef.unwrap_or(0)
        } else {
            fid
        };
        if fid == 0 || fid >> 8 == 0xCC || fid == EF_DEVICE_CERTIFICATES {
            return Ok(Reply::sw(sw::SECURITY_STATUS));
        }
        let Ok(fields) = parse_flat_tlv(r.data) else {
            return Ok(Reply::sw(sw::WRONG_LENGTH));
        };
        let offset = fields.iter().find(|(t, _)| *t == 0x54).map(|(_, v)| *v);
        let content = fields.iter().find(|(t, _)| *t == 0x53).map(|(_, v)| *v);
        let (Some(offset), Some(content)) = (offset, content) else {
            return Ok(Reply::sw(sw::WRONG_LENGTH));
        };
        let Some(offset) = be_offset(offset) else {
            return Ok(Reply::sw(sw::WRONG_LENGTH));
        };
        let mut next = self.state.clone();
        let file = next.files.entry(fid).or_default();
        if offset > file.len() {
            return Ok(Reply::sw(sw::WRONG_P1P2));
        }
        let end = offset + content.len();
        if end > 0xFFFF {
            return Ok(Reply::sw(sw::WRONG_LENGTH));
        }
        if file.len() < end {
            file.resize(end, 0);
        }
        if let Some(dst) = file.get_mut(offset..end) {
            dst.copy_from_slice(content);
        }
        self.commit(next)?;
        // The file written (or created) becomes the current EF (ISO 7816-4 §7.2.2): OpenSC
        // creates a file with its FID, then writes it with P1 P2 = 0000.
        self.current_ef = Some(fid);
        Ok(Reply::sw(sw::OK))
    }

    fn delete_file(&mut self, r: &Request<'_>) -> Outcome {
        if (r.p1, r.p2) != (0x02, 0x00) {
            return Ok(Reply::sw(sw::INCORRECT_P1P2));
        }
        if !self.user_authenticated {
            return Ok(Reply::sw(sw::SECURITY_STATUS));
        }
        let Some(fid) = fid_of(r.data) else {
            return Ok(Reply::sw(sw::WRONG_LENGTH));
        };
        if fid == 0xCC00 || fid == EF_DEVICE_CERTIFICATES {
            return Ok(Reply::sw(sw::SECURITY_STATUS));
        }
        let mut next = self.state.clone();
        let removed = if fid >> 8 == 0xCC {
            next.keys.remove(&((fid & 0xFF) as u8)).is_some()
        } else {
            next.files.remove(&fid).is_some()
        };
        if !removed {
            return Ok(Reply::sw(sw::FILE_NOT_FOUND));
        }
        if self.current_ef == Some(fid) {
            self.current_ef = None;
        }
        self.commit(next)?;
        Ok(Reply::sw(sw::OK))
    }

    // ---- keys (§2.11 - §2.16) ----------------------------------------------------------

    fn generate_key_pair(&mut self, r: &Request<'_>) -> Outcome {
        if !self.user_authenticated {
            return Ok(Reply::sw(sw::SECURITY_STATUS));
        }
        if r.p1 == 0 {
            return Ok(Reply::sw(sw::INCORRECT_P1P2));
        }
        if matches!(&self.state.dkek, Some(d) if d.shares_outstanding > 0) {
            // "no new keys can be generated" until all DKEK shares are imported (§2.5).
            return Ok(Reply::sw(sw::CONDITIONS_NOT_SATISFIED));
        }
        let mut request = match cvc::KeyGenerationTemplate::parse(r.data) {
            Ok(t) => t,
            Err(_) => return Ok(Reply::sw(sw::WRONG_DATA)),
        };
        if request.outer_car.is_none() {
            // The answer is always a request authenticated by the device key, with the device
            // CHR as outer CAR unless tag 45 names one (GUESS, FIDELITY.md): OpenSC exposes the
            // public key of a generated key only when EF CExx holds such a `67` request.
            match cvc::Certificate::parse_prefix(&self.state.device_certificates) {
                Ok((device, _)) => request.outer_car = Some(device.chr().to_vec()),
                Err(_) => return Ok(Reply::sw(sw::MEMORY_FAILURE)),
            }
        }
        let spec: KeySpec = request.spec;
        let key = match PrivateKey::generate(spec, &mut self.rng) {
            Ok(k) => k,
            Err(_) => return Ok(Reply::sw(sw::FUNCTION_NOT_SUPPORTED)),
        };
        if request.key_domain.is_some_and(|d| d != 0) {
            // One key domain only (FIDELITY.md).
            return Ok(Reply::sw(sw::WRONG_DATA));
        }
        let Ok(device_key) = PrivateKey::from_bytes(&self.state.device_key) else {
            return Ok(Reply::sw(sw::MEMORY_FAILURE));
        };
        // With an outer CAR (tag 45) the request is authenticated by the device key (§2.11).
        let cv_request = match request.build_response(&key, &device_key, &mut self.rng) {
            Ok(bytes) => bytes,
            Err(_) => return Ok(Reply::sw(sw::WRONG_DATA)),
        };
        let mut next = self.state.clone();
        next.keys.insert(
            r.p1,
            KeyObject {
                key: Zeroizing::new(key.to_bytes()),
                algorithms: request.algorithms.clone(),
                use_counter: request.use_counter,
            },
        );
        self.commit(next)?;
        Ok(Reply::ok(cv_request))
    }

    /// Load key `id` for a private-key operation with algorithm `alg`: checks the user role,
    /// presence, the algorithm list and the use counter (decremented and committed first).
    fn use_key(&mut self, id: u8, alg: u8) -> Result<Result<PrivateKey, u16>, MemoryError> {
        if !self.user_authenticated {
            return Ok(Err(sw::SECURITY_STATUS));
        }
        if id == 0 {
            // The device key is used only for authentication, not by SIGN (GUESS).
            return Ok(Err(sw::SECURITY_STATUS));
        }
        let Some(object) = self.state.keys.get(&id).cloned() else {
            return Ok(Err(sw::REFERENCED_DATA_NOT_FOUND));
        };
        if let Some(list) = &object.algorithms {
            if !list.contains(&alg) {
                // Real card 6A81 (SHE); pico 6985 (§7).
                return Ok(Err(sw::FUNCTION_NOT_SUPPORTED));
            }
        }
        if let Some(left) = object.use_counter {
            if left == 0 {
                // Real card 6984 (SHE); pico 6A84 (§7).
                return Ok(Err(sw::REFERENCE_DATA_NOT_USABLE));
            }
            let mut next = self.state.clone();
            if let Some(o) = next.keys.get_mut(&id) {
                o.use_counter = Some(left - 1);
            }
            self.commit(next)?;
        }
        Ok(PrivateKey::from_bytes(&object.key).map_err(|_| sw::MEMORY_FAILURE))
    }

    fn sign(&mut self, r: &Request<'_>) -> Outcome {
        let alg = SignAlgorithm::from(r.p2);
        if matches!(alg, SignAlgorithm::Unknown(_)) {
            return Ok(Reply::sw(sw::INCORRECT_P1P2));
        }
        let key = match self.use_key(r.p1, r.p2)? {
            Ok(k) => k,
            Err(sw) => return Ok(Reply::sw(sw)),
        };
        match crypto::sign(&key, alg, r.data, &mut self.rng) {
            Ok(signature) => Ok(Reply::ok(signature)),
            Err(_) => Ok(Reply::sw(sw::WRONG_DATA)),
        }
    }

    fn decipher(&mut self, r: &Request<'_>) -> Outcome {
        if !matches!(r.p2, 0x21 | 0x80) {
            return Ok(Reply::sw(sw::WRONG_P1P2));
        }
        let key = match self.use_key(r.p1, r.p2)? {
            Ok(k) => k,
            Err(sw) => return Ok(Reply::sw(sw)),
        };
        let result = if r.p2 == 0x21 {
            crypto::decipher_raw(&key, r.data)
        } else {
            crypto::ecdh(&key, r.data, self.config.ecdh_result)
        };
        match result {
            Ok(plain) => Ok(Reply::ok(plain)),
            Err(_) => Ok(Reply::sw(sw::WRONG_DATA)),
        }
    }

    fn get_challenge(&mut self, r: &Request<'_>) -> Reply {
        if (r.p1, r.p2) != (0, 0) {
            return Reply::sw(sw::INCORRECT_P1P2);
        }
        if r.ne == 0 {
            return Reply::sw(sw::WRONG_LENGTH);
        }
        let mut out = vec![0u8; r.ne.min(1024)];
        rand_chacha::rand_core::RngCore::fill_bytes(&mut self.rng, &mut out);
        Reply::ok(out)
    }

    fn wrap_key(&mut self, r: &Request<'_>) -> Outcome {
        if r.p2 != 0x92 {
            return Ok(Reply::sw(sw::WRONG_P1P2));
        }
        let Some(dkek) = self.dkek_complete().copied() else {
            return Ok(Reply::sw(sw::REFERENCED_DATA_NOT_FOUND));
        };
        let dkek = Zeroizing::new(dkek);
        let key = match self.use_key(r.p1, 0x92)? {
            Ok(k) => k,
            Err(sw) => return Ok(Reply::sw(sw)),
        };
        let algorithms = self
            .state
            .keys
            .get(&r.p1)
            .and_then(|o| o.algorithms.clone());
        let blob = crypto::wrap(
            &dkek,
            &key,
            algorithms.as_deref().unwrap_or_default(),
            &mut self.rng,
        );
        Ok(Reply::ok(blob))
    }

    fn unwrap_key(&mut self, r: &Request<'_>) -> Outcome {
        if r.p2 != 0x93 {
            return Ok(Reply::sw(sw::WRONG_P1P2));
        }
        if !self.user_authenticated {
            return Ok(Reply::sw(sw::SECURITY_STATUS));
        }
        if r.p1 == 0 {
            return Ok(Reply::sw(sw::INCORRECT_P1P2));
        }
        let Some(dkek) = self.dkek_complete().copied() else {
            return Ok(Reply::sw(sw::REFERENCED_DATA_NOT_FOUND));
        };
        let dkek = Zeroizing::new(dkek);
        if self.state.keys.contains_key(&r.p1) {
            // The card refuses to overwrite a key (GUESS, §2.15).
            return Ok(Reply::sw(sw::CONDITIONS_NOT_SATISFIED));
        }
        // "New style": the blob was written to EF 2F10 beforehand (§2.15).
        let blob = if r.data.is_empty() {
            self.state
                .files
                .get(&EF_UNWRAP_STAGING)
                .cloned()
                .unwrap_or_default()
        } else {
            r.data.to_vec()
        };
        let (key, algorithms) = match crypto::unwrap(&dkek, &blob) {
            Ok(k) => k,
            Err(_) => return Ok(Reply::sw(sw::WRONG_DATA)),
        };
        let mut next = self.state.clone();
        next.files.remove(&EF_UNWRAP_STAGING);
        next.keys.insert(
            r.p1,
            KeyObject {
                key: Zeroizing::new(key.to_bytes()),
                algorithms: (!algorithms.is_empty()).then_some(algorithms),
                use_counter: None,
            },
        );
        self.commit(next)?;
        Ok(Reply::sw(sw::OK))
    }

    fn get_response(&mut self, r: &Request<'_>) -> Reply {
        if (r.p1, r.p2) != (0, 0) {
            return Reply::sw(sw::INCORRECT_P1P2);
        }
        if self.pending.is_empty() {
            return Reply::sw(sw::CONDITIONS_NOT_SATISFIED);
        }
        let data = std::mem::take(&mut self.pending);
        Reply::ok(data)
    }
}

/// A decoded command: the parts every handler needs.
struct Request<'a> {
    /// CLA without the chaining bit.
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &'a [u8],
    /// Ne: the maximum response length the host accepts (0 = none).
    ne: usize,
}

fn pin_mut(state: &mut CardState, which: PinRef) -> &mut PinState {
    let pin = match which {
        PinRef::User => &mut state.user_pin,
        PinRef::So => &mut state.so_pin,
    };
    // Callers check that the PIN exists before they clone the state.
    pin.get_or_insert_with(|| PinState {
        value: Zeroizing::new(Vec::new()),
        tries_left: 0,
        max_tries: 0,
    })
}

fn fid_of(data: &[u8]) -> Option<u16> {
    match data {
        [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}

/// The offset DO `54 L off` of READ BINARY (odd INS) (§2.8).
fn offset_tlv(data: &[u8]) -> Option<usize> {
    let fields = parse_flat_tlv(data).ok()?;
    let value = fields.iter().find(|(t, _)| *t == 0x54).map(|(_, v)| *v)?;
    be_offset(value)
}

fn be_offset(value: &[u8]) -> Option<usize> {
    match value {
        [] => None,
        v if v.len() <= 2 => Some(v.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))),
        _ => None,
    }
}

/// A flat list of (tag, value) from BER-TLV, with tags up to two bytes.
fn parse_flat_tlv(data: &[u8]) -> Result<Vec<(u16, &[u8])>, ()> {
    let mut out = Vec::new();
    for tlv in tessera_apdu::Tlvs::new(data) {
        let tlv = tlv.map_err(|_| ())?;
        let tag = u16::try_from(tlv.tag().raw()).map_err(|_| ())?;
        out.push((tag, tlv.value()));
    }
    Ok(out)
}

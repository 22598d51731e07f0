//! [`ScHsm`]: the SmartCard-HSM's operations over any [`Transport`].

use serde::Serialize;
use tessera_apdu::{Chain, Cla, CommandRepr, StatusWord};
use zeroize::Zeroizing;

use crate::device::DeviceCertificates;
use crate::error::{Error, InputError, Operation};
use crate::info::{AppletInfo, AID};
use crate::init::{DkekShare, DkekStatus, InitParams};
use crate::keys::{
    key_generation_template, prefix, CertificateKind, FileState, GeneratedKey, KeyAlgorithm,
    KeyDescription, KeyInfo, KeyKind, ObjectId, PublicKey,
};
use crate::pin::{Assessment, Pin, PinRole, PinStatus, SoPin};
use crate::sign::{ecdsa_der_to_raw, EcdsaFormat, SignMechanism};
use crate::transport::{Transport, TransportErrorKind};
use crate::Result;

/// The largest data field sent in one extended APDU: OpenSC's limit for the SmartCard-HSM,
/// 1232 − 9 (JCOP 3's 1232-byte APDU buffer less header, Lc and Le; sc-hsm-protocol.md §8).
pub const MAX_EXTENDED_DATA: usize = 1232 - 9;

/// The largest data field of a short APDU (ISO/IEC 7816-4 §5.1).
const MAX_SHORT_DATA: usize = 255;

/// Ne for "everything": extended Le `00 00` (ISO/IEC 7816-4 §5.1), as OpenSC asks for
/// ENUMERATE OBJECTS, READ BINARY, GENERATE ASYMMETRIC KEY PAIR and SIGN (§2.7, §2.8, §2.11,
/// §2.12).
const NE_ALL: usize = 65_536;

/// The most GET RESPONSE rounds for one command, and the most bytes they may bring: a card
/// answering `61xx` forever is garbage, not a long response.
const MAX_GET_RESPONSE: usize = 512;
const MAX_RESPONSE_LEN: usize = 1 << 20;

/// The CHR OpenSC's key-generation template uses when the serial is unknown (§2.11).
const DUMMY_CHR: &[u8] = b"UTCDUMMY00001";

/// A SmartCard-HSM on a transport, with its applet selected.
///
/// Selecting the applet (as [`open`](ScHsm::open) and [`select`](ScHsm::select) do) drops
/// any verified PIN (sc-hsm-protocol.md §1.3), so operations that need the user PIN
/// ([`generate_key`](ScHsm::generate_key), [`sign`](ScHsm::sign), writing and deleting files)
/// must follow [`verify`](ScHsm::verify) on the same `ScHsm` without a select in between.
///
/// If the transport reports that the card was reset (by another program sharing the reader),
/// the error is returned and the applet is selected again before the next command.
#[derive(Debug)]
pub struct ScHsm<T> {
    transport: T,
    info: AppletInfo,
    needs_select: bool,
}

/// Everything `tessera status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    /// Version, options and build, from SELECT.
    pub applet: AppletInfo,
    /// The serial from the device certificate, if it could be read.
    pub serial: Option<String>,
    /// Why the serial could not be read.
    pub serial_error: Option<String>,
    /// Whether the device has been initialised.
    pub initialised: bool,
    /// The user PIN's state.
    pub user_pin: PinStatus,
    /// The SO-PIN's state.
    pub so_pin: PinStatus,
    /// The DKEK state, for an initialised device with DKEK shares.
    pub dkek: Option<DkekStatus>,
    /// What still works, in plain words.
    pub assessment: Assessment,
}

/// What reading an optional file gave.
enum Read {
    Content(Vec<u8>),
    Absent,
    Refused(String),
}

/// A response's data and final status word.
struct Answer {
    data: Vec<u8>,
    status: StatusWord,
}

impl<T: Transport> ScHsm<T> {
    /// Selects the SmartCard-HSM applet on `transport` (sc-hsm-protocol.md §1.3).
    pub fn open(transport: T) -> Result<ScHsm<T>> {
        let mut hsm = ScHsm {
            transport,
            info: AppletInfo {
                version: (0, 0),
                options: crate::info::Options(0),
                kind: crate::info::AppletKind::Unknown,
            },
            needs_select: true,
        };
        hsm.select()?;
        Ok(hsm)
    }

    /// Selects the applet again (this logs the user out) and returns what it says.
    pub fn select(&mut self) -> Result<AppletInfo> {
        let op = Operation::Select;
        // OpenSC sends P2 = 00 (return FCP) with a short Le of 00, "as required by SC-HSM".
        let command = CommandRepr::new(Cla(0x00), 0xA4, 0x04, 0x00)
            .with_data(&AID)
            .with_ne(256);
        self.needs_select = false;
        let answer = self.exchange_raw(op, command)?;
        if answer.status != StatusWord::Success {
            self.needs_select = true;
            return Err(Error::from_status(op, answer.status, None));
        }
        let info = AppletInfo::from_fcp(&answer.data).ok_or_else(|| {
            self.needs_select = true;
            Error::malformed(
                op,
                "the FCP has no proprietary tag 85 with the version: not a SmartCard-HSM",
            )
        })?;
        self.info = info;
        Ok(info)
    }

    /// What the last SELECT said.
    pub fn info(&self) -> &AppletInfo {
        &self.info
    }

    /// The transport.
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }

    // ---- PINs (§2.2 - §2.4, §4) --------------------------------------------------------

    /// The state of a PIN: VERIFY without data (§4.2). Costs no try.
    pub fn pin_status(&mut self, role: PinRole) -> Result<PinStatus> {
        let op = Operation::PinStatus(role);
        let command = CommandRepr::new(Cla(0x00), 0x20, 0x00, role.reference());
        let answer = self.exchange(op, command)?;
        PinStatus::from_status_word(answer.status).ok_or(Error::Status {
            operation: op,
            status: answer.status,
        })
    }

    /// Presents the user PIN (§2.2). A wrong PIN costs a try:
    /// [`Error::WrongPin`] says how many are left.
    pub fn verify(&mut self, pin: &Pin) -> Result<()> {
        let op = Operation::Verify(PinRole::User);
        let command = CommandRepr::new(Cla(0x00), 0x20, 0x00, PinRole::User.reference())
            .with_data(pin.as_bytes());
        self.expect_success(op, command, Some(PinRole::User))
            .map(drop)
    }

    /// Changes the user PIN (CHANGE REFERENCE DATA, §2.3); also leaves transport-PIN state
    /// (§4.4). A wrong old PIN costs a try.
    pub fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<()> {
        let op = Operation::ChangePin(PinRole::User);
        let data = Zeroizing::new([old.as_bytes(), new.as_bytes()].concat());
        let command =
            CommandRepr::new(Cla(0x00), 0x24, 0x00, PinRole::User.reference()).with_data(&data);
        self.expect_success(op, command, Some(PinRole::User))
            .map(drop)
    }

    /// Changes the SO-PIN (CHANGE REFERENCE DATA, §2.3). A wrong old SO-PIN costs one of its
    /// 15 tries, which never come back.
    pub fn change_so_pin(&mut self, old: &SoPin, new: &SoPin) -> Result<()> {
        let op = Operation::ChangePin(PinRole::So);
        let data = Zeroizing::new([&old.as_bytes()[..], &new.as_bytes()[..]].concat());
        let command =
            CommandRepr::new(Cla(0x00), 0x24, 0x00, PinRole::So.reference()).with_data(&data);
        self.expect_success(op, command, Some(PinRole::So))
            .map(drop)
    }

    /// Unblocks the user PIN with the SO-PIN (RESET RETRY COUNTER, §2.4): with a new PIN
    /// (P1 `00`), or keeping the old one and only resetting its counter (P1 `01`). Needs option
    /// `0001` at initialisation. A wrong SO-PIN costs one of its tries.
    pub fn unblock(&mut self, so_pin: &SoPin, new_pin: Option<&Pin>) -> Result<()> {
        let op = Operation::ResetRetryCounter;
        let (p1, data) = match new_pin {
            Some(pin) => (
                0x00,
                Zeroizing::new([&so_pin.as_bytes()[..], pin.as_bytes()].concat()),
            ),
            None => (0x01, Zeroizing::new(so_pin.as_bytes().to_vec())),
        };
        let command = CommandRepr::new(Cla(0x00), 0x2C, p1, 0x81).with_data(&data);
        self.expect_success(op, command, Some(PinRole::So))
            .map(drop)
    }

    /// Initialises (or re-initialises) the device (INITIALIZE DEVICE, §2.5, §5.1). Erases all
    /// keys, certificates and data objects. On an initialised device `params.so_pin` must be
    /// the current SO-PIN: a wrong one costs one of its tries. The user stays logged in
    /// afterwards on the virtual card (GH-2432 says the real card does the same).
    pub fn initialise(&mut self, params: &InitParams) -> Result<()> {
        let op = Operation::Initialize;
        let data = params.command_data()?;
        let command = CommandRepr::new(Cla(0x80), 0x50, 0x00, 0x00).with_data(&data);
        self.expect_success(op, command, Some(PinRole::So))?;
        // The options changed: read them again (SELECT would log the user out; the FCP
        // options are what was just sent).
        self.info.options = params.options;
        Ok(())
    }

    /// The state of both PINs, the DKEK, the serial, and what still works.
    pub fn status(&mut self) -> Result<DeviceStatus> {
        let user_pin = self.pin_status(PinRole::User)?;
        let so_pin = self.pin_status(PinRole::So)?;
        let initialised =
            user_pin != PinStatus::NotInitialised && so_pin != PinStatus::NotInitialised;
        let (serial, serial_error) = match self.device_certificates() {
            Ok(c) => (Some(c.serial), None),
            Err(e) if e.transport_kind().is_some() => return Err(e),
            Err(e) => (None, Some(e.to_string())),
        };
        let dkek = if initialised {
            match self.dkek_status() {
                Ok(d) => d,
                Err(e) if e.transport_kind().is_some() => return Err(e),
                Err(_) => None,
            }
        } else {
            None
        };
        Ok(DeviceStatus {
            applet: self.info,
            serial,
            serial_error,
            initialised,
            user_pin,
            so_pin,
            dkek,
            assessment: Assessment::new(user_pin, so_pin, self.info.options),
        })
    }

    // ---- DKEK (§2.6) -------------------------------------------------------------------

    /// Imports one DKEK share and returns the new DKEK state.
    pub fn import_dkek_share(&mut self, share: &DkekShare) -> Result<DkekStatus> {
        let op = Operation::ImportDkekShare;
        let command = CommandRepr::new(Cla(0x80), 0x52, 0x00, 0x00)
            .with_data(share.as_bytes())
            .with_ne(256);
        let data = self.expect_success(op, command, None)?;
        DkekStatus::parse(&data).map_err(|e| Error::malformed(op, e))
    }

    /// The DKEK state; `None` when the device was initialised without DKEK shares (`6A88`,
    /// as a real SmartCard-HSM 4.0 answers, §6.5).
    pub fn dkek_status(&mut self) -> Result<Option<DkekStatus>> {
        let op = Operation::DkekStatus;
        let command = CommandRepr::new(Cla(0x80), 0x52, 0x00, 0x00).with_ne(256);
        let answer = self.exchange(op, command)?;
        match answer.status {
            StatusWord::Success => DkekStatus::parse(&answer.data)
                .map(Some)
                .map_err(|e| Error::malformed(op, e)),
            StatusWord::ReferencedDataNotFound => Ok(None),
            status => Err(Error::from_status(op, status, None)),
        }
    }

    // ---- objects and files (§2.7 - §2.10) ----------------------------------------------

    /// Every object on the device (ENUMERATE OBJECTS, §2.7).
    pub fn list_objects(&mut self) -> Result<Vec<ObjectId>> {
        let op = Operation::EnumerateObjects;
        let command = CommandRepr::new(Cla(0x80), 0x58, 0x00, 0x00).with_ne(self.ne_all());
        let data = self.expect_success(op, command, None)?;
        if data.len() % 2 != 0 {
            return Err(Error::malformed(
                op,
                format!("the object list has an odd length ({} bytes)", data.len()),
            ));
        }
        Ok(data
            .chunks_exact(2)
            .filter_map(|pair| match pair {
                [hi, lo] => Some(ObjectId(u16::from_be_bytes([*hi, *lo]))),
                _ => None,
            })
            .collect())
    }

    /// Reads a whole file (READ BINARY with odd INS, §2.8).
    pub fn read_file(&mut self, fid: u16) -> Result<Vec<u8>> {
        let op = Operation::ReadBinary(fid);
        let ne = self.ne_all();
        let mut content = Vec::new();
        loop {
            let Ok(offset) = u16::try_from(content.len()) else {
                // A file of 64 KiB or more: the offset field (2 bytes) cannot go further.
                return Ok(content);
            };
            let [hi, lo] = offset.to_be_bytes();
            let data = [0x54, 0x02, hi, lo];
            let [f1, f2] = fid.to_be_bytes();
            let command = CommandRepr::new(Cla(0x00), 0xB1, f1, f2)
                .with_data(&data)
                .with_ne(ne);
            let answer = self.exchange(op, command)?;
            match answer.status {
                StatusWord::Success | StatusWord::EndOfFileBeforeLe => {}
                // Reading at the end of a file whose length is a multiple of Ne.
                StatusWord::WrongP1P2 | StatusWord::IncorrectP1P2 if offset > 0 => {
                    return Ok(content)
                }
                status => return Err(Error::from_status(op, status, None)),
            }
            let got = answer.data.len();
            content.extend_from_slice(&answer.data);
            if content.len() > MAX_RESPONSE_LEN {
                return Err(Error::malformed(op, "the file never ends"));
            }
            if answer.status == StatusWord::EndOfFileBeforeLe || got == 0 || got < ne {
                return Ok(content);
            }
        }
    }

    /// Writes `content` to a file from offset 0, creating it (UPDATE BINARY with odd INS,
    /// §2.9), in pieces that fit one APDU. Needs the user PIN.
    pub fn write_file(&mut self, fid: u16, content: &[u8]) -> Result<()> {
        let op = Operation::UpdateBinary(fid);
        if content.len() > usize::from(u16::MAX) {
            return Err(InputError::FileTooLarge { len: content.len() }.into());
        }
        // 54 02 off off | 53 82 len len | data: 8 bytes of framing.
        let piece = if self.transport.supports_extended_length() {
            MAX_EXTENDED_DATA - 8
        } else {
            MAX_SHORT_DATA - 8
        };
        let [f1, f2] = fid.to_be_bytes();
        let mut offset = 0usize;
        loop {
            let chunk = content.get(offset..).unwrap_or(&[]);
            let chunk = chunk.get(..piece.min(chunk.len())).unwrap_or(&[]);
            let off = u16::try_from(offset).unwrap_or(u16::MAX).to_be_bytes();
            let mut data = vec![0x54, 0x02, off[0], off[1]];
            data.extend_from_slice(&crate::der::tlv(0x53, chunk));
            let command = CommandRepr::new(Cla(0x00), 0xD7, f1, f2).with_data(&data);
            self.expect_success(op, command, None)?;
            offset += chunk.len();
            if offset >= content.len() {
                return Ok(());
            }
        }
    }

    /// Deletes a file or a key object (DELETE FILE, §2.10). Needs the user PIN.
    pub fn delete_file(&mut self, fid: u16) -> Result<()> {
        let op = Operation::DeleteFile(fid);
        let data = fid.to_be_bytes();
        let command = CommandRepr::new(Cla(0x00), 0xE4, 0x02, 0x00).with_data(&data);
        self.expect_success(op, command, None).map(drop)
    }

    /// Deletes key `id` with its PRKD and its certificate or request, as far as they exist.
    pub fn delete_key(&mut self, id: u8) -> Result<()> {
        if id == 0 {
            return Err(InputError::DeviceKeyId.into());
        }
        let objects = self.list_objects()?;
        if !objects.contains(&ObjectId::new(prefix::KEY, id)) {
            return Err(Error::Status {
                operation: Operation::DeleteFile(ObjectId::new(prefix::KEY, id).0),
                status: StatusWord::FileNotFound,
            });
        }
        for p in [prefix::KEY, prefix::PRKD, prefix::CERTIFICATE] {
            let fid = ObjectId::new(p, id);
            match self.delete_file(fid.0) {
                Ok(()) => {}
                // The PRKD or the certificate may never have been written.
                Err(Error::Status {
                    status: StatusWord::FileNotFound,
                    ..
                }) if p != prefix::KEY => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The device certificates and the serial (EF `2F02`, §1.4).
    pub fn device_certificates(&mut self) -> Result<DeviceCertificates> {
        let raw = self.read_file(0x2F02)?;
        DeviceCertificates::parse(&raw)
            .map_err(|e| Error::malformed(Operation::DeviceCertificates, e))
    }

    /// The serial: the device certificate's CHR without its sequence number (§1.4).
    pub fn serial(&mut self) -> Result<String> {
        Ok(self.device_certificates()?.serial)
    }

    // ---- keys (§2.11, §3.2) ------------------------------------------------------------

    /// Every key but the device key (`CC00`), with what its PRKD (`C4<id>`) and public-key
    /// file (`CE<id>`) say. A missing or malformed file is reported in that key's
    /// [`FileState`], never as an error of the whole listing.
    pub fn list_keys(&mut self) -> Result<Vec<KeyInfo>> {
        let objects = self.list_objects()?;
        let mut keys = Vec::new();
        for object in &objects {
            if object.prefix() != prefix::KEY || object.id() == 0 {
                continue;
            }
            keys.push(self.describe_key(object.id(), &objects)?);
        }
        Ok(keys)
    }

    /// What the files of key `id` say (see [`list_keys`](ScHsm::list_keys)).
    pub fn key_info(&mut self, id: u8) -> Result<Option<KeyInfo>> {
        let objects = self.list_objects()?;
        if !objects.contains(&ObjectId::new(prefix::KEY, id)) {
            return Ok(None);
        }
        self.describe_key(id, &objects).map(Some)
    }

    fn describe_key(&mut self, id: u8, objects: &[ObjectId]) -> Result<KeyInfo> {
        let mut info = KeyInfo {
            id,
            label: None,
            kind: None,
            bits: None,
            curve: None,
            description: FileState::Absent,
            public_key_file: FileState::Absent,
            certificate: None,
            public_key: None,
        };
        // Which prefixes ENUMERATE OBJECTS lists on the real card is UNKNOWN (§9 q5): a file
        // that is not listed is read anyway, and "not found" means absent.
        let prkd = ObjectId::new(prefix::PRKD, id);
        info.description = match self.read_optional(prkd, objects)? {
            Read::Absent => FileState::Absent,
            Read::Refused(reason) => FileState::Unreadable(reason),
            Read::Content(bytes) => match KeyDescription::parse(&bytes) {
                Ok(d) => {
                    info.label = d.label;
                    info.kind = d.kind;
                    info.bits = d.bits;
                    FileState::Present
                }
                Err(reason) => FileState::Malformed(reason),
            },
        };
        let ce = ObjectId::new(prefix::CERTIFICATE, id);
        info.public_key_file = match self.read_optional(ce, objects)? {
            Read::Absent => FileState::Absent,
            Read::Refused(reason) => FileState::Unreadable(reason),
            Read::Content(bytes) => match bytes.first() {
                Some(0x30) => {
                    info.certificate = Some(CertificateKind::X509);
                    FileState::Present
                }
                _ => match PublicKey::from_cv_request(&bytes) {
                    Ok(key) => {
                        info.certificate = Some(CertificateKind::CvRequest);
                        info.kind = info.kind.or(Some(key.kind()));
                        info.bits = info.bits.or(Some(key.bits()));
                        if let PublicKey::Ec { curve, .. } = &key {
                            info.curve = Some(*curve);
                        }
                        info.public_key = Some(key);
                        FileState::Present
                    }
                    Err(reason) => FileState::Malformed(reason),
                },
            },
        };
        Ok(info)
    }

    /// Reads a file that may not exist. A refusal by the card is [`Read::Refused`] (a per-key
    /// problem); only a transport failure is an error.
    fn read_optional(&mut self, fid: ObjectId, listed: &[ObjectId]) -> Result<Read> {
        match self.read_file(fid.0) {
            Ok(bytes) => Ok(Read::Content(bytes)),
            Err(e) if e.transport_kind().is_some() => Err(e),
            Err(Error::Status {
                status: StatusWord::FileNotFound,
                ..
            }) if !listed.contains(&fid) => Ok(Read::Absent),
            Err(e) => Ok(Read::Refused(e.to_string())),
        }
    }

    /// Generates a key pair on the card (GENERATE ASYMMETRIC KEY PAIR, §2.11) and, as OpenSC
    /// does, stores the card's answer (the CV request with the public key) in `CE<id>` and a
    /// PRKD with `label` in `C4<id>`, so OpenSC and pkcs11-tool see the key. `id` `None`
    /// takes the lowest free id (OpenSC's rule). Needs the user PIN.
    pub fn generate_key(
        &mut self,
        algorithm: KeyAlgorithm,
        id: Option<u8>,
        label: Option<&str>,
    ) -> Result<GeneratedKey> {
        let objects = self.list_objects()?;
        let used = |id: u8| objects.contains(&ObjectId::new(prefix::KEY, id));
        let id = match id {
            Some(0) => return Err(InputError::DeviceKeyId.into()),
            Some(id) if used(id) => return Err(InputError::KeyIdInUse(id).into()),
            Some(id) => id,
            None => (1..=255u8)
                .find(|&id| !used(id))
                .ok_or(InputError::NoFreeKeyId)?,
        };
        let label = label.map_or_else(|| format!("key {id:02X}"), str::to_owned);
        if label.len() > 255 {
            return Err(InputError::LabelTooLong { len: label.len() }.into());
        }
        // The CHR of the request: the serial and a sequence number, as OpenSC does.
        let chr = match self.device_certificates() {
            Ok(c) => format!("{}00001", c.serial).into_bytes(),
            Err(e) if e.transport_kind().is_some() => return Err(e),
            Err(_) => DUMMY_CHR.to_vec(),
        };
        let op = Operation::GenerateKeyPair(id);
        let template = key_generation_template(algorithm, &chr);
        let command = CommandRepr::new(Cla(0x00), 0x46, id, 0x00)
            .with_data(&template)
            .with_ne(self.ne_all());
        let request = self.expect_success(op, command, None)?;
        let public_key =
            PublicKey::from_cv_request(&request).map_err(|e| Error::malformed(op, e))?;
        let expected_kind = algorithm.kind();
        if public_key.kind() != expected_kind
            || (expected_kind == KeyKind::Ec
                && matches!(&public_key, PublicKey::Ec { curve, .. } if Some(*curve) != algorithm.curve()))
        {
            return Err(Error::malformed(
                op,
                format!("asked for {algorithm}, the card generated another kind of key"),
            ));
        }
        self.write_file(ObjectId::new(prefix::CERTIFICATE, id).0, &request)?;
        let prkd = KeyDescription::encode(expected_kind, id, algorithm.bits(), &label);
        self.write_file(ObjectId::new(prefix::PRKD, id).0, &prkd)?;
        Ok(GeneratedKey {
            id,
            algorithm,
            label,
            public_key,
            request,
        })
    }

    /// Signs with key `id` (SIGN, §2.12). `input` is a hash or the message, as `mechanism`
    /// says. RSA signatures are returned as the card gives them; ECDSA signatures in
    /// `format` (the card answers DER; `Raw` needs the key's curve, read from its files).
    /// Needs the user PIN.
    pub fn sign(
        &mut self,
        id: u8,
        mechanism: SignMechanism,
        input: &[u8],
        format: EcdsaFormat,
    ) -> Result<Vec<u8>> {
        if id == 0 {
            return Err(InputError::DeviceKeyId.into());
        }
        let op = Operation::Sign(id);
        let p2 = mechanism.algorithm_id()?;
        let data = mechanism.command_data(input)?;
        let command = CommandRepr::new(Cla(0x80), 0x68, id, p2)
            .with_data(&data)
            .with_ne(self.ne_all());
        let signature = self.expect_success(op, command, None)?;
        if !mechanism.is_ecdsa() || format == EcdsaFormat::Der {
            return Ok(signature);
        }
        let field_bytes = match self.key_info(id)? {
            Some(KeyInfo {
                curve: Some(curve), ..
            }) => curve.field_bytes(),
            Some(KeyInfo {
                bits: Some(bits), ..
            }) => usize::from(bits).div_ceil(8),
            _ => {
                return Err(InputError::Unsupported(format!(
                    "the curve of key {id:02X} is not recorded on the card (no PRKD and no \
                     public key): ask for a DER signature"
                ))
                .into())
            }
        };
        ecdsa_der_to_raw(&signature, field_bytes).map_err(|e| Error::malformed(op, e))
    }

    // ---- the APDU layer ----------------------------------------------------------------

    /// Ne for commands whose answer can be long: everything when the transport carries
    /// extended APDUs, else 256 and GET RESPONSE.
    fn ne_all(&self) -> usize {
        if self.transport.supports_extended_length() {
            NE_ALL
        } else {
            256
        }
    }

    /// Sends `command`; `9000` gives the data, any other status the error for it.
    fn expect_success(
        &mut self,
        op: Operation,
        command: CommandRepr<'_>,
        pin: Option<PinRole>,
    ) -> Result<Vec<u8>> {
        let answer = self.exchange(op, command)?;
        if answer.status == StatusWord::Success {
            Ok(answer.data)
        } else {
            Err(Error::from_status(op, answer.status, pin))
        }
    }

    /// Selects the applet again first if the card was reset, then sends `command`.
    fn exchange(&mut self, op: Operation, command: CommandRepr<'_>) -> Result<Answer> {
        if self.needs_select {
            self.select()?;
        }
        self.exchange_raw(op, command)
    }

    /// Sends one command, with command chaining when it does not fit one APDU the transport
    /// carries (ISO/IEC 7816-4 §5.3.3), and gathers the response: `61xx` fetched with GET
    /// RESPONSE (§5.3.4), `6Cxx` answered by sending the command again with Le = xx.
    fn exchange_raw(&mut self, op: Operation, command: CommandRepr<'_>) -> Result<Answer> {
        let extended = self.transport.supports_extended_length();
        let nc = command.data.len();
        let fits_one = if extended {
            nc <= MAX_EXTENDED_DATA
        } else {
            nc <= MAX_SHORT_DATA
        };
        let command = if extended {
            command
        } else {
            CommandRepr {
                ne: command.ne.min(256),
                ..command
            }
        };
        let first = if fits_one {
            self.transmit(op, command)?
        } else {
            // Chained short commands; Ne above 256 becomes 256 and the rest comes by GET
            // RESPONSE (tessera_apdu::Chain refuses a larger Ne).
            let short = CommandRepr {
                ne: command.ne.min(256),
                force_extended: false,
                ..command
            };
            let chain = Chain::with_max_chunk(short)
                .map_err(|e| Error::malformed(op, format!("cannot chain the command: {e}")))?;
            let count = chain.len();
            let mut last = None;
            for (i, part) in chain.enumerate() {
                let answer = self.transmit(op, part)?;
                if i + 1 < count && answer.status != StatusWord::Success {
                    return Err(Error::from_status(op, answer.status, None));
                }
                last = Some(answer);
            }
            last.ok_or_else(|| Error::malformed(op, "empty command chain"))?
        };
        let first = match first.status {
            StatusWord::WrongLe(n) if fits_one => {
                let ne = if n == 0 { 256 } else { usize::from(n) };
                self.transmit(op, CommandRepr { ne, ..command })?
            }
            _ => first,
        };
        self.gather(op, first)
    }

    /// Fetches the rest of a response announced by `61xx` (ISO/IEC 7816-4 §5.3.4).
    fn gather(&mut self, op: Operation, mut answer: Answer) -> Result<Answer> {
        let mut rounds = 0;
        while let StatusWord::BytesAvailable(n) = answer.status {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE || answer.data.len() > MAX_RESPONSE_LEN {
                return Err(Error::malformed(
                    op,
                    "the card announces more data without end (61xx)",
                ));
            }
            let ne = if n == 0 { 256 } else { usize::from(n) };
            let get_response = CommandRepr::new(Cla(0x00), 0xC0, 0x00, 0x00).with_ne(ne);
            let more = self.transmit(op, get_response)?;
            answer.data.extend_from_slice(&more.data);
            answer.status = more.status;
        }
        Ok(answer)
    }

    /// One APDU over the transport, and its status word split off.
    fn transmit(&mut self, op: Operation, command: CommandRepr<'_>) -> Result<Answer> {
        let mut bytes = vec![0u8; command.buffer_len()];
        let len = command
            .emit(&mut bytes)
            .map_err(|e| Error::malformed(op, format!("cannot encode the command: {e}")))?;
        bytes.truncate(len);
        let response = self.transport.transmit(&bytes);
        // The command may carry a PIN: wipe our copy.
        zeroize::Zeroize::zeroize(&mut bytes);
        let mut response = response.map_err(|source| {
            if source.kind() == TransportErrorKind::CardReset {
                self.needs_select = true;
            }
            Error::Transport {
                operation: op,
                source,
            }
        })?;
        if response.len() < 2 {
            return Err(Error::malformed(
                op,
                format!("{} byte(s), shorter than a status word", response.len()),
            ));
        }
        let sw2 = response.pop().unwrap_or(0);
        let sw1 = response.pop().unwrap_or(0);
        Ok(Answer {
            data: response,
            status: StatusWord::from_bytes(sw1, sw2),
        })
    }
}

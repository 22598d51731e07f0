//! The device certificates in EF `2F02` and the serial number (sc-hsm-protocol.md §1.4).
//!
//! EF `2F02` holds the device CV certificate followed by the device-issuer CA (DICA)
//! certificate. The serial is the device certificate's CHR without its last five characters
//! (a sequence number). The CHRs are read with a minimal walk of the TLV structure, so a
//! certificate whose key this crate cannot parse still gives a serial; the full parse and the
//! chain check use `tessera_card::cvc`.

use serde::Serialize;
use tessera_apdu::{Tag, Tlv};
use tessera_card::cvc::{Certificate, CvcError};

/// CardContact's SmartCard-HSM root CA certificate `DESRCACC100001` (brainpoolP256r1), as
/// OpenSC installs it (sc-hsm-protocol.md §6.9). A genuine device's DICA chains to it.
pub const CARDCONTACT_ROOT: &str = "7f218201b47f4e82016c5f290100420e44455352434143433130303030317f4982011d060a04007f000702020202038120a9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e537782207d5a0975fc2c3057eef67530417affe7fb8055c126dc5c6ce94a4b44f330b5d9832026dc5c6ce94a4b44f330b5d9bbd77cbf958416295cf7e1ce6bccdc18ff8c07b68441048bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd9ace3262547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f0469978520a9fb57dba1eea9bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a78641046d025a8026cdba245f10df1b72e9880fff746dab40a43a3d5c6bebf27707c30f6dea72430ee3287b0665c1eaa6eaa4fa26c46303001983f82bd1aa31e03da0628701015f200e44455352434143433130303030317f4c10060b2b0601040181c31f0301015301c05f25060102010100095f24060302010100085f37409dbb382b1711d2baacb0c623d40c6267d0b52ba455c01f56333dc9554810b9b2878daf9ec3ada19c7b065d780d6c9c3c2ecedfd78deb18af40778adf89e861ca";

/// The CHRs and CARs of the certificates in EF `2F02`, and the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceCertificates {
    /// The device certificate's holder reference (CHR), e.g. `DENK0200600000001`.
    pub device_chr: String,
    /// The device certificate's issuer (CAR), the DICA's CHR, e.g. `DEDINK0200001`.
    pub device_car: Option<String>,
    /// The DICA certificate's CHR, when EF `2F02` holds one.
    pub dica_chr: Option<String>,
    /// The DICA certificate's issuer (CAR), e.g. `DESRCACC100001`.
    pub dica_car: Option<String>,
    /// The serial: the device CHR without its last five characters (§1.4).
    pub serial: String,
    /// The file as read.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

impl DeviceCertificates {
    /// Reads EF `2F02`: one or two `7F21` certificates. Fails on a malformed structure, a CHR
    /// that is not printable ASCII, or one shorter than 8 characters (OpenSC's rule).
    pub fn parse(raw: &[u8]) -> Result<DeviceCertificates, String> {
        let (device, rest) =
            Tlv::parse_prefix(raw).map_err(|e| format!("device certificate: {e}"))?;
        let (device_chr, device_car) = references(&device, "device certificate")?;
        let device_chr =
            device_chr.ok_or_else(|| "device certificate: no CHR (5F20)".to_owned())?;
        if device_chr.len() < 8 {
            return Err(format!(
                "device certificate: CHR {device_chr:?} is shorter than 8 characters"
            ));
        }
        let serial = device_chr
            .get(..device_chr.len() - 5)
            .unwrap_or_default()
            .to_owned();
        let (dica_chr, dica_car) = if rest.is_empty() || rest.iter().all(|&b| b == 0 || b == 0xFF) {
            (None, None)
        } else {
            let (dica, _) =
                Tlv::parse_prefix(rest).map_err(|e| format!("DICA certificate: {e}"))?;
            references(&dica, "DICA certificate")?
        };
        Ok(DeviceCertificates {
            device_chr,
            device_car,
            dica_chr,
            dica_car,
            serial,
            raw: raw.to_vec(),
        })
    }

    /// The certificates fully parsed (public keys included): device, then DICA if present.
    pub fn certificates(&self) -> Result<(Certificate, Option<Certificate>), CvcError> {
        let (device, rest) = Certificate::parse_prefix(&self.raw)?;
        let dica = if rest.is_empty() || rest.iter().all(|&b| b == 0 || b == 0xFF) {
            None
        } else {
            Some(Certificate::parse_prefix(rest)?.0)
        };
        Ok((device, dica))
    }

    /// Checks the chain: the DICA signed by `root`, the device certificate by the DICA.
    /// With [`CARDCONTACT_ROOT`] this tells a genuine SmartCard-HSM from anything else.
    pub fn verify_chain(&self, root: &Certificate) -> Result<(), String> {
        let (device, dica) = self.certificates().map_err(|e| e.to_string())?;
        let dica = dica.ok_or_else(|| "EF 2F02 holds no DICA certificate".to_owned())?;
        if dica.car() != Some(root.chr()) {
            return Err(format!(
                "the DICA is issued by {}, not by {}",
                printable(dica.car().unwrap_or_default()),
                printable(root.chr())
            ));
        }
        dica.verify(root.public_key())
            .map_err(|e| format!("the DICA certificate does not verify: {e}"))?;
        device
            .verify(dica.public_key())
            .map_err(|e| format!("the device certificate does not verify: {e}"))
    }
}

/// CardContact's root certificate, parsed.
pub fn cardcontact_root() -> Result<Certificate, CvcError> {
    Certificate::parse(&crate::unhex(CARDCONTACT_ROOT))
}

/// CHR and CAR of a `7F21 { 7F4E { … 42 CAR … 5F20 CHR … }, 5F37 }` object.
fn references(
    certificate: &Tlv<'_>,
    what: &str,
) -> Result<(Option<String>, Option<String>), String> {
    if certificate.tag() != Tag::new(0x7F21) {
        return Err(format!(
            "{what}: expected tag 7F21, found {}",
            certificate.tag()
        ));
    }
    let body = certificate
        .find(Tag::new(0x7F4E))
        .map_err(|e| format!("{what}: {e}"))?
        .ok_or_else(|| format!("{what}: no body (7F4E)"))?;
    let text = |tag: u32, name: &str| -> Result<Option<String>, String> {
        match body
            .find(Tag::new(tag))
            .map_err(|e| format!("{what}: {e}"))?
        {
            None => Ok(None),
            Some(t) => {
                let v = t.value();
                if v.iter().all(|b| b.is_ascii_graphic()) {
                    Ok(Some(String::from_utf8_lossy(v).into_owned()))
                } else {
                    Err(format!("{what}: the {name} is not printable ASCII"))
                }
            }
        }
    };
    Ok((text(0x5F20, "CHR")?, text(0x42, "CAR")?))
}

fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

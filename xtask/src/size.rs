//! `cargo xtask size`: build the release firmware and check its flash and static RAM against the
//! budget.
//!
//! The figures come from the ELF's section headers, read here with std only (no `cargo size`, no
//! `llvm-size`): every allocated section is sorted into flash or RAM by its flags, the way the
//! Berkeley `size` format does it.
//!
//! - **flash** = read-only allocated sections (vector table, `.text`, `.rodata`, `.ARM.exidx`) +
//!   the initial values of `.data` (copied from flash to RAM at reset);
//! - **static RAM** = `.data` + `.bss` + `.uninit` (every writable or `NOBITS` allocated section);
//! - **RAM** = static RAM + the stack budget [`STACK_BUDGET`]: cortex-m-rt puts the stack at the
//!   top of RAM and it has no section, so it is budgeted here and enforced at link time by an
//!   `ASSERT` in the firmware's `memory.x` (`firmware/build.rs`, `_stack_reserve`).
//!
//! Non-allocated sections (`.defmt`, debug info, symbols) take no space on the chip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Flash budget: 48 KiB of the STM32F103TB's 128 KiB (issue 4).
pub const FLASH_BUDGET: u64 = 48 * 1024;

/// RAM budget: 12 KiB of its 20 KiB, static RAM and stack together (issue 4).
pub const RAM_BUDGET: u64 = 12 * 1024;

/// The stack budget, counted in [`RAM_BUDGET`]: 4 KiB.
///
/// How it is sized: embassy keeps every task's future (its whole `async` state, buffers
/// included) in static task storage, so the stack only carries the executor's poll chain, the
/// interrupt handlers (USB, USART1, the TIM2 time driver; one frame each, nested by priority)
/// and panic/defmt formatting. The stock firmware runs in 1 KiB of stack with its buffers there;
/// 4 KiB leaves four times that. It is a budget, not a measurement: the firmware's `memory.x`
/// makes the link fail when less than this is left between the statics and the top of RAM.
pub const STACK_BUDGET: u64 = 4 * 1024;

/// The chip's RAM (20 KiB), for the headroom line of the report.
pub const RAM_TOTAL: u64 = 20 * 1024;

/// The firmware's target and binary, relative to `firmware/`.
const FIRMWARE_ELF: &str = "target/thumbv7m-none-eabi/release/tessera-firmware";

const USAGE: &str = "\
usage: cargo xtask size [--dfu-base] [--bringup] [--no-build] [--elf PATH]

  builds firmware/ in release and reports flash and static RAM against the budget; exits
  non-zero when over.
  --dfu-base   link at 0x08002000, behind the DFU bootloader (cargo feature dfu-base)
  --bringup    the bring-up build without the bridge (--no-default-features)
  --no-build   report the ELF that is there
  --elf PATH   report this ELF instead (implies --no-build)
";

/// Run `cargo xtask size ARGS`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut dfu_base = false;
    let mut bringup = false;
    let mut build = true;
    let mut elf: Option<PathBuf> = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--dfu-base" => dfu_base = true,
            "--bringup" => bringup = true,
            "--no-build" => build = false,
            "--elf" => {
                let path = rest
                    .next()
                    .ok_or(format!("--elf takes a path\n\n{USAGE}"))?;
                elf = Some(PathBuf::from(path));
                build = false;
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("size: unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    let firmware = crate::workspace_root().join("firmware");
    if build {
        let mut argv = vec!["build", "--release", "--locked"];
        if bringup {
            argv.push("--no-default-features");
        }
        if dfu_base {
            argv.extend(["--features", "dfu-base"]);
        }
        eprintln!("xtask: size: cargo {} (in firmware/)", argv.join(" "));
        let status = Command::new(crate::prereq::cargo())
            .args(&argv)
            .current_dir(&firmware)
            .status()
            .map_err(|e| format!("size: cannot run cargo: {e}"))?;
        if !status.success() {
            return Err("size: the firmware build failed".to_owned());
        }
    }
    let elf = elf.unwrap_or_else(|| firmware.join(FIRMWARE_ELF));
    let bytes = std::fs::read(&elf).map_err(|e| format!("size: {}: {e}", elf.display()))?;
    let sections = parse_sections(&bytes).map_err(|e| format!("size: {}: {e}", elf.display()))?;
    let usage = Usage::of(&sections);
    print!("{}", report(&elf, &sections, &usage));
    let over = usage.over_budget();
    if over.is_empty() {
        Ok(())
    } else {
        Err(format!("size: over budget: {}", over.join(", ")))
    }
}

/// One section header of an ELF file, as far as sizes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section's name (from the section-name string table), empty when it has none.
    pub name: String,
    /// `sh_type` (1 `PROGBITS`, 8 `NOBITS`, ...).
    pub kind: u32,
    /// `sh_flags` (`SHF_WRITE` 0x1, `SHF_ALLOC` 0x2, `SHF_EXECINSTR` 0x4).
    pub flags: u32,
    /// `sh_addr`: the run-time address.
    pub addr: u32,
    /// `sh_size` in bytes.
    pub size: u32,
}

const SHT_NOBITS: u32 = 8;
const SHF_WRITE: u32 = 0x1;
const SHF_ALLOC: u32 = 0x2;

/// Where a section lives on the chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Read-only, in flash only (code, constants, vector table).
    Flash,
    /// Initialised data: its initial values in flash, the variables in RAM.
    FlashAndRam,
    /// Zero-initialised or uninitialised RAM (`NOBITS`).
    Ram,
    /// Not loaded (debug info, symbols, defmt's string table).
    None,
}

impl Section {
    /// Where this section takes space, from its flags and type.
    pub fn region(&self) -> Region {
        if self.flags & SHF_ALLOC == 0 || self.size == 0 {
            Region::None
        } else if self.kind == SHT_NOBITS {
            Region::Ram
        } else if self.flags & SHF_WRITE != 0 {
            Region::FlashAndRam
        } else {
            Region::Flash
        }
    }
}

/// Why a file is not an ELF this command can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// No `\x7fELF` magic.
    NotElf,
    /// Not a 32-bit little-endian ELF (the firmware's ARM format).
    NotElf32LittleEndian,
    /// A header, a section header or a name lies outside the file.
    Truncated,
    /// `e_shentsize` is smaller than a 32-bit section header.
    BadSectionHeaderSize,
}

impl std::fmt::Display for ElfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ElfError::NotElf => "not an ELF file",
            ElfError::NotElf32LittleEndian => "not a 32-bit little-endian ELF",
            ElfError::Truncated => "truncated ELF (a header or name lies outside the file)",
            ElfError::BadSectionHeaderSize => "section header entries are too small",
        })
    }
}

fn le_u16(bytes: &[u8], at: usize) -> Result<u16, ElfError> {
    let b = bytes.get(at..at + 2).ok_or(ElfError::Truncated)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn le_u32(bytes: &[u8], at: usize) -> Result<u32, ElfError> {
    let b = bytes.get(at..at + 4).ok_or(ElfError::Truncated)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Size of an ELF32 section header (`Elf32_Shdr`).
const SHDR_LEN: usize = 40;

/// Read the section headers of a 32-bit little-endian ELF (System V gABI, "Sections"), with their
/// names. Extended section numbering (`e_shnum` 0, `e_shstrndx` `SHN_XINDEX`) is followed.
/// Never panics: every offset is checked against the file.
pub fn parse_sections(bytes: &[u8]) -> Result<Vec<Section>, ElfError> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ElfError::NotElf);
    }
    // e_ident[EI_CLASS] = ELFCLASS32, e_ident[EI_DATA] = ELFDATA2LSB.
    if bytes.get(4) != Some(&1) || bytes.get(5) != Some(&1) {
        return Err(ElfError::NotElf32LittleEndian);
    }
    let shoff = le_u32(bytes, 0x20)? as usize;
    let shentsize = usize::from(le_u16(bytes, 0x2E)?);
    let mut shnum = usize::from(le_u16(bytes, 0x30)?);
    let mut shstrndx = usize::from(le_u16(bytes, 0x32)?);
    if shoff == 0 {
        return Ok(Vec::new());
    }
    if shentsize < SHDR_LEN {
        return Err(ElfError::BadSectionHeaderSize);
    }
    let header = |i: usize| -> Result<&[u8], ElfError> {
        let start = i
            .checked_mul(shentsize)
            .and_then(|o| o.checked_add(shoff))
            .ok_or(ElfError::Truncated)?;
        bytes
            .get(start..start + SHDR_LEN)
            .ok_or(ElfError::Truncated)
    };
    // Extended numbering: the real counts are in section 0.
    if shnum == 0 {
        shnum = le_u32(header(0)?, 20)? as usize;
    }
    if shstrndx == 0xFFFF {
        shstrndx = le_u32(header(0)?, 24)? as usize;
    }
    let mut raw = Vec::with_capacity(shnum.min(bytes.len() / SHDR_LEN));
    for i in 0..shnum {
        let h = header(i)?;
        raw.push((
            le_u32(h, 0)?,  // sh_name
            le_u32(h, 4)?,  // sh_type
            le_u32(h, 8)?,  // sh_flags
            le_u32(h, 12)?, // sh_addr
            le_u32(h, 16)?, // sh_offset
            le_u32(h, 20)?, // sh_size
        ));
    }
    let names: &[u8] = match raw.get(shstrndx) {
        Some(&(_, kind, _, _, offset, size)) if kind != SHT_NOBITS && shstrndx != 0 => {
            let (offset, size) = (offset as usize, size as usize);
            bytes
                .get(offset..offset.checked_add(size).ok_or(ElfError::Truncated)?)
                .ok_or(ElfError::Truncated)?
        }
        _ => &[],
    };
    raw.into_iter()
        .map(|(name, kind, flags, addr, _, size)| {
            let name = if names.is_empty() {
                String::new()
            } else {
                let tail = names.get(name as usize..).ok_or(ElfError::Truncated)?;
                let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
                String::from_utf8_lossy(&tail[..end]).into_owned()
            };
            Ok(Section {
                name,
                kind,
                flags,
                addr,
                size,
            })
        })
        .collect()
}

/// The firmware's use of flash and RAM, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Read-only sections: code, constants, the vector table.
    pub text: u64,
    /// Initialised data (its image in flash and its variables in RAM).
    pub data: u64,
    /// Zero-initialised and uninitialised RAM.
    pub bss: u64,
}

impl Usage {
    /// Add up the sections by [`Section::region`].
    pub fn of(sections: &[Section]) -> Usage {
        let mut usage = Usage::default();
        for s in sections {
            let size = u64::from(s.size);
            match s.region() {
                Region::Flash => usage.text += size,
                Region::FlashAndRam => usage.data += size,
                Region::Ram => usage.bss += size,
                Region::None => {}
            }
        }
        usage
    }

    /// Flash: text + rodata + the initial values of data.
    pub fn flash(&self) -> u64 {
        self.text + self.data
    }

    /// Static RAM: data + bss (no stack).
    pub fn static_ram(&self) -> u64 {
        self.data + self.bss
    }

    /// RAM: static RAM + [`STACK_BUDGET`].
    pub fn ram(&self) -> u64 {
        self.static_ram() + STACK_BUDGET
    }

    /// The budgets this usage exceeds, described; empty when within budget.
    pub fn over_budget(&self) -> Vec<String> {
        let mut over = Vec::new();
        if self.flash() > FLASH_BUDGET {
            over.push(format!("flash {} B > {} B", self.flash(), FLASH_BUDGET));
        }
        if self.ram() > RAM_BUDGET {
            over.push(format!(
                "RAM {} B (static {} B + stack {} B) > {} B",
                self.ram(),
                self.static_ram(),
                STACK_BUDGET,
                RAM_BUDGET
            ));
        }
        over
    }
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn percent(part: u64, whole: u64) -> String {
    format!("{:.0}%", part as f64 * 100.0 / whole as f64)
}

/// The report `cargo xtask size` prints.
pub fn report(elf: &Path, sections: &[Section], usage: &Usage) -> String {
    let mut out = format!("firmware size: {}\n\n", elf.display());
    out.push_str(&format!(
        "  {:<24} {:>10} {:>8}  {}\n",
        "section", "address", "bytes", "in"
    ));
    for s in sections {
        let region = match s.region() {
            Region::Flash => "flash",
            Region::FlashAndRam => "flash + RAM",
            Region::Ram => "RAM",
            Region::None => continue,
        };
        out.push_str(&format!(
            "  {:<24} {:#010x} {:>8}  {}\n",
            s.name, s.addr, s.size, region
        ));
    }
    let ok = |over: bool| if over { "OVER BUDGET" } else { "ok" };
    out.push_str(&format!(
        "\n  flash       {:>7} B ({}) = text+rodata {} B + data init {} B; budget {} ({}) {}\n",
        usage.flash(),
        kib(usage.flash()),
        usage.text,
        usage.data,
        kib(FLASH_BUDGET),
        percent(usage.flash(), FLASH_BUDGET),
        ok(usage.flash() > FLASH_BUDGET),
    ));
    out.push_str(&format!(
        "  RAM         {:>7} B ({}) = data {} B + bss {} B + stack budget {} B; budget {} ({}) {}\n",
        usage.ram(),
        kib(usage.ram()),
        usage.data,
        usage.bss,
        STACK_BUDGET,
        kib(RAM_BUDGET),
        percent(usage.ram(), RAM_BUDGET),
        ok(usage.ram() > RAM_BUDGET),
    ));
    out.push_str(&format!(
        "  stack       {} budgeted (enforced at link time); {} B of the chip's {} left above the statics\n",
        kib(STACK_BUDGET),
        RAM_TOTAL.saturating_sub(usage.static_ram()),
        kib(RAM_TOTAL),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a tiny ELF32 little-endian file: a header, a section-name table, and the given
    /// sections (name, type, flags, addr, size) after the null section.
    fn tiny_elf(sections: &[(&str, u32, u32, u32, u32)]) -> Vec<u8> {
        // Section-name string table: "\0" then each name, then ".shstrtab".
        let mut names = vec![0u8];
        let mut name_offsets = Vec::new();
        for (name, ..) in sections {
            name_offsets.push(names.len() as u32);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        let shstrtab_name = names.len() as u32;
        names.extend_from_slice(b".shstrtab\0");

        let names_offset = 52u32; // right after the ELF header
        let shoff = names_offset + names.len() as u32;
        let shnum = sections.len() as u16 + 2; // null + sections + .shstrtab

        let mut elf = Vec::new();
        elf.extend_from_slice(b"\x7fELF");
        elf.extend_from_slice(&[1, 1, 1, 0]); // ELFCLASS32, ELFDATA2LSB, EV_CURRENT, SysV
        elf.extend_from_slice(&[0; 8]); // padding of e_ident
        elf.extend_from_slice(&2u16.to_le_bytes()); // e_type ET_EXEC
        elf.extend_from_slice(&40u16.to_le_bytes()); // e_machine EM_ARM
        elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
        elf.extend_from_slice(&0x0800_0101u32.to_le_bytes()); // e_entry
        elf.extend_from_slice(&0u32.to_le_bytes()); // e_phoff
        elf.extend_from_slice(&shoff.to_le_bytes()); // e_shoff
        elf.extend_from_slice(&0x0500_0200u32.to_le_bytes()); // e_flags
        elf.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
        elf.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
        elf.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
        elf.extend_from_slice(&40u16.to_le_bytes()); // e_shentsize
        elf.extend_from_slice(&shnum.to_le_bytes()); // e_shnum
        elf.extend_from_slice(&(shnum - 1).to_le_bytes()); // e_shstrndx: the last one
        assert_eq!(elf.len(), 52);
        elf.extend_from_slice(&names);

        let mut shdr = |name: u32, kind: u32, flags: u32, addr: u32, offset: u32, size: u32| {
            for word in [name, kind, flags, addr, offset, size, 0, 0, 4, 0] {
                elf.extend_from_slice(&word.to_le_bytes());
            }
        };
        shdr(0, 0, 0, 0, 0, 0); // SHN_UNDEF
        for ((_, kind, flags, addr, size), name) in sections.iter().zip(&name_offsets) {
            // Contents are not needed for sizes: point every section at offset 0.
            shdr(*name, *kind, *flags, *addr, 0, *size);
        }
        shdr(shstrtab_name, 3, 0, 0, names_offset, names.len() as u32); // SHT_STRTAB
        elf
    }

    const PROGBITS: u32 = 1;
    const AX: u32 = SHF_ALLOC | 0x4;
    const A: u32 = SHF_ALLOC;
    const WA: u32 = SHF_ALLOC | SHF_WRITE;

    fn firmware_like() -> Vec<u8> {
        tiny_elf(&[
            (".vector_table", PROGBITS, A, 0x0800_0000, 0x130),
            (".text", PROGBITS, AX, 0x0800_0130, 20_000),
            (".rodata", PROGBITS, A, 0x0800_4F50, 3_000),
            (".data", PROGBITS, WA, 0x2000_0000, 56),
            (".bss", SHT_NOBITS, WA, 0x2000_0038, 6_000),
            (".uninit", SHT_NOBITS, WA, 0x2000_17A8, 1_024),
            (".defmt", PROGBITS, 0, 0, 900),
            (".debug_info", PROGBITS, 0, 0, 100_000),
        ])
    }

    #[test]
    fn parse_sections_reads_names_types_flags_addresses_and_sizes() {
        let sections = parse_sections(&firmware_like()).unwrap();
        assert_eq!(sections.len(), 10);
        assert_eq!(sections[0].name, "");
        assert_eq!(
            sections[2],
            Section {
                name: ".text".into(),
                kind: PROGBITS,
                flags: AX,
                addr: 0x0800_0130,
                size: 20_000
            }
        );
        assert_eq!(sections[5].name, ".bss");
        assert_eq!(sections[5].kind, SHT_NOBITS);
        assert_eq!(sections[9].name, ".shstrtab");
    }

    #[test]
    fn usage_counts_text_and_data_init_in_flash_and_data_bss_uninit_in_ram() {
        let usage = Usage::of(&parse_sections(&firmware_like()).unwrap());
        assert_eq!(
            usage,
            Usage {
                text: 0x130 + 20_000 + 3_000,
                data: 56,
                bss: 6_000 + 1_024
            }
        );
        assert_eq!(usage.flash(), 0x130 + 20_000 + 3_000 + 56);
        assert_eq!(usage.static_ram(), 56 + 6_000 + 1_024);
        assert_eq!(usage.ram(), 56 + 6_000 + 1_024 + STACK_BUDGET);
        assert!(usage.over_budget().is_empty());
    }

    #[test]
    fn non_allocated_sections_take_no_space() {
        let usage = Usage::of(
            &parse_sections(&tiny_elf(&[
                (".defmt", PROGBITS, 0, 0, 5_000),
                (".debug_line", PROGBITS, 0, 0, 70_000),
            ]))
            .unwrap(),
        );
        assert_eq!(usage, Usage::default());
    }

    #[test]
    fn over_budget_names_flash_and_ram_separately() {
        let flash_heavy = Usage {
            text: FLASH_BUDGET,
            data: 1,
            bss: 0,
        };
        let over = flash_heavy.over_budget();
        assert_eq!(over.len(), 1);
        assert!(over[0].starts_with("flash"));

        let ram_heavy = Usage {
            text: 0,
            data: 0,
            bss: RAM_BUDGET - STACK_BUDGET + 1,
        };
        let over = ram_heavy.over_budget();
        assert_eq!(over.len(), 1);
        assert!(over[0].starts_with("RAM"));

        let at_the_limit = Usage {
            text: FLASH_BUDGET,
            data: 0,
            bss: RAM_BUDGET - STACK_BUDGET,
        };
        assert!(at_the_limit.over_budget().is_empty());
    }

    #[test]
    fn report_lists_loaded_sections_and_the_totals() {
        let elf = firmware_like();
        let sections = parse_sections(&elf).unwrap();
        let text = report(Path::new("fw.elf"), &sections, &Usage::of(&sections));
        assert!(text.contains(".text"));
        assert!(text.contains(".bss"));
        assert!(!text.contains(".debug_info"));
        assert!(text.contains("flash"));
        assert!(text.contains("stack budget 4096 B"));
    }

    #[test]
    fn parse_sections_rejects_what_is_not_an_elf32_le() {
        assert_eq!(parse_sections(b""), Err(ElfError::NotElf));
        assert_eq!(parse_sections(b"MZ\x90\x00"), Err(ElfError::NotElf));
        let mut elf64 = firmware_like();
        elf64[4] = 2;
        assert_eq!(parse_sections(&elf64), Err(ElfError::NotElf32LittleEndian));
        let mut big_endian = firmware_like();
        big_endian[5] = 2;
        assert_eq!(
            parse_sections(&big_endian),
            Err(ElfError::NotElf32LittleEndian)
        );
    }

    #[test]
    fn parse_sections_never_panics_on_a_truncated_or_corrupt_file() {
        let elf = firmware_like();
        for len in 0..elf.len() {
            let _ = parse_sections(&elf[..len]);
        }
        // Section headers past the end of the file.
        let mut far = elf.clone();
        far[0x20..0x24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_sections(&far), Err(ElfError::Truncated));
        // A name offset past the string table.
        let mut bad_name = elf.clone();
        let shoff = u32::from_le_bytes(elf[0x20..0x24].try_into().unwrap()) as usize;
        bad_name[shoff + 40..shoff + 44].copy_from_slice(&0xFFFF_u32.to_le_bytes());
        assert_eq!(parse_sections(&bad_name), Err(ElfError::Truncated));
        // Entries too small for a section header.
        let mut small = elf.clone();
        small[0x2E..0x30].copy_from_slice(&8u16.to_le_bytes());
        assert_eq!(parse_sections(&small), Err(ElfError::BadSectionHeaderSize));
        // Every single-byte corruption of the headers.
        for at in 0..elf.len().min(shoff + 10 * 40) {
            for value in [0x00, 0x7F, 0xFF] {
                let mut corrupt = elf.clone();
                corrupt[at] = value;
                let _ = parse_sections(&corrupt);
            }
        }
    }

    #[test]
    fn parse_sections_follows_extended_section_numbering() {
        let mut elf = firmware_like();
        let shoff = u32::from_le_bytes(elf[0x20..0x24].try_into().unwrap()) as usize;
        let shnum = u16::from_le_bytes([elf[0x30], elf[0x31]]);
        let shstrndx = u16::from_le_bytes([elf[0x32], elf[0x33]]);
        // e_shnum 0 and e_shstrndx SHN_XINDEX: section 0 holds them in sh_size and sh_link.
        elf[0x30..0x32].copy_from_slice(&0u16.to_le_bytes());
        elf[0x32..0x34].copy_from_slice(&0xFFFFu16.to_le_bytes());
        elf[shoff + 20..shoff + 24].copy_from_slice(&u32::from(shnum).to_le_bytes());
        elf[shoff + 24..shoff + 28].copy_from_slice(&u32::from(shstrndx).to_le_bytes());
        let sections = parse_sections(&elf).unwrap();
        assert_eq!(sections.len(), 10);
        assert_eq!(sections[2].name, ".text");
    }
}

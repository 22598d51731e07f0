//! The virtual card driven by OpenSC's own tools through a private pcscd and vpcd: what a token
//! owner does with sc-hsm-tool and pkcs11-tool, with each signature checked by OpenSSL.
//!
//! Needs root, pcscd, vsmartcard-vpcd, iproute2, opensc and openssl (CI installs them); without
//! them these tests fail with the sandbox's message. Everything runs on the test's thread and the
//! threads and processes it starts, as the sandbox's namespaces require.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tessera_card::memory::MemoryStorage;
use tessera_card::state::CardState;
use tessera_card::virtual_card::{CardConfig, VirtualCard};
use tessera_card::vpcd::{self, ServeConfig, ServingCard};
use tessera_testkit::PcscSandbox;

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const SO_PIN: &str = "3537363231383830";
const PIN: &str = "648219";

/// A private pcscd with one virtual card on `port`, and the card's memory.
struct Bench {
    memory: MemoryStorage,
    _serving: ServingCard<VirtualCard<MemoryStorage>>,
    _sandbox: PcscSandbox,
    dir: PathBuf,
}

impl Bench {
    fn start(port: u16, seed: u8) -> Bench {
        let mut sandbox = PcscSandbox::start(&[port]).unwrap_or_else(|e| panic!("{e}"));
        let memory = MemoryStorage::new();
        let card = VirtualCard::new(
            memory.clone(),
            CardConfig::default(),
            [seed; 32],
            [seed; 32],
        )
        .unwrap();
        let serving = vpcd::spawn(card, ServeConfig::loopback(port)).unwrap();
        sandbox
            .wait_for_card(port, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"));
        let dir =
            std::env::temp_dir().join(format!("tessera-opensc-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Bench {
            memory,
            _serving: serving,
            _sandbox: sandbox,
            dir,
        }
    }

    fn state(&self) -> CardState {
        CardState::from_image(&self.memory.snapshot().unwrap()).unwrap()
    }

    fn user_tries(&self) -> u8 {
        self.state().user_pin.unwrap().tries_left
    }

    fn so_tries(&self) -> u8 {
        self.state().so_pin.unwrap().tries_left
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn initialise(&self) {
        ok(run(
            "sc-hsm-tool",
            &["--initialize", "--so-pin", SO_PIN, "--pin", PIN],
        ));
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run a tool; its output is kept for the assertion message. PINs are test defaults, never
/// secrets, but the output is printed only on failure.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn p11(args: &[&str]) -> Output {
    let mut all = vec!["--module", MODULE];
    all.extend_from_slice(args);
    run("pkcs11-tool", &all)
}

#[track_caller]
fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Generate a key pair with pkcs11-tool, sign `data` with `mechanism`, and verify the signature
/// with OpenSSL against the public key read back from the token.
fn keygen_sign_verify(bench: &Bench, key_type: &str, id: &str, mechanism: &str, extra: &[&str]) {
    ok(p11(&[
        "--login",
        "--pin",
        PIN,
        "--keypairgen",
        "--key-type",
        key_type,
        "--id",
        id,
        "--label",
        id,
    ]));
    let data = bench.path(&format!("data-{id}"));
    std::fs::write(&data, b"what are my PIN and SO-PIN counters?").unwrap();
    let signature = bench.path(&format!("sig-{id}"));
    let mut args = vec![
        "--login",
        "--pin",
        PIN,
        "--sign",
        "--id",
        id,
        "--mechanism",
        mechanism,
        "--input-file",
        path_str(&data),
        "--output-file",
        path_str(&signature),
    ];
    args.extend_from_slice(extra);
    ok(p11(&args));
    let public_der = bench.path(&format!("pub-{id}.der"));
    ok(p11(&[
        "--read-object",
        "--type",
        "pubkey",
        "--id",
        id,
        "--output-file",
        path_str(&public_der),
    ]));
    let verified = ok(run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            path_str(&public_der),
            "-keyform",
            "DER",
            "-signature",
            path_str(&signature),
            path_str(&data),
        ],
    ));
    assert!(
        text(&verified).contains("Verified OK"),
        "{}",
        text(&verified)
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sc_hsm_tool_initialises_with_the_default_pins() {
    let bench = Bench::start(35201, 50);
    bench.initialise();
    let state = bench.state();
    assert!(state.is_initialised());
    assert_eq!(state.user_pin.as_ref().unwrap().max_tries, 3);
    assert_eq!(state.so_pin.as_ref().unwrap().tries_left, 15);
    // sc-hsm-tool's status display. It ends with a failed DKEK query, as on a real SmartCard-HSM
    // 4.0 initialised without DKEK (6A88, sc-hsm-protocol.md §6.5).
    let info = squeeze(&text(&run("sc-hsm-tool", &[])));
    assert!(info.contains("User PIN tries left : 3"), "{info}");
    assert!(info.contains("SO-PIN tries left : 15"), "{info}");
    assert!(
        info.contains("User PIN reset with SO-PIN enabled"),
        "{info}"
    );
}

/// Collapse runs of spaces (sc-hsm-tool aligns its columns).
fn squeeze(s: &str) -> String {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn pkcs11_tool_generates_and_signs_ec_p256() {
    let bench = Bench::start(35203, 51);
    bench.initialise();
    keygen_sign_verify(
        &bench,
        "EC:prime256v1",
        "01",
        "ECDSA-SHA256",
        &["--signature-format", "openssl"],
    );
}

#[test]
fn pkcs11_tool_generates_and_signs_rsa_2048() {
    let bench = Bench::start(35205, 52);
    bench.initialise();
    keygen_sign_verify(&bench, "rsa:2048", "02", "SHA256-RSA-PKCS", &[]);
}

#[test]
fn user_pin_countdown_through_pkcs11_tool_and_unblock_with_the_so_pin() {
    let bench = Bench::start(35207, 53);
    bench.initialise();
    for expected_left in [2, 1, 0] {
        let out = p11(&["--login", "--pin", "111111", "--list-objects"]);
        assert!(!out.status.success(), "a wrong PIN logged in");
        let said = text(&out);
        let expected = if expected_left == 0 {
            "CKR_PIN_LOCKED"
        } else {
            "CKR_PIN_INCORRECT"
        };
        assert!(said.contains(expected), "{said}");
        assert_eq!(bench.user_tries(), expected_left);
    }
    let out = p11(&["--login", "--pin", PIN, "--list-objects"]);
    assert!(text(&out).contains("CKR_PIN_LOCKED"), "{}", text(&out));
    // Unblock with the SO-PIN: RESET RETRY COUNTER with a new PIN.
    ok(p11(&[
        "--init-pin",
        "--login",
        "--login-type",
        "so",
        "--so-pin",
        SO_PIN,
        "--new-pin",
        PIN,
    ]));
    assert_eq!(bench.user_tries(), 3);
    assert_eq!(bench.so_tries(), 15);
    ok(p11(&["--login", "--pin", PIN, "--list-objects"]));
}

#[test]
fn reinitialising_with_a_wrong_so_pin_is_refused_and_counted() {
    let bench = Bench::start(35209, 54);
    bench.initialise();
    ok(p11(&[
        "--login",
        "--pin",
        PIN,
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--id",
        "07",
    ]));
    let keys_before = bench.state().keys.len();
    // sc-hsm-tool reports the failure but exits 0, so read what it says.
    let out = run(
        "sc-hsm-tool",
        &["--initialize", "--so-pin", "0102030405060708", "--pin", PIN],
    );
    assert!(
        text(&out).contains("PIN code or key incorrect"),
        "{}",
        text(&out)
    );
    assert_eq!(bench.so_tries(), 14);
    assert_eq!(
        bench.state().keys.len(),
        keys_before,
        "keys survived the refused initialise"
    );
    let info = squeeze(&text(&run("sc-hsm-tool", &[])));
    assert!(info.contains("SO-PIN tries left : 14"), "{info}");
}

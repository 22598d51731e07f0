//! `cargo xtask hil [--rig FILE] [FILTERS...]`: the conformance suites (`tests/`, package
//! `tessera-conformance`) under cargo nextest, on the virtual rig or a real one, with a JUnit
//! report and a summary per board.
//!
//! The steps: check the prerequisites; read the rig file's `backend` (nothing else: the test
//! binary loads and checks the whole file); build the suites (`nextest run --no-run`); ask the
//! test binary for its plan (`TESSERA_HIL_PLAN=1`: which case runs on which board, and why a
//! case is ignored), which also fails early when the rig file does not load; open the rig once
//! (`TESSERA_HIL_PREFLIGHT=1`: a controller that does not answer is one line and no run); run
//! them, each case in its own process, timed; then read nextest's JUnit report and print what passed,
//! failed and was ignored, per board.
//!
//! Virtual rigs use the nextest profile `hil`; real rigs use `hil-real` (one test at a time,
//! hardware-sized timeouts, no retries: a retried PIN-counter case would spend tries) and build
//! with `tessera-rig/probe` for flashing and logs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::prereq::{self, Policy};
use crate::rigfile::{Backend, RigFile};

/// The package of the conformance suites.
pub const PACKAGE: &str = "tessera-conformance";
/// Its libtest-mimic test target.
pub const TEST_TARGET: &str = "conformance";
/// The JUnit `classname` of that target's cases (`<package>::<target>`).
const CLASSNAME: &str = "tessera-conformance::conformance";

const USAGE: &str = "\
usage: cargo xtask hil [--rig FILE] [FILTERS...]

  runs the conformance suites (tests/) under cargo nextest on a rig, each case in its own
  process, with a JUnit report in target/nextest/<profile>/junit.xml and a summary per board.
  --rig FILE  the rig file (default rig/virtual.toml: no hardware); relative to the current
              directory. Real rigs (backend = \"real\") run with nextest profile hil-real.
  FILTERS     run only the cases whose name (suite::case::board) contains one of them
";

/// What `cargo xtask hil` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--rig FILE`, as given.
    pub rig: Option<PathBuf>,
    /// Test-name filters (substrings).
    pub filters: Vec<String>,
    /// `--help`.
    pub help: bool,
}

impl Options {
    /// Parses the arguments after `hil`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            rig: None,
            filters: Vec::new(),
            help: false,
        };
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match arg.as_str() {
                "--rig" => {
                    let file = rest
                        .next()
                        .filter(|f| !f.is_empty())
                        .ok_or(format!("hil: --rig takes a file\n\n{USAGE}"))?;
                    if options.rig.replace(PathBuf::from(file)).is_some() {
                        return Err("hil: --rig given twice".to_owned());
                    }
                }
                "-h" | "--help" => options.help = true,
                other if other.starts_with('-') => {
                    return Err(format!("hil: unknown option `{other}`\n\n{USAGE}"))
                }
                filter => options.filters.push(filter.to_owned()),
            }
        }
        Ok(options)
    }
}

/// The nextest profile for a backend (both in `.config/nextest.toml`).
pub fn nextest_profile(backend: Backend) -> &'static str {
    match backend {
        Backend::Virtual => "hil",
        Backend::Real => "hil-real",
    }
}

/// The cargo features a backend needs.
pub fn features(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Virtual => &[],
        // probe-rs, for flashing and the boards' logs over RTT.
        Backend::Real => &["--features", "tessera-rig/probe"],
    }
}

/// `path` made absolute against `cwd` (not canonicalised: a missing file keeps its name).
pub fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// `path` shown relative to `cwd` when it is inside it.
pub fn shown(path: &Path, cwd: &Path) -> String {
    path.strip_prefix(cwd).unwrap_or(path).display().to_string()
}

/// Where nextest writes a profile's JUnit report: its store, `target/nextest` under the
/// workspace root (nextest's default `store.dir`, whatever `CARGO_TARGET_DIR` says).
pub fn junit_path(root: &Path, profile: &str) -> PathBuf {
    root.join("target")
        .join("nextest")
        .join(profile)
        .join("junit.xml")
}

/// Run `cargo xtask hil ARGS`.
pub fn run(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    if options.help {
        print!("{USAGE}");
        return Ok(());
    }
    let root = crate::workspace_root();
    let cwd = std::env::current_dir().map_err(|e| format!("hil: current directory: {e}"))?;
    let rig_path = match &options.rig {
        Some(file) => absolute(file, &cwd),
        None => root.join("rig/virtual.toml"),
    };
    let rig = RigFile::load(&rig_path, &shown(&rig_path, &cwd)).map_err(|e| format!("hil: {e}"))?;
    let rig_name = rig.name.clone().unwrap_or_else(|| "(unnamed)".to_owned());
    prereq::ensure(Policy::InstallWhenPossible)?;

    let profile = nextest_profile(rig.backend);
    let features = features(rig.backend);
    eprintln!(
        "xtask: hil: rig `{rig_name}` ({}, {} backend), nextest profile {profile}",
        shown(&rig_path, &cwd),
        rig.backend
    );
    let junit = junit_path(&root, profile);
    // A report left by an earlier run must not be read as this run's.
    match std::fs::remove_file(&junit) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("hil: cannot remove {}: {e}", junit.display())),
    }

    let cargo = prereq::cargo();
    let mut nextest: Vec<&str> = vec![
        "nextest",
        "run",
        "--locked",
        "-p",
        PACKAGE,
        "--test",
        TEST_TARGET,
        "--profile",
        profile,
    ];
    nextest.extend(features);

    // 1. Build, so that the timed run below is the run alone.
    eprintln!("xtask: hil: building: cargo {} --no-run", nextest.join(" "));
    let started = Instant::now();
    let status = Command::new(&cargo)
        .args(&nextest)
        .arg("--no-run")
        .current_dir(&root)
        .status()
        .map_err(|e| format!("hil: cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("hil: building the conformance suites failed".to_owned());
    }
    eprintln!(
        "xtask: hil: build: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 2. The plan: loads the rig file (one clear error if it does not) and says what is ignored.
    let (binary, plan) = plan(&cargo, &root, &rig_path, features)?;

    // 3. The preflight: the rig opens (its controller answers, every board goes off) or the
    //    run stops here with the rig's one line, before any case spends time failing on it.
    preflight(&binary, &root, &rig_path)?;
    let ignored = plan.iter().filter(|e| e.ignored.is_some()).count();
    eprintln!(
        "xtask: hil: plan: {} cases, {} to run, {ignored} ignored",
        plan.len(),
        plan.len() - ignored
    );

    // 4. The run, each case in its own process.
    let mut run = Command::new(&cargo);
    run.args(&nextest)
        .current_dir(&root)
        .env("TESSERA_RIG", &rig_path);
    if !options.filters.is_empty() {
        run.arg("--").args(&options.filters);
    }
    eprintln!(
        "xtask: hil: cargo {}{}",
        nextest.join(" "),
        if options.filters.is_empty() {
            String::new()
        } else {
            format!(" -- {}", options.filters.join(" "))
        }
    );
    let started = Instant::now();
    let status = run
        .status()
        .map_err(|e| format!("hil: cannot run cargo: {e}"))?;
    let elapsed = started.elapsed().as_secs_f64();

    // 5. The summary.
    let xml = std::fs::read_to_string(&junit).map_err(|e| {
        format!(
            "hil: no JUnit report at {} ({e}); nextest exited with {status}",
            junit.display()
        )
    })?;
    let cases = parse_junit(&xml).map_err(|e| format!("hil: {}: {e}", junit.display()))?;
    let boards = summarize(&plan, &cases, &options.filters);
    eprint!("\n{}", format_summary(&rig_name, &boards));
    eprintln!(
        "xtask: hil: {}-rig run: {elapsed:.1} s (after the build)",
        rig.backend
    );
    eprintln!("xtask: hil: JUnit report: {}", shown(&junit, &cwd));

    let failed: usize = boards.iter().map(|b| b.failed.len()).sum();
    if failed > 0 {
        return Err(format!(
            "hil: {failed} case{} failed",
            if failed == 1 { "" } else { "s" }
        ));
    }
    if !status.success() {
        return Err(format!("hil: nextest failed ({status})"));
    }
    Ok(())
}

/// Runs the test binary in plan mode and parses what it prints. The binary is run directly
/// (found with `cargo test --no-run`, which builds nothing new after nextest's build), so that
/// its one line of error, when the rig file does not load, is all that is printed.
fn plan(
    cargo: &str,
    root: &Path,
    rig: &Path,
    features: &[&str],
) -> Result<(PathBuf, Vec<PlanEntry>), String> {
    let output = Command::new(cargo)
        .args(["test", "--locked", "-p", PACKAGE, "--test", TEST_TARGET])
        .args(["--no-run", "--message-format=json-render-diagnostics"])
        .args(features)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("hil: cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "hil: cannot build the `{TEST_TARGET}` test of {PACKAGE} ({})",
            output.status
        ));
    }
    let binary = test_executable(&String::from_utf8_lossy(&output.stdout), TEST_TARGET)
        .ok_or_else(|| format!("hil: cargo did not name the `{TEST_TARGET}` test binary"))?;
    let output = Command::new(&binary)
        .current_dir(root)
        .env("TESSERA_RIG", rig)
        .env("TESSERA_HIL_PLAN", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("hil: cannot run {}: {e}", binary.display()))?;
    if !output.status.success() {
        // The binary said why on stderr (a rig file that does not load: the file, the line,
        // the key; never a PIN).
        return Err(format!(
            "hil: the conformance plan failed ({}): see above; nothing was run",
            output.status
        ));
    }
    let entries = parse_plan(&String::from_utf8_lossy(&output.stdout))
        .map_err(|e| format!("hil: plan: {e}"))?;
    Ok((binary, entries))
}

/// Runs the test binary in preflight mode (`TESSERA_HIL_PREFLIGHT=1`): it opens the rig once
/// and switches everything off. A rig that cannot be opened (a serial port that does not
/// exist or does not answer, a controller smaller than the file) is one line and no run.
fn preflight(binary: &Path, root: &Path, rig: &Path) -> Result<(), String> {
    let status = Command::new(binary)
        .current_dir(root)
        .env("TESSERA_RIG", rig)
        .env("TESSERA_HIL_PREFLIGHT", "1")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("hil: cannot run {}: {e}", binary.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "hil: the rig could not be opened ({status}): see above; nothing was run"
        ))
    }
}

/// The executable of the test target `name` in cargo's JSON messages (`--message-format=json`:
/// one object per line; the `compiler-artifact` of a `test` target has an `executable`).
pub fn test_executable(messages: &str, name: &str) -> Option<PathBuf> {
    let target_name = format!("\"name\":\"{name}\"");
    messages
        .lines()
        .filter(|line| {
            line.contains("\"reason\":\"compiler-artifact\"")
                && line.contains("\"kind\":[\"test\"]")
                && line.contains(&target_name)
        })
        .find_map(|line| json_string(line, "executable"))
        .map(PathBuf::from)
}

/// The string value of the first `"key":"..."` in a JSON text (escapes decoded); `None` when it
/// is absent, not a string, or malformed.
fn json_string(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = json.get(start..)?.chars();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The plan

/// One line of the test binary's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEntry {
    /// `suite::case::dut`.
    pub name: String,
    /// `None` when the case runs; the reason, in words, when it is ignored.
    pub ignored: Option<String>,
}

/// Parses the plan: one case per line, `name<TAB>run` or `name<TAB>ignored<TAB>reason`. Lines
/// without a tab (anything else the binary or libtest prints) are skipped.
pub fn parse_plan(text: &str) -> Result<Vec<PlanEntry>, String> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if !line.contains('\t') {
            continue;
        }
        let mut fields = line.split('\t');
        let name = fields.next().unwrap_or_default().trim();
        if name.is_empty() {
            return Err(format!("line {}: a case without a name", index + 1));
        }
        let ignored = match fields.next() {
            Some("run") => None,
            Some("ignored") => Some(
                fields
                    .next()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .unwrap_or("no reason given")
                    .to_owned(),
            ),
            _ => {
                return Err(format!(
                    "line {}: {name}: expected `run` or `ignored` after the name",
                    index + 1
                ))
            }
        };
        if fields.next().is_some() {
            return Err(format!("line {}: {name}: too many fields", index + 1));
        }
        entries.push(PlanEntry {
            name: name.to_owned(),
            ignored,
        });
    }
    Ok(entries)
}

// ---------------------------------------------------------------------------------------------
// The JUnit report

/// How one test case ended, as the JUnit report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It passed (maybe after retries: nextest's `flakyFailure`).
    Passed,
    /// It failed or timed out: the failure's message (or type), first line.
    Failed(String),
    /// It was skipped (`<skipped>`; nextest leaves skipped tests out, other writers do not).
    Skipped,
}

/// One `<testcase>` of a JUnit report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunitCase {
    /// `name`: the test's name.
    pub name: String,
    /// `classname`: nextest puts `<package>::<binary>` there.
    pub classname: String,
    /// How it ended.
    pub verdict: Verdict,
}

/// Parses the test cases out of a JUnit XML report (nextest's: `testsuites` > `testsuite` >
/// `testcase`, with `failure` or `error` children for failures and timeouts, and the case's
/// output in `system-out` and `system-err`).
///
/// A failure's line is its `message` attribute; nextest leaves it out for libtest-mimic cases,
/// whose message is in the captured stdout under `---- <name> ----`, so it is taken from there,
/// else from a panic in stderr, else the failure's `type` (`test timeout`, ...).
pub fn parse_junit(xml: &str) -> Result<Vec<JunitCase>, String> {
    let mut cases = Vec::new();
    let mut open: Option<OpenCase> = None;
    let mut saw_root = false;
    for event in xml_events(xml)? {
        match event {
            XmlEvent::Start { name, attrs, empty } => {
                let attr = |key: &str| {
                    attrs
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, v)| v.clone())
                };
                match (name, open.as_mut()) {
                    ("testsuites" | "testsuite", _) => saw_root = true,
                    ("testcase", Some(_)) => return Err("a testcase inside a testcase".to_owned()),
                    ("testcase", None) => {
                        let case = OpenCase::new(
                            attr("name").ok_or("a testcase without a name")?,
                            attr("classname").unwrap_or_default(),
                        );
                        if empty {
                            cases.push(case.finish());
                        } else {
                            open = Some(case);
                        }
                    }
                    (_, None) => {}
                    // Earlier tries of a retried case: their output is not this verdict's.
                    ("rerunFailure" | "flakyFailure" | "rerunError" | "flakyError", Some(case))
                        if !empty =>
                    {
                        case.retry_depth += 1;
                    }
                    (_, Some(case)) if case.retry_depth > 0 => {}
                    ("failure" | "error", Some(case)) => {
                        case.failure = Some((attr("message"), attr("type")));
                        if !empty {
                            case.capture = Capture::Failure;
                        }
                    }
                    ("skipped", Some(case)) => case.skipped = true,
                    ("system-out", Some(case)) if !empty => case.capture = Capture::Out,
                    ("system-err", Some(case)) if !empty => case.capture = Capture::Err,
                    _ => {}
                }
            }
            XmlEvent::End { name } => match (name, open.as_mut()) {
                ("testcase", _) => cases.push(open.take().ok_or("a stray </testcase>")?.finish()),
                ("rerunFailure" | "flakyFailure" | "rerunError" | "flakyError", Some(case)) => {
                    case.retry_depth = case.retry_depth.saturating_sub(1);
                }
                (_, Some(case)) if case.retry_depth == 0 => case.capture = Capture::None,
                _ => {}
            },
            XmlEvent::Text(text) => {
                if let Some(case) = open.as_mut() {
                    if case.retry_depth == 0 {
                        match case.capture {
                            Capture::None => {}
                            Capture::Failure => case.failure_text.push_str(&text),
                            Capture::Out => case.out.push_str(&text),
                            Capture::Err => case.err.push_str(&text),
                        }
                    }
                }
            }
        }
    }
    if open.is_some() {
        return Err("the report ends inside a testcase (truncated?)".to_owned());
    }
    if !saw_root {
        return Err("not a JUnit report (no testsuites or testsuite element)".to_owned());
    }
    Ok(cases)
}

/// Where the text inside a test case goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    None,
    Failure,
    Out,
    Err,
}

/// A `<testcase>` being read.
struct OpenCase {
    name: String,
    classname: String,
    /// A `failure` or `error`: its `message` and `type`.
    failure: Option<(Option<String>, Option<String>)>,
    failure_text: String,
    skipped: bool,
    out: String,
    err: String,
    capture: Capture,
    /// Inside `rerunFailure`/`flakyFailure` elements.
    retry_depth: usize,
}

impl OpenCase {
    fn new(name: String, classname: String) -> OpenCase {
        OpenCase {
            name,
            classname,
            failure: None,
            failure_text: String::new(),
            skipped: false,
            out: String::new(),
            err: String::new(),
            capture: Capture::None,
            retry_depth: 0,
        }
    }

    fn finish(self) -> JunitCase {
        let verdict = match &self.failure {
            Some((message, kind)) => Verdict::Failed(
                message
                    .as_deref()
                    .map(first_line)
                    .filter(|m| !m.is_empty())
                    .or_else(|| libtest_failure(&self.out, &self.name))
                    .or_else(|| panic_message(&self.err))
                    .or_else(|| panic_message(&self.failure_text))
                    .or_else(|| kind.as_deref().map(first_line))
                    .unwrap_or_else(|| "failed".to_owned()),
            ),
            None if self.skipped => Verdict::Skipped,
            None => Verdict::Passed,
        };
        JunitCase {
            name: self.name,
            classname: self.classname,
            verdict,
        }
    }
}

/// The first line of a libtest(-mimic) failure message in captured stdout: the first
/// non-empty line after `---- <name> ----`.
fn libtest_failure(out: &str, name: &str) -> Option<String> {
    let header = format!("---- {name} ----");
    let mut lines = out.lines().skip_while(|l| l.trim() != header).skip(1);
    lines
        .find(|l| !l.trim().is_empty())
        .filter(|l| l.trim() != "failures:")
        .map(first_line)
}

/// The message of a Rust panic in `text` (`thread 'x' panicked at file:line:col:` followed by
/// the message on the next line; older compilers put it on the same line after a comma).
fn panic_message(text: &str) -> Option<String> {
    let mut lines = text.lines();
    let line = lines.find(|l| l.contains("panicked at"))?;
    let message = if line.trim_end().ends_with(':') {
        lines.next().map(first_line).filter(|m| !m.is_empty())
    } else {
        None
    };
    Some(message.unwrap_or_else(|| first_line(line)))
}

/// The first line of `text`, at most 200 characters.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", line.get(..cut).unwrap_or(line)),
        None => line.to_owned(),
    }
}

/// One piece of an XML document (comments, declarations and blank text are skipped).
#[derive(Debug, PartialEq, Eq)]
enum XmlEvent<'a> {
    Start {
        name: &'a str,
        attrs: Vec<(&'a str, String)>,
        /// `<x/>`
        empty: bool,
    },
    End {
        name: &'a str,
    },
    /// Character data, entities decoded (CDATA as it is).
    Text(String),
}

/// The pieces of `xml` in order: enough XML for JUnit reports (elements, attributes in either
/// quote, text, the five named entities and character references, CDATA; comments, processing
/// instructions and DOCTYPE skipped).
fn xml_events(xml: &str) -> Result<Vec<XmlEvent<'_>>, String> {
    let at = |pos: usize| {
        let line = xml.get(..pos).unwrap_or(xml).matches('\n').count() + 1;
        format!("line {line}")
    };
    let mut events = Vec::new();
    let mut pos = 0;
    while pos < xml.len() {
        let rest = xml.get(pos..).unwrap_or_default();
        let Some(offset) = rest.find('<') else {
            text_event(rest, &mut events).map_err(|e| format!("{}: {e}", at(pos)))?;
            break;
        };
        text_event(rest.get(..offset).unwrap_or_default(), &mut events)
            .map_err(|e| format!("{}: {e}", at(pos)))?;
        pos += offset;
        let rest = xml.get(pos..).unwrap_or_default();
        let skip_to = |end: &str| {
            rest.find(end)
                .map(|i| (i, pos + i + end.len()))
                .ok_or_else(|| format!("{}: unterminated markup", at(pos)))
        };
        if rest.starts_with("<?") {
            pos = skip_to("?>")?.1;
        } else if rest.starts_with("<!--") {
            pos = skip_to("-->")?.1;
        } else if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            let (end, next) = skip_to("]]>")?;
            let content = cdata.get(..end.saturating_sub(9)).unwrap_or_default();
            events.push(XmlEvent::Text(content.to_owned()));
            pos = next;
        } else if rest.starts_with("<!") {
            pos = skip_to(">")?.1;
        } else if let Some(tag) = rest.strip_prefix("</") {
            let end = tag
                .find('>')
                .ok_or_else(|| format!("{}: unterminated end tag", at(pos)))?;
            let name = tag.get(..end).unwrap_or_default().trim();
            events.push(XmlEvent::End { name });
            pos += 2 + end + 1;
        } else {
            let (event, len) = start_tag(rest).map_err(|e| format!("{}: {e}", at(pos)))?;
            events.push(event);
            pos += len;
        }
    }
    Ok(events)
}

/// Adds `raw` character data as a text event unless it is only blanks.
fn text_event(raw: &str, events: &mut Vec<XmlEvent<'_>>) -> Result<(), String> {
    if !raw.trim().is_empty() {
        events.push(XmlEvent::Text(unescape(raw)?));
    }
    Ok(())
}

/// Parses the start tag at the beginning of `text` (which starts with `<`); returns it and its
/// length in bytes.
fn start_tag(text: &str) -> Result<(XmlEvent<'_>, usize), String> {
    let is_name_end = |c: char| c.is_whitespace() || c == '/' || c == '>';
    let body = text.get(1..).unwrap_or_default();
    let name_len = body.find(is_name_end).ok_or("unterminated start tag")?;
    let name = body.get(..name_len).unwrap_or_default();
    if name.is_empty() {
        return Err("a tag without a name".to_owned());
    }
    let mut attrs = Vec::new();
    let mut pos = 1 + name_len;
    loop {
        let rest = text.get(pos..).unwrap_or_default();
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        if trimmed.starts_with("/>") {
            let event = XmlEvent::Start {
                name,
                attrs,
                empty: true,
            };
            return Ok((event, pos + 2));
        }
        if trimmed.starts_with('>') {
            let event = XmlEvent::Start {
                name,
                attrs,
                empty: false,
            };
            return Ok((event, pos + 1));
        }
        if trimmed.is_empty() {
            return Err(format!("unterminated <{name}> tag"));
        }
        let eq = trimmed
            .find('=')
            .ok_or(format!("an attribute without a value in <{name}>"))?;
        let key = trimmed.get(..eq).unwrap_or_default().trim();
        if key.is_empty() || key.contains(is_name_end) {
            return Err(format!("a malformed attribute in <{name}>"));
        }
        let after = trimmed.get(eq + 1..).unwrap_or_default();
        let value_start = after.trim_start();
        let quote = value_start
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or(format!("an unquoted attribute `{key}` in <{name}>"))?;
        let value_body = value_start.get(1..).unwrap_or_default();
        let close = value_body
            .find(quote)
            .ok_or(format!("an unterminated attribute `{key}` in <{name}>"))?;
        let raw = value_body.get(..close).unwrap_or_default();
        attrs.push((key, unescape(raw)?));
        // Past `key`, `=`, the blanks, both quotes and the value.
        pos += eq + 1 + (after.len() - value_start.len()) + 1 + close + 1;
    }
}

/// Decodes XML entities and character references.
fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or_default());
        let after = rest.get(amp + 1..).unwrap_or_default();
        let semi = after
            .find(';')
            .filter(|&i| i <= 10)
            .ok_or("an unterminated entity")?;
        let entity = after.get(..semi).unwrap_or_default();
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or(format!("an unknown entity &{entity};"))?
            }
        };
        out.push(c);
        rest = after.get(semi + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The summary

/// What happened on one board (or, with `dut` = [`OTHER_TESTS`], to the package's other tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardSummary {
    /// The board's name: the text after the last `::` of its cases' names.
    pub dut: String,
    /// Cases that passed (`suite::case`).
    pub passed: Vec<String>,
    /// Cases that failed, with the failure's first line.
    pub failed: Vec<(String, String)>,
    /// Cases ignored, with the plan's reason.
    pub ignored: Vec<(String, String)>,
    /// Cases the plan runs, selected by the filters, that the report does not have.
    pub not_run: Vec<String>,
}

/// The group for test cases of the package that are not conformance cases.
pub const OTHER_TESTS: &str = "(other tests of tessera-conformance)";

/// `suite::case::dut` split into (`suite::case`, `dut`); a name without `::` is all case.
pub fn split_dut(name: &str) -> (&str, &str) {
    match name.rsplit_once("::") {
        Some((case, dut)) => (case, dut),
        None => (name, ""),
    }
}

fn selected(name: &str, filters: &[String]) -> bool {
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

/// Groups the report's cases by board, adds the plan's ignored cases (with their reasons) and
/// the planned cases the report lacks. Boards come in plan order.
pub fn summarize(plan: &[PlanEntry], cases: &[JunitCase], filters: &[String]) -> Vec<BoardSummary> {
    let mut groups = Groups::default();
    let reasons: HashMap<&str, &str> = plan
        .iter()
        .filter_map(|e| e.ignored.as_deref().map(|r| (e.name.as_str(), r)))
        .collect();
    // Boards in plan order first.
    for entry in plan {
        groups.get(split_dut(&entry.name).1);
    }
    let mut reported = HashSet::new();
    for case in cases {
        reported.insert(case.name.as_str());
        let (summary, label) = if case.classname == CLASSNAME {
            let (label, dut) = split_dut(&case.name);
            (groups.get(dut), label.to_owned())
        } else {
            (groups.get(OTHER_TESTS), case.name.clone())
        };
        match &case.verdict {
            Verdict::Passed => summary.passed.push(label),
            Verdict::Failed(message) => summary.failed.push((label, message.clone())),
            Verdict::Skipped => {
                let reason = reasons.get(case.name.as_str()).unwrap_or(&"skipped");
                summary.ignored.push((label, (*reason).to_owned()));
            }
        }
    }
    for entry in plan {
        if reported.contains(entry.name.as_str()) || !selected(&entry.name, filters) {
            continue;
        }
        let (label, dut) = split_dut(&entry.name);
        let summary = groups.get(dut);
        match &entry.ignored {
            Some(reason) => summary.ignored.push((label.to_owned(), reason.clone())),
            None => summary.not_run.push(label.to_owned()),
        }
    }
    groups
        .boards
        .into_iter()
        .filter(|b| {
            !(b.passed.is_empty()
                && b.failed.is_empty()
                && b.ignored.is_empty()
                && b.not_run.is_empty())
        })
        .collect()
}

/// Board summaries in first-seen order, found by name.
#[derive(Default)]
struct Groups {
    boards: Vec<BoardSummary>,
    index: HashMap<String, usize>,
}

impl Groups {
    fn get(&mut self, dut: &str) -> &mut BoardSummary {
        let boards = &mut self.boards;
        let at = *self.index.entry(dut.to_owned()).or_insert_with(|| {
            boards.push(BoardSummary {
                dut: dut.to_owned(),
                ..BoardSummary::default()
            });
            boards.len() - 1
        });
        &mut self.boards[at]
    }
}

/// The summary as printed: one line per board with its counts, then the failed cases with
/// their first line, the ignored ones with their reasons, and those not run.
pub fn format_summary(rig: &str, boards: &[BoardSummary]) -> String {
    let mut out = format!("hil summary, rig `{rig}`:\n");
    if boards.is_empty() {
        out.push_str("  no cases ran and none were ignored\n");
    }
    for b in boards {
        let dut = if b.dut.is_empty() {
            "(no board)"
        } else {
            &b.dut
        };
        let mut counts = vec![format!("{} passed", b.passed.len())];
        if !b.failed.is_empty() {
            counts.push(format!("{} FAILED", b.failed.len()));
        }
        if !b.ignored.is_empty() {
            counts.push(format!("{} ignored", b.ignored.len()));
        }
        if !b.not_run.is_empty() {
            counts.push(format!("{} not run", b.not_run.len()));
        }
        out.push_str(&format!("  {dut}: {}\n", counts.join(", ")));
        // Cases that failed for one reason (a rig that is not there fails them all alike) are
        // listed under that reason once.
        let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
        for (case, message) in &b.failed {
            match reasons.iter_mut().find(|(m, _)| *m == message.as_str()) {
                Some((_, cases)) => cases.push(case),
                None => reasons.push((message, vec![case])),
            }
        }
        for (message, cases) in reasons {
            match cases.as_slice() {
                [one] => out.push_str(&format!("    FAILED   {one}: {message}\n")),
                several => {
                    out.push_str(&format!(
                        "    FAILED   {} cases: {message}\n",
                        several.len()
                    ));
                    for case in several {
                        out.push_str(&format!("               {case}\n"));
                    }
                }
            }
        }
        for (case, reason) in &b.ignored {
            out.push_str(&format!("    ignored  {case}: {reason}\n"));
        }
        for case in &b.not_run {
            out.push_str(&format!(
                "    not run  {case}: planned, but not in the report\n"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A report in the shape cargo-nextest 0.9 writes: a passing case, a failing one with
    /// escaped output, a timed-out one with a rerun, a flaky one that passed on retry, and a
    /// case of another test binary.
    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="5" skipped="0" failures="2" errors="0" uuid="503dbf62-30f7-4351-abc5-f11c2c0fdb27" timestamp="2026-11-27T07:04:43.232+00:00" time="4.178">
    <testsuite name="tessera-conformance::conformance" tests="4" skipped="0" errors="0" failures="2">
        <testcase name="boot_without_sim::no_enumeration_without_sim::vreq" classname="tessera-conformance::conformance" timestamp="2026-11-27T07:04:43.232+00:00" time="0.017"/>
        <testcase name="sim_swap::keys_follow_the_card::vreader" classname="tessera-conformance::conformance" timestamp="2026-11-27T07:04:43.234+00:00" time="0.174">
            <failure message="key 0x01 made on card-a is present on card-b&#10;second line" type="test failure with exit code 101">thread &apos;main&apos; panicked at tests/suites/sim_swap.rs:2:57:
assertion `left == right` failed: one is not &quot;two&quot;
   3: core::panicking::assert_failed::&lt;i32, i32&gt;</failure>
            <system-out>
running 1 test
some &lt;stdout&gt; &amp; stuff
</system-out>
            <system-err>thread &apos;main&apos; panicked</system-err>
        </testcase>
        <testcase name="ccid_t1::card_pulled_mid_command::vreq" classname="tessera-conformance::conformance" timestamp="2026-11-27T07:04:48.952+00:00" time="2.005">
            <failure type="test timeout"/>
            <rerunFailure timestamp="2026-11-27T07:04:50.957+00:00" time="2.003" type="test timeout">
                <system-out>
running 1 test
</system-out>
            </rerunFailure>
        </testcase>
        <testcase name="boot_without_sim::no_sim::vreader" classname="tessera-conformance::conformance" timestamp="2026-11-27T07:20:27.450+00:00" time="0.018">
            <failure type="test failure with exit code 101"/>
            <rerunFailure timestamp="2026-11-27T07:20:27.401+00:00" time="0.020" type="test failure with exit code 101">
                <system-out>
---- boot_without_sim::no_sim::vreader ----
an earlier try's message
</system-out>
            </rerunFailure>
            <system-out>
running 1 test
test boot_without_sim::no_sim::vreader ... FAILED

failures:

---- boot_without_sim::no_sim::vreader ----
the board enumerated within 5 s with no card (tessera-require-card must not)
rig: board vreader: powered off


failures:
    boot_without_sim::no_sim::vreader

test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 25 filtered out; finished in 0.00s

</system-out>
            <system-err></system-err>
        </testcase>
        <testcase name="ccid_t1::power_off_and_on::vreader" classname="tessera-conformance::conformance" time="0.1">
            <failure type="test failure with signal 6"/>
            <system-out><![CDATA[running 1 test
]]></system-out>
            <system-err>
thread &apos;main&apos; panicked at tests/suites/ccid_t1.rs:88:9:
the slot stayed powered after the board was switched off
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
</system-err>
        </testcase>
        <testcase name="pin_counters::countdown::vreader" classname="tessera-conformance::conformance" timestamp="2026-11-27T07:04:49.106+00:00" time="0.009">
            <flakyFailure timestamp="2026-11-27T07:04:48.954+00:00" time="0.150" message="thread &apos;main&apos; panicked at x.rs:6:1" type="test failure with exit code 101">first try</flakyFailure>
        </testcase>
    </testsuite>
    <testsuite name="tessera-conformance" tests="1" skipped="0" errors="0" failures="0">
        <!-- a comment <testcase name="not a case"/> -->
        <testcase name='tests::plan_lines' classname='tessera-conformance' time="0.001"/>
    </testsuite>
</testsuites>
"#;

    #[test]
    fn a_nextest_report_parses() {
        let cases = parse_junit(REPORT).expect("parses");
        let verdicts: Vec<(&str, &Verdict)> = cases
            .iter()
            .map(|c| (c.name.as_str(), &c.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                (
                    "boot_without_sim::no_enumeration_without_sim::vreq",
                    &Verdict::Passed
                ),
                (
                    "sim_swap::keys_follow_the_card::vreader",
                    &Verdict::Failed("key 0x01 made on card-a is present on card-b".into())
                ),
                (
                    "ccid_t1::card_pulled_mid_command::vreq",
                    &Verdict::Failed("test timeout".into())
                ),
                (
                    "boot_without_sim::no_sim::vreader",
                    &Verdict::Failed(
                        "the board enumerated within 5 s with no card (tessera-require-card must not)"
                            .into()
                    )
                ),
                (
                    "ccid_t1::power_off_and_on::vreader",
                    &Verdict::Failed(
                        "the slot stayed powered after the board was switched off".into()
                    )
                ),
                ("pin_counters::countdown::vreader", &Verdict::Passed),
                ("tests::plan_lines", &Verdict::Passed),
            ]
        );
        assert_eq!(cases[0].classname, CLASSNAME);
        assert_eq!(cases[6].classname, "tessera-conformance");
    }

    #[test]
    fn skipped_and_error_elements_count() {
        let xml = "<testsuite><testcase name=\"a::b::x\" classname=\"c\"><skipped/></testcase>\
                   <testcase name=\"a::c::x\"><error message=\"crashed\"/><skipped/></testcase>\
                   </testsuite>";
        let cases = parse_junit(xml).expect("parses");
        assert_eq!(cases[0].verdict, Verdict::Skipped);
        assert_eq!(cases[1].verdict, Verdict::Failed("crashed".into()));
        assert_eq!(cases[1].classname, "");
    }

    #[test]
    fn broken_reports_are_errors_not_panics() {
        for (xml, expected) in [
            ("", "not a JUnit report"),
            (
                "<testsuites><testcase name=\"a\">",
                "ends inside a testcase",
            ),
            ("<testsuites><testcase name=\"a", "unterminated"),
            (
                "<testsuites><testcase name=a/>",
                "unquoted attribute `name`",
            ),
            ("<testsuites><testcase classname=\"x\"/>", "without a name"),
            (
                "<testsuites><testcase name=\"&bogus;\"/>",
                "unknown entity &bogus;",
            ),
            ("<testsuites><testcase name=\"a &amp b\"/>", "entity"),
            ("<testsuites></testcase>", "stray"),
            ("<testsuites><!-- open", "line 1: unterminated markup"),
            (
                "<testsuites>\n\n<testcase name=\"a\" x>",
                "line 3: an attribute without",
            ),
            (
                "<testsuites><testcase name=\"a\"><testcase name=\"b\"/>",
                "inside a testcase",
            ),
            ("<>", "without a name"),
        ] {
            let err = parse_junit(xml).expect_err(xml);
            assert!(err.contains(expected), "{xml:?}: {err}");
        }
    }

    #[test]
    fn failure_lines_come_from_libtest_output_or_a_panic() {
        let out =
            "test a::b::c ... FAILED\n\nfailures:\n\n---- a::b::c ----\n\nwhy it failed\nmore\n";
        assert_eq!(
            libtest_failure(out, "a::b::c").as_deref(),
            Some("why it failed")
        );
        assert_eq!(libtest_failure(out, "a::b::d"), None);
        let empty = "---- a::b::c ----\n\nfailures:\n    a::b::c\n";
        assert_eq!(libtest_failure(empty, "a::b::c"), None);
        assert_eq!(
            panic_message("thread 'main' panicked at x.rs:1:2:\nthe message\nnote: ...").as_deref(),
            Some("the message")
        );
        assert_eq!(
            panic_message("thread 'main' panicked at 'old style', x.rs:1:2").as_deref(),
            Some("thread 'main' panicked at 'old style', x.rs:1:2")
        );
        assert_eq!(panic_message("no panic here"), None);
        let xml = "<testsuites><testcase name=\"x\"><failure/></testcase></testsuites>";
        assert_eq!(
            parse_junit(xml).expect("parses")[0].verdict,
            Verdict::Failed("failed".into())
        );
    }

    #[test]
    fn the_test_binary_is_found_in_cargos_messages() {
        // Shaped as cargo 1.9x prints them (fields elided).
        let messages = concat!(
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/tests#tessera-conformance@0.1.0","manifest_path":"/w/tests/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"tessera_conformance","src_path":"/w/tests/src/lib.rs"},"executable":null,"fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/tests#tessera-conformance@0.1.0","manifest_path":"/w/tests/Cargo.toml","target":{"kind":["test"],"crate_types":["bin"],"name":"conformance","src_path":"/w/tests/suites/main.rs","edition":"2021","doc":false,"doctest":false,"test":true},"profile":{"test":true},"features":[],"filenames":["/w/target/debug/deps/conformance-4e71d3da584523c9"],"executable":"/w/target/debug/deps/conformance-4e71d3da584523c9","fresh":true}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n"
        );
        assert_eq!(
            test_executable(messages, "conformance"),
            Some(PathBuf::from(
                "/w/target/debug/deps/conformance-4e71d3da584523c9"
            ))
        );
        assert_eq!(test_executable(messages, "other"), None);
        assert_eq!(
            json_string(r#"{"executable":"C:\\t\"x\u00e9\/y"}"#, "executable").as_deref(),
            Some("C:\\t\"xé/y")
        );
        assert_eq!(json_string(r#"{"executable":null}"#, "executable"), None);
        assert_eq!(json_string(r#"{"executable":"open"#, "executable"), None);
        assert_eq!(json_string(r#"{"executable":"\q"}"#, "executable"), None);
    }

    #[test]
    fn entities_and_character_references_decode() {
        assert_eq!(
            unescape("&lt;a&gt; &amp; &quot;b&quot; &apos;c&apos; &#65;&#x42;&#X43;").unwrap(),
            "<a> & \"b\" 'c' ABC"
        );
        assert!(unescape("&#xD800;").is_err());
        assert!(unescape("&#99999999999;").is_err());
    }

    #[test]
    fn long_failure_messages_are_cut_at_200_characters() {
        let long = "é".repeat(300);
        let cut = first_line(&long);
        assert_eq!(cut.chars().count(), 201);
        assert!(cut.ends_with('…'));
    }

    const PLAN: &str = "\
boot_without_sim::no_enumeration_without_sim::vreq\trun
boot_without_sim::no_enumeration_without_sim::vreader\tignored\tthe board enumerates without a card (tessera-reader)
sim_swap::keys_follow_the_card::vreader\trun
ccid_t1::card_pulled_mid_command::vreq\trun
pin_counters::countdown::vreader\trun
pin_counters::so_pin_countdown::vreq\tignored\tno sacrificial card on this rig
pin_counters::so_pin_blocked::vreq\trun
";

    #[test]
    fn the_plan_parses_and_skips_lines_without_tabs() {
        let plan = parse_plan(&format!("running 7 tests\n{PLAN}\n")).expect("parses");
        assert_eq!(plan.len(), 7);
        assert_eq!(plan[0].ignored, None);
        assert_eq!(
            plan[5].ignored.as_deref(),
            Some("no sacrificial card on this rig")
        );
        let plan = parse_plan("a::b::c\tignored\n").expect("parses");
        assert_eq!(plan[0].ignored.as_deref(), Some("no reason given"));
    }

    #[test]
    fn bad_plan_lines_are_errors() {
        for (text, expected) in [
            (
                "a::b::c\tmaybe\n",
                "line 1: a::b::c: expected `run` or `ignored`",
            ),
            ("x\trun\n\trun\n", "line 2: a case without a name"),
            ("a::b::c\trun\textra\n", "too many fields"),
            ("a::b::c\tignored\twhy\tmore\n", "too many fields"),
        ] {
            let err = parse_plan(text).expect_err(text);
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_summary_groups_by_board_with_reasons() {
        let plan = parse_plan(PLAN).expect("plan");
        let cases = parse_junit(REPORT).expect("report");
        let boards = summarize(&plan, &cases, &[]);
        let duts: Vec<&str> = boards.iter().map(|b| b.dut.as_str()).collect();
        assert_eq!(duts, ["vreq", "vreader", OTHER_TESTS]);
        let vreq = &boards[0];
        assert_eq!(
            vreq.passed,
            ["boot_without_sim::no_enumeration_without_sim"]
        );
        assert_eq!(
            vreq.failed,
            [(
                "ccid_t1::card_pulled_mid_command".to_owned(),
                "test timeout".to_owned()
            )]
        );
        assert_eq!(
            vreq.ignored,
            [(
                "pin_counters::so_pin_countdown".to_owned(),
                "no sacrificial card on this rig".to_owned()
            )]
        );
        assert_eq!(vreq.not_run, ["pin_counters::so_pin_blocked"]);
        let vreader = &boards[1];
        assert_eq!(vreader.passed, ["pin_counters::countdown"]);
        assert_eq!(vreader.failed.len(), 3);
        assert_eq!(vreader.ignored.len(), 1);
        assert_eq!(boards[2].passed, ["tests::plan_lines"]);

        let text = format_summary("virtual", &boards);
        assert_eq!(
            text,
            "\
hil summary, rig `virtual`:
  vreq: 1 passed, 1 FAILED, 1 ignored, 1 not run
    FAILED   ccid_t1::card_pulled_mid_command: test timeout
    ignored  pin_counters::so_pin_countdown: no sacrificial card on this rig
    not run  pin_counters::so_pin_blocked: planned, but not in the report
  vreader: 1 passed, 3 FAILED, 1 ignored
    FAILED   sim_swap::keys_follow_the_card: key 0x01 made on card-a is present on card-b
    FAILED   boot_without_sim::no_sim: the board enumerated within 5 s with no card (tessera-require-card must not)
    FAILED   ccid_t1::power_off_and_on: the slot stayed powered after the board was switched off
    ignored  boot_without_sim::no_enumeration_without_sim: the board enumerates without a card (tessera-reader)
  (other tests of tessera-conformance): 1 passed
"
        );
    }

    #[test]
    fn failures_for_one_reason_are_listed_under_it_once() {
        let failed = |case: &str, message: &str| (case.to_owned(), message.to_owned());
        let board = BoardSummary {
            dut: "hsm2".into(),
            passed: vec![],
            failed: vec![
                failed("a::one", "rig: no controller"),
                failed("b::two", "the serial differs"),
                failed("c::three", "rig: no controller"),
            ],
            ignored: vec![],
            not_run: vec![],
        };
        assert_eq!(
            format_summary("lab", &[board]),
            "\
hil summary, rig `lab`:
  hsm2: 0 passed, 3 FAILED
    FAILED   2 cases: rig: no controller
               a::one
               c::three
    FAILED   b::two: the serial differs
"
        );
    }

    #[test]
    fn filters_limit_the_ignored_and_not_run_cases() {
        let plan = parse_plan(PLAN).expect("plan");
        let cases: Vec<JunitCase> = parse_junit(REPORT)
            .expect("report")
            .into_iter()
            .filter(|c| c.name.starts_with("boot_without_sim"))
            .collect();
        let boards = summarize(&plan, &cases, &strings(&["boot_without_sim"]));
        assert_eq!(boards.len(), 2);
        assert_eq!(boards[0].passed.len(), 1);
        assert!(boards[0].not_run.is_empty() && boards[0].ignored.is_empty());
        assert_eq!(
            boards[1].ignored,
            [(
                "boot_without_sim::no_enumeration_without_sim".to_owned(),
                "the board enumerates without a card (tessera-reader)".to_owned()
            )]
        );
    }

    #[test]
    fn a_skipped_case_takes_its_reason_from_the_plan() {
        let plan = parse_plan("s::c::b\tignored\tno hub\n").expect("plan");
        let cases = vec![JunitCase {
            name: "s::c::b".into(),
            classname: CLASSNAME.into(),
            verdict: Verdict::Skipped,
        }];
        let boards = summarize(&plan, &cases, &[]);
        assert_eq!(
            boards[0].ignored,
            [("s::c".to_owned(), "no hub".to_owned())]
        );
        assert_eq!(
            format_summary("r", &[]),
            "hil summary, rig `r`:\n  no cases ran and none were ignored\n"
        );
    }

    #[test]
    fn options_parse() {
        let o = Options::parse(&strings(&["--rig", "rig/lab.toml", "sim_swap", "vreq"])).unwrap();
        assert_eq!(o.rig.as_deref(), Some(Path::new("rig/lab.toml")));
        assert_eq!(o.filters, ["sim_swap", "vreq"]);
        assert!(Options::parse(&strings(&["--rig"])).is_err());
        assert!(Options::parse(&strings(&["--rig", ""])).is_err());
        assert!(Options::parse(&strings(&["--rig", "a", "--rig", "b"])).is_err());
        let err = Options::parse(&strings(&["--exact"])).unwrap_err();
        assert!(err.starts_with("hil: unknown option `--exact`"), "{err}");
        assert!(Options::parse(&strings(&["-h"])).unwrap().help);
    }

    #[test]
    fn paths_resolve_against_the_current_directory() {
        let cwd = Path::new("/home/u/tessera/rig");
        assert_eq!(
            absolute(Path::new("lab.toml"), cwd),
            Path::new("/home/u/tessera/rig/lab.toml")
        );
        assert_eq!(
            absolute(Path::new("/etc/r.toml"), cwd),
            Path::new("/etc/r.toml")
        );
        assert_eq!(
            shown(Path::new("/home/u/tessera/rig/x/junit.xml"), cwd),
            "x/junit.xml"
        );
        assert_eq!(shown(Path::new("/tmp/j.xml"), cwd), "/tmp/j.xml");
    }

    #[test]
    fn backends_choose_profile_and_features() {
        assert_eq!(nextest_profile(Backend::Virtual), "hil");
        assert_eq!(nextest_profile(Backend::Real), "hil-real");
        assert!(features(Backend::Virtual).is_empty());
        assert_eq!(features(Backend::Real), ["--features", "tessera-rig/probe"]);
        let config = std::fs::read_to_string(crate::workspace_root().join(".config/nextest.toml"))
            .expect(".config/nextest.toml");
        for profile in ["hil", "hil-real"] {
            assert!(
                config.contains(&format!("[profile.{profile}.junit]")),
                "nextest profile {profile} has no JUnit report"
            );
        }
        // junit_path assumes nextest's default store (target/nextest under the workspace).
        assert!(
            !config.contains("[store]"),
            "nextest's store moved: fix junit_path"
        );
        assert_eq!(
            junit_path(Path::new("/w"), "hil-real"),
            Path::new("/w/target/nextest/hil-real/junit.xml")
        );
    }
}

//! A rig controller in software, speaking PROTOCOL.md exactly as a real one must: the test
//! double of the host client (on a pseudo-terminal, [`super::pty`]) and the power and SIM
//! switches of the virtual rig.
//!
//! It is sans-IO and reads no clock: bytes and the current time go in
//! ([`VirtualController::receive`]), response bytes come out; [`VirtualController::poll`]
//! runs the watchdog at a given time. Its switch actions are recorded as [`SwitchEvent`]s so
//! a test (or the virtual rig) can check break-before-make.

use std::time::Duration;

use super::protocol::{
    sanitize_text, ErrorCode, Frame, HelloInfo, LineReader, Reply, Request, Response, StatusInfo,
    PROTOCOL_VERSION,
};

/// What a virtual controller is like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerSpec {
    /// Its identity in `OK HELLO` (`id=`; no spaces).
    pub id: String,
    /// Its firmware version (`fw=`; no spaces).
    pub firmware: String,
    /// How many power channels.
    pub power_channels: u8,
    /// How many SIM mux channels. Mux `n` feeds the board on power channel `n`.
    pub muxes: u8,
    /// How many SIM positions.
    pub positions: u8,
    /// The protocol versions it speaks.
    pub versions: Vec<u16>,
    /// Silence after which it powers everything off while anything is powered.
    pub watchdog: Duration,
}

impl ControllerSpec {
    /// A controller with `power_channels`, `muxes` and `positions`, speaking this crate's
    /// protocol version, with a 5 s watchdog.
    pub fn new(power_channels: u8, muxes: u8, positions: u8) -> ControllerSpec {
        ControllerSpec {
            id: "tessera-virtual-controller".to_owned(),
            firmware: env!("CARGO_PKG_VERSION").to_owned(),
            power_channels,
            muxes,
            positions,
            versions: vec![PROTOCOL_VERSION],
            watchdog: Duration::from_secs(5),
        }
    }
}

/// One switch action, in the order the controller performed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwitchEvent {
    /// A power channel was switched.
    Power {
        /// The channel.
        channel: u8,
        /// On or off.
        on: bool,
    },
    /// Every contact of a mux was opened (the "break").
    Disconnect {
        /// The mux.
        mux: u8,
    },
    /// A position was connected to a mux (the "make").
    Connect {
        /// The mux.
        mux: u8,
        /// The position.
        position: u8,
    },
    /// The watchdog tripped: everything was powered off and disconnected.
    WatchdogTrip,
}

/// The controller's state machine.
#[derive(Debug, Clone)]
pub struct VirtualController {
    spec: ControllerSpec,
    reader: LineReader,
    session: bool,
    power: Vec<bool>,
    sim: Vec<Option<u8>>,
    garbage: u32,
    trips: u32,
    /// The last request line and its response, to answer a resent request without acting
    /// twice.
    last: Option<(String, String)>,
    last_heard: Duration,
    /// Scheduled `EJECT`s: (mux, when).
    ejects: Vec<(u8, Duration)>,
    /// The time of the line being handled (for `EJECT`'s delay).
    now: Duration,
    events: Vec<SwitchEvent>,
}

impl VirtualController {
    /// A controller just out of reset: everything off, no session.
    pub fn new(spec: ControllerSpec) -> VirtualController {
        VirtualController {
            power: vec![false; usize::from(spec.power_channels)],
            sim: vec![None; usize::from(spec.muxes)],
            spec,
            reader: LineReader::new(),
            session: false,
            garbage: 0,
            trips: 0,
            last: None,
            last_heard: Duration::ZERO,
            ejects: Vec::new(),
            now: Duration::ZERO,
            events: Vec::new(),
        }
    }

    /// Its description.
    pub fn spec(&self) -> &ControllerSpec {
        &self.spec
    }

    /// Takes bytes from the host at time `now`; returns the response bytes.
    pub fn receive(&mut self, bytes: &[u8], now: Duration) -> Vec<u8> {
        let mut out = Vec::new();
        for line in self.reader.push_all(bytes) {
            match line {
                Ok(line) => {
                    if let Some(response) = self.handle_line(&line, now) {
                        out.extend_from_slice(response.as_bytes());
                    }
                }
                Err(_) => self.garbage = self.garbage.saturating_add(1),
            }
        }
        out
    }

    /// Handles one line (without LF) at time `now`; returns the response line (with LF), or
    /// `None` for garbage, which is counted and not answered.
    pub fn handle_line(&mut self, line: &str, now: Duration) -> Option<String> {
        self.poll(now);
        let frame = match Frame::parse(line) {
            Ok(frame) => frame,
            Err(_) => {
                self.garbage = self.garbage.saturating_add(1);
                return None;
            }
        };
        self.last_heard = now;
        if let Some((last_line, last_response)) = &self.last {
            if last_line == line {
                return Some(last_response.clone());
            }
        }
        let response = match Request::parse(frame.payload) {
            Ok(request) => self.execute(&request),
            Err(e) => Response::Err {
                code: ErrorCode::Syntax,
                text: sanitize_text(&e.to_string()),
            },
        };
        let encoded = Frame::encode(frame.seq, &response);
        self.last = Some((line.to_owned(), encoded.clone()));
        Some(encoded)
    }

    /// Runs the watchdog at time `now`: if anything is powered and nothing valid was heard for
    /// the watchdog period, everything goes off, the SIMs are disconnected and the session
    /// ends (PROTOCOL.md §6).
    pub fn poll(&mut self, now: Duration) {
        self.now = self.now.max(now);
        let due: Vec<u8> = self
            .ejects
            .iter()
            .filter(|(_, at)| *at <= now)
            .map(|(mux, _)| *mux)
            .collect();
        self.ejects.retain(|(_, at)| *at > now);
        for mux in due {
            if let Some(slot) = self.sim.get_mut(usize::from(mux)) {
                if slot.take().is_some() {
                    self.events.push(SwitchEvent::Disconnect { mux });
                }
            }
        }
        let anything_on = self.power.iter().any(|on| *on);
        if anything_on && now.saturating_sub(self.last_heard) >= self.spec.watchdog {
            self.power.iter_mut().for_each(|on| *on = false);
            self.sim.iter_mut().for_each(|p| *p = None);
            self.ejects.clear();
            self.session = false;
            self.last = None;
            self.trips = self.trips.saturating_add(1);
            self.events.push(SwitchEvent::WatchdogTrip);
        }
    }

    fn execute(&mut self, request: &Request) -> Response {
        let refuse = |code: ErrorCode, text: &str| Response::Err {
            code,
            text: text.to_owned(),
        };
        match *request {
            Request::Hello { version } => {
                if !self.spec.versions.contains(&version) {
                    let supported: Vec<String> =
                        self.spec.versions.iter().map(u16::to_string).collect();
                    return refuse(
                        ErrorCode::Version,
                        &format!("supported={}", supported.join(",")),
                    );
                }
                self.session = true;
                Response::Ok(Reply::Hello(HelloInfo {
                    version,
                    id: self.spec.id.clone(),
                    firmware: self.spec.firmware.clone(),
                    power_channels: self.spec.power_channels,
                    muxes: self.spec.muxes,
                    positions: self.spec.positions,
                    watchdog_ms: u32::try_from(self.spec.watchdog.as_millis()).unwrap_or(u32::MAX),
                }))
            }
            Request::PowerAllOff => {
                for channel in 0..self.spec.power_channels {
                    self.switch_power(channel, false);
                }
                Response::Ok(Reply::PowerAllOff)
            }
            Request::Status => Response::Ok(Reply::Status(self.status())),
            Request::Power { channel, on } => {
                if on && !self.session {
                    return refuse(ErrorCode::Hello, "say HELLO first");
                }
                if channel >= self.spec.power_channels {
                    return refuse(ErrorCode::Range, "no such power channel");
                }
                self.switch_power(channel, on);
                Response::Ok(Reply::Power { channel, on })
            }
            Request::Sim { mux, position } => {
                if !self.session {
                    return refuse(ErrorCode::Hello, "say HELLO first");
                }
                if mux >= self.spec.muxes {
                    return refuse(ErrorCode::Range, "no such mux");
                }
                if position.is_some_and(|p| p >= self.spec.positions) {
                    return refuse(ErrorCode::Range, "no such position");
                }
                if self.power.get(usize::from(mux)).copied().unwrap_or(false) {
                    return refuse(ErrorCode::Powered, "the board on this mux is powered");
                }
                if let Some(p) = position {
                    let elsewhere = self
                        .sim
                        .iter()
                        .enumerate()
                        .any(|(m, q)| m != usize::from(mux) && *q == Some(p));
                    if elsewhere {
                        return refuse(ErrorCode::Busy, "the position is connected to another mux");
                    }
                }
                // Break before make: open every contact, then connect the new position.
                self.ejects.retain(|(m, _)| *m != mux);
                self.events.push(SwitchEvent::Disconnect { mux });
                if let Some(slot) = self.sim.get_mut(usize::from(mux)) {
                    *slot = None;
                    if let Some(p) = position {
                        self.events.push(SwitchEvent::Connect { mux, position: p });
                        *slot = Some(p);
                    }
                }
                Response::Ok(Reply::Sim { mux, position })
            }
            Request::Insert { mux, position } => {
                if !self.session {
                    return refuse(ErrorCode::Hello, "say HELLO first");
                }
                if mux >= self.spec.muxes {
                    return refuse(ErrorCode::Range, "no such mux");
                }
                if position >= self.spec.positions {
                    return refuse(ErrorCode::Range, "no such position");
                }
                if self.connected(mux).is_some() {
                    return refuse(ErrorCode::Connected, "the mux connects a position already");
                }
                if self.sim.contains(&Some(position)) {
                    return refuse(ErrorCode::Busy, "the position is connected to another mux");
                }
                if let Some(slot) = self.sim.get_mut(usize::from(mux)) {
                    *slot = Some(position);
                    self.events.push(SwitchEvent::Connect { mux, position });
                }
                Response::Ok(Reply::Insert { mux, position })
            }
            Request::Eject { mux, delay_ms } => {
                if !self.session {
                    return refuse(ErrorCode::Hello, "say HELLO first");
                }
                if mux >= self.spec.muxes {
                    return refuse(ErrorCode::Range, "no such mux");
                }
                if self.connected(mux).is_none() {
                    return refuse(ErrorCode::Empty, "the mux connects nothing");
                }
                self.ejects.retain(|(m, _)| *m != mux);
                let at = self.now + Duration::from_millis(u64::from(delay_ms));
                self.ejects.push((mux, at));
                let now = self.now;
                self.poll(now);
                Response::Ok(Reply::Eject { mux, delay_ms })
            }
            Request::Unknown(_) => refuse(ErrorCode::Command, "unknown command"),
        }
    }

    fn switch_power(&mut self, channel: u8, on: bool) {
        if let Some(state) = self.power.get_mut(usize::from(channel)) {
            if *state != on {
                *state = on;
                self.events.push(SwitchEvent::Power { channel, on });
            }
        }
    }

    /// What `STATUS` reports.
    pub fn status(&self) -> StatusInfo {
        StatusInfo {
            power: self.power.clone(),
            sim: self.sim.clone(),
            garbage: self.garbage,
            trips: self.trips,
            session: self.session,
        }
    }

    /// Whether power channel `channel` is on.
    pub fn is_powered(&self, channel: u8) -> bool {
        self.power
            .get(usize::from(channel))
            .copied()
            .unwrap_or(false)
    }

    /// The position mux `mux` connects.
    pub fn connected(&self, mux: u8) -> Option<u8> {
        self.sim.get(usize::from(mux)).copied().flatten()
    }

    /// When the earliest pending `EJECT` breaks its contacts, if any: a simulation that runs
    /// the controller must call [`poll`](VirtualController::poll) at that instant for the
    /// break to happen exactly then.
    pub fn next_eject(&self) -> Option<Duration> {
        self.ejects.iter().map(|(_, at)| *at).min()
    }

    /// Lines discarded as garbage.
    pub fn garbage(&self) -> u32 {
        self.garbage
    }

    /// Watchdog trips.
    pub fn trips(&self) -> u32 {
        self.trips
    }

    /// The switch actions since the last call.
    pub fn take_events(&mut self) -> Vec<SwitchEvent> {
        std::mem::take(&mut self.events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u16, request: &Request) -> String {
        Frame::encode(seq, request)
    }

    fn answer(c: &mut VirtualController, seq: u16, request: &Request, now_ms: u64) -> Response {
        let out = c.receive(line(seq, request).as_bytes(), Duration::from_millis(now_ms));
        let text = String::from_utf8(out).unwrap();
        let frame = Frame::parse(text.trim_end()).unwrap();
        assert_eq!(frame.seq, seq);
        Response::parse(frame.payload).unwrap()
    }

    #[test]
    fn sim_switching_is_break_before_make_and_refused_while_powered() {
        let mut c = VirtualController::new(ControllerSpec::new(2, 2, 3));
        answer(&mut c, 1, &Request::Hello { version: 1 }, 0);
        let sim = |position| Request::Sim { mux: 0, position };
        assert_eq!(
            answer(&mut c, 2, &sim(Some(1)), 1),
            Response::Ok(Reply::Sim {
                mux: 0,
                position: Some(1)
            })
        );
        answer(&mut c, 3, &sim(Some(2)), 2);
        assert_eq!(
            c.take_events(),
            [
                SwitchEvent::Disconnect { mux: 0 },
                SwitchEvent::Connect {
                    mux: 0,
                    position: 1
                },
                SwitchEvent::Disconnect { mux: 0 },
                SwitchEvent::Connect {
                    mux: 0,
                    position: 2
                },
            ]
        );
        // Position 2 is on mux 0: mux 1 may not take it.
        let busy = answer(
            &mut c,
            4,
            &Request::Sim {
                mux: 1,
                position: Some(2),
            },
            3,
        );
        assert!(matches!(
            busy,
            Response::Err {
                code: ErrorCode::Busy,
                ..
            }
        ));
        answer(
            &mut c,
            5,
            &Request::Power {
                channel: 0,
                on: true,
            },
            4,
        );
        let powered = answer(&mut c, 6, &sim(None), 5);
        assert!(matches!(
            powered,
            Response::Err {
                code: ErrorCode::Powered,
                ..
            }
        ));
        assert_eq!(c.connected(0), Some(2));
    }

    #[test]
    fn insert_and_eject_work_on_a_powered_board_only_as_make_or_break() {
        let mut c = VirtualController::new(ControllerSpec::new(2, 2, 3));
        answer(&mut c, 1, &Request::Hello { version: 1 }, 0);
        let on = Request::Power {
            channel: 0,
            on: true,
        };
        answer(&mut c, 2, &on, 1);
        c.take_events();
        let insert = |position| Request::Insert { mux: 0, position };
        assert_eq!(
            answer(&mut c, 3, &insert(1), 2),
            Response::Ok(Reply::Insert {
                mux: 0,
                position: 1
            })
        );
        assert_eq!(
            c.take_events(),
            [SwitchEvent::Connect {
                mux: 0,
                position: 1
            }]
        );
        // A second card cannot be pushed into an occupied socket.
        assert!(matches!(
            answer(&mut c, 4, &insert(2), 3),
            Response::Err {
                code: ErrorCode::Connected,
                ..
            }
        ));
        let eject = Request::Eject {
            mux: 0,
            delay_ms: 50,
        };
        assert_eq!(
            answer(&mut c, 5, &eject, 10),
            Response::Ok(Reply::Eject {
                mux: 0,
                delay_ms: 50
            })
        );
        c.poll(Duration::from_millis(59));
        assert_eq!(
            c.connected(0),
            Some(1),
            "the break is 50 ms after the reply"
        );
        c.poll(Duration::from_millis(60));
        assert_eq!(c.connected(0), None);
        assert_eq!(c.take_events(), [SwitchEvent::Disconnect { mux: 0 }]);
        assert!(c.is_powered(0), "ejecting does not switch power");
        assert!(matches!(
            answer(&mut c, 6, &eject, 61),
            Response::Err {
                code: ErrorCode::Empty,
                ..
            }
        ));
    }

    #[test]
    fn watchdog_powers_off_and_ends_the_session_in_modelled_time() {
        let mut c = VirtualController::new(ControllerSpec::new(1, 1, 1));
        answer(&mut c, 1, &Request::Hello { version: 1 }, 0);
        answer(
            &mut c,
            2,
            &Request::Power {
                channel: 0,
                on: true,
            },
            1000,
        );
        c.poll(Duration::from_millis(5999));
        assert!(c.is_powered(0), "4999 ms of silence is within the period");
        c.poll(Duration::from_millis(6000));
        assert!(!c.is_powered(0));
        assert_eq!(c.trips(), 1);
        let refused = answer(
            &mut c,
            3,
            &Request::Power {
                channel: 0,
                on: true,
            },
            6001,
        );
        assert!(matches!(
            refused,
            Response::Err {
                code: ErrorCode::Hello,
                ..
            }
        ));
        // Idle with everything off never trips.
        c.poll(Duration::from_secs(3600));
        assert_eq!(c.trips(), 1);
    }

    #[test]
    fn a_resent_request_is_answered_again_without_acting_twice() {
        let mut c = VirtualController::new(ControllerSpec::new(1, 1, 1));
        answer(&mut c, 1, &Request::Hello { version: 1 }, 0);
        let on = line(
            2,
            &Request::Power {
                channel: 0,
                on: true,
            },
        );
        let first = c.receive(on.as_bytes(), Duration::ZERO);
        let second = c.receive(on.as_bytes(), Duration::ZERO);
        assert_eq!(first, second);
        assert_eq!(
            c.take_events(),
            [SwitchEvent::Power {
                channel: 0,
                on: true
            }]
        );
    }
}

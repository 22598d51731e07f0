//! The transcript in rig/PROTOCOL.md §8 is what the codec and the virtual controller do, byte
//! for byte.

use std::time::Duration;

use tessera_rig::controller::protocol::{Frame, Request, Response};
use tessera_rig::controller::{ControllerSpec, VirtualController};

fn transcript() -> Vec<(char, String)> {
    let doc = include_str!("../PROTOCOL.md");
    let start = doc.find("## 8. Transcript").expect("§8");
    doc[start..]
        .lines()
        .filter_map(|l| {
            let (dir, line) = l.split_once(' ')?;
            match dir {
                ">" => Some(('>', line.to_owned())),
                "<" => Some(('<', line.to_owned())),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn every_transcript_line_is_checksummed_and_parses() {
    let lines = transcript();
    assert_eq!(lines.len(), 16);
    for (dir, line) in &lines {
        let frame = Frame::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        if *dir == '>' {
            let request = Request::parse(frame.payload).expect(line);
            assert_eq!(Frame::encode(frame.seq, &request).trim_end(), line);
        } else {
            let response = Response::parse(frame.payload).expect(line);
            assert_eq!(Frame::encode(frame.seq, &response).trim_end(), line);
        }
    }
}

#[test]
fn the_virtual_controller_answers_the_transcript_exactly() {
    let mut spec = ControllerSpec::new(2, 2, 3);
    spec.id = "rigctl-0001".into();
    spec.firmware = "1.0.0".into();
    let mut controller = VirtualController::new(spec);
    let lines = transcript();
    for pair in lines.chunks(2) {
        let [(_, request), (_, expected)] = pair else {
            panic!("requests and replies alternate");
        };
        let reply = controller
            .handle_line(request, Duration::ZERO)
            .expect("an answer");
        assert_eq!(reply.trim_end(), expected, "answer to {request}");
    }
}

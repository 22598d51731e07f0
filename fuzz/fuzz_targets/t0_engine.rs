//! T=0 reader engine: a command from the input, then the rest of the input as card bytes (in
//! chunks) and WT deadlines. The exchange must end in done or a typed error, without a panic,
//! within one step per event (ISO/IEC 7816-3:2006 §10).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tessera_iso7816_3::t0::{Action, Config, Error, Reader};

#[derive(Debug, Arbitrary)]
enum Event {
    Bytes(Vec<u8>),
    Deadline,
}

#[derive(Debug, Arbitrary)]
struct Input {
    command: Vec<u8>,
    response_len: u16,
    get_response_cla: u8,
    max_commands: u8,
    events: Vec<Event>,
}

fuzz_target!(|input: Input| {
    let mut buffer = vec![0u8; usize::from(input.response_len % 600)];
    let config = Config {
        get_response_cla: input.get_response_cla,
        max_commands: input.max_commands,
    };
    let Ok(mut reader) = Reader::new(&input.command, &mut buffer, config) else {
        return;
    };
    let mut finished = match reader.start() {
        Ok(Action::Send(header)) => {
            assert_eq!(header.len(), 5);
            false
        }
        Ok(other) => panic!("start gave {other:?}"),
        Err(_) => true,
    };
    for event in &input.events {
        if finished {
            break;
        }
        match event {
            Event::Bytes(bytes) => match reader.receive(bytes) {
                Ok(Action::Send(out)) => assert!(!out.is_empty() && out.len() <= 255),
                Ok(Action::Done(response)) => {
                    assert_eq!(response.len, reader.data().len());
                    finished = true;
                }
                Ok(Action::ArmWt) => assert!(!bytes.is_empty()),
                Ok(Action::Wait) => assert!(bytes.is_empty()),
                Err(e) => {
                    assert_ne!(e, Error::OutOfSequence);
                    finished = true;
                }
            },
            Event::Deadline => {
                assert_eq!(reader.wt_expired(), Error::Timeout);
                finished = true;
            }
        }
        assert_eq!(finished, reader.is_finished());
    }
    if !finished {
        assert_eq!(reader.wt_expired(), Error::Timeout);
    }
    assert!(reader.is_finished());
    assert_eq!(reader.receive(&[0x90, 0x00]), Err(Error::OutOfSequence));
});

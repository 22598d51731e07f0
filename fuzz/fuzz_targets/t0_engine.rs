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
    // The command at the start of the lent buffer, as a driver writes it.
    let len = usize::from(input.response_len % 600);
    let mut buffer = vec![0u8; len.max(input.command.len())];
    buffer[..input.command.len()].copy_from_slice(&input.command);
    let config = Config {
        get_response_cla: input.get_response_cla,
        max_commands: input.max_commands,
    };
    let mut reader = Reader::new(config, buffer);
    // The same reader runs the exchange twice: it must end each one cleanly and take the next.
    for _ in 0..2 {
        reader.buffer_mut()[..input.command.len()].copy_from_slice(&input.command);
        exchange(&mut reader, input.command.len(), &input.events);
    }
});

fn exchange(reader: &mut Reader<Vec<u8>>, command_len: usize, events: &[Event]) {
    assert!(reader.is_idle());
    let mut finished = match reader.transmit(command_len) {
        Ok(Action::Send(header)) => {
            assert_eq!(header.len(), 5);
            false
        }
        Ok(other) => panic!("transmit gave {other:?}"),
        Err(e) => {
            assert_ne!(e, Error::OutOfSequence);
            true
        }
    };
    for event in events {
        if finished {
            break;
        }
        match event {
            Event::Bytes(bytes) => match reader.receive(bytes) {
                Ok(Action::Send(out)) => {
                    assert!(!out.is_empty() && out.len() <= 255);
                    let sent = out.to_vec();
                    assert_eq!(reader.pending_transmit(), Some(&sent[..]));
                }
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
    assert!(reader.is_finished() && reader.is_idle());
    assert_eq!(reader.receive(&[0x90, 0x00]), Err(Error::OutOfSequence));
}
